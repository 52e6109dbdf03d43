"""Reads of adjudication: a project's queue of items waiting for a decision, and everything an adjudicator weighs
about an item (every label with its rater's kind and quality, and the latest consensus run's posterior)."""
from django.db.models import Count, Q, QuerySet

from ..models import (
    Adjudication,
    Annotation,
    ConsensusRun,
    ConsensusRunItem,
    LabelingProject,
    Membership,
    QueueItem,
    Rater,
)
from . import project_list
from .consensus import counted_provenances


def adjudication_queue(*, project: LabelingProject) -> QuerySet[QueueItem]:
    """The project's items waiting for adjudication, oldest first (read through the partial index
    queueitem_adjudication)."""
    return (QueueItem.objects.filter(project=project, state=QueueItem.State.ADJUDICATION)
            .select_related("record").order_by("id"))


def adjudication_next(*, project: LabelingProject, after_id: int = 0) -> QueueItem | None:
    """The oldest waiting item after `after_id` (the one just decided or skipped), else the oldest of all."""
    queue = adjudication_queue(project=project)
    return queue.filter(id__gt=after_id).first() or (queue.first() if after_id else None)


def adjudication_waiting(*, project: LabelingProject) -> int:
    return QueueItem.objects.filter(project=project, state=QueueItem.State.ADJUDICATION).count()


def adjudication_item(*, user, item_id: int) -> QueueItem | None:
    """An item of a project the user may see (staff: any), with its project and record; None otherwise, so
    that another project's items are never confirmed to exist."""
    return (QueueItem.objects.filter(pk=item_id, project__in=project_list(user=user))
            .select_related("project", "record").first())


def expert_memberships(*, rater: Rater) -> list[Membership]:
    """The rater's memberships of active projects, with each project's count of items waiting for adjudication."""
    return list(Membership.objects.filter(rater=rater, project__is_active=True).select_related("project")
                .annotate(waiting=Count("project__items", filter=Q(project__items__state=QueueItem.State.ADJUDICATION)))
                .order_by("project__name"))


def latest_run(*, project: LabelingProject) -> ConsensusRun | None:
    """The project's newest done run, without its confusion matrices (large, and not needed here)."""
    return (ConsensusRun.objects.filter(project=project, status=ConsensusRun.Status.DONE)
            .only("id", "method", "classes", "rater_accuracy", "finished_at").order_by("-finished_at", "-id").first())


def items_for_adjudication(*, project: LabelingProject, items: list[QueueItem]) -> list[QueueItem]:
    """The items, each with `.labels` (every label not withdrawn, oldest first, each with its author, their kind,
    gold accuracy and model accuracy) and `.posterior` (the latest done run's result for it, or None)."""
    ids = [item.pk for item in items]
    counted = set(counted_provenances(project))
    rows = list(Annotation.objects.filter(item_id__in=ids, undone_at__isnull=True, is_gold=False).order_by("id")
                .values_list("id", "item_id", "value", "provenance", "created_at", "rater_id",
                             "rater__user__username", "rater__kind", "rule_id", "rule__name", "rule__signal", "actor"))
    rater_ids = {row[5] for row in rows if row[5] is not None}
    gold = {r["rater_id"]: r for r in Annotation.objects.filter(
        project=project, rater_id__in=rater_ids, correct__isnull=False, undone_at__isnull=True)
        .values("rater_id").annotate(answered=Count("id"), right=Count("id", filter=Q(correct=True)))}
    run = latest_run(project=project)
    model = run.rater_accuracy if run else {}
    by_item: dict[int, list[dict]] = {pk: [] for pk in ids}
    for (pk, item_id, value, provenance, created_at, rater_id, username, kind, rule_id, rule_name, signal,
         actor) in rows:
        key = str(rater_id) if rater_id is not None else f"rule:{rule_id}" if rule_id else f"feedback:{actor}"
        answered = gold.get(rater_id, {}).get("answered", 0)
        by_item[item_id].append({
            "id": pk, "value": value, "provenance": provenance, "created_at": created_at,
            "counted": provenance in counted,
            "rater": rater_id, "username": username, "kind": kind,
            "author": username or (f"rule {rule_name or signal or rule_id}" if rule_id else f"feedback {actor}"),
            "gold_answered": answered,
            "gold_accuracy": gold[rater_id]["right"] / answered if answered else None,
            "model_accuracy": model.get(key),
        })
    posteriors = {}
    if run is not None:
        for item_id, label, confidence, posterior in (ConsensusRunItem.objects.filter(run=run, item_id__in=ids)
                                                      .values_list("item_id", "label", "confidence", "posterior")):
            posteriors[item_id] = {"run": run.pk, "method": run.method, "label": label, "confidence": confidence,
                                   "classes": run.classes, "posterior": posterior}
    for item in items:
        item.labels = by_item[item.pk]
        item.posterior = posteriors.get(item.pk)
    return items


def adjudications_recent(*, project: LabelingProject, user, limit: int = 5) -> list[Adjudication]:
    """The user's latest decisions in the project, newest first, with the records they were about."""
    return list(Adjudication.objects.filter(project=project, decided_by_id=user.pk).select_related("item__record")
                .order_by("-decided_at", "-id")[:limit])
