"""Reads of the labeling app that the API, the pages and the admin share."""
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Count, Exists, JSONField, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from collection.models import Batch, Record

# Named apart: importing the submodule selectors.consensus binds `consensus` on this package.
from ..labels import consensus as majority
from ..labels import same_label
from ..models import Annotation, Assignment, LabelingProject, Membership, QueueItem, Rater, RoutedBatch

# `next` reads the rater and the project first, on every request. As Model.objects.raw() (public, with Django's
# own converters) these two reads cost half what two compiled querysets do (0.86 vs 1.7 ms a pair, measured
# in-process), which is what kept `next`'s p99 over HTTP under 20 ms with durable lease commits
# (docs/benchmarks.md, "Labeling queue").
_RATER_OF = f"SELECT * FROM {Rater._meta.db_table} WHERE {Rater._meta.get_field('user').column} = %s LIMIT 1"
_PROJECT = f"SELECT * FROM {LabelingProject._meta.db_table} WHERE {LabelingProject._meta.pk.column} = %s"


def _first(rows):
    return next(iter(rows), None)


def rater_of(user) -> Rater | None:
    """The rater profile of a user, or None (an admin who does not label, a source's key)."""
    if not getattr(user, "pk", None):
        return None
    rater = _first(Rater.objects.raw(_RATER_OF, [user.pk]))
    if rater is not None:
        rater.user = user  # the request's own user object: no second query for it
    return rater


def rater_and_project(*, user, project_id: int) -> tuple[Rater | None, LabelingProject | None]:
    """The user's rater profile (`rater_of`) and a project by id, whoever may see it (the caller checks): what
    every `next` reads first."""
    return rater_of(user), _first(LabelingProject.objects.raw(_PROJECT, [project_id]))


def project_list(*, user) -> QuerySet[LabelingProject]:
    """Staff see every project; a rater only the active projects they belong to; by name."""
    if user.is_staff:
        return LabelingProject.objects.order_by("name")
    return LabelingProject.objects.filter(is_active=True, memberships__rater__user_id=user.pk).order_by("name")


def project_get(*, user, project_id: int) -> LabelingProject | None:
    """A project the user may see, or None (so that another project's existence is not revealed)."""
    return project_list(user=user).filter(pk=project_id).first()


def project_find(*, ref: str) -> LabelingProject | None:
    """The project a command line names: by id, slug or exact name."""
    query = Q(slug=ref) | Q(name=ref)
    if ref.isdigit():
        query |= Q(pk=int(ref))
    return LabelingProject.objects.filter(query).order_by("pk").first()


def project_items(*, project: LabelingProject, user) -> QuerySet[QueueItem]:
    """Staff: every item of the project. A rater: only the items they labeled themselves, each with their own
    label as `my_label`."""
    items = QueueItem.objects.filter(project=project).select_related("record")
    if user.is_staff:
        return items
    mine = Annotation.objects.filter(item=OuterRef("pk"), rater__user_id=user.pk, undone_at__isnull=True)
    return items.filter(Exists(mine)).annotate(my_label=Subquery(mine.values("value")[:1], output_field=JSONField()))


def assignment_of(*, user, assignment_id: int) -> Assignment | None:
    """One of the user's own assignments, with its project; another rater's is None (a 404, never a 403
    that confirms it exists)."""
    return (Assignment.objects.filter(pk=assignment_id, rater__user_id=user.pk).select_related("project")
            .order_by().first())


def item_record(*, item_id: int) -> Record:
    """The record an item is about (external id, features, observed time): what a rater is shown."""
    return Record.objects.filter(queue_items=item_id).order_by().first()


def rater_history(*, rater: Rater, project: LabelingProject | None = None, limit: int = 20) -> list[Assignment]:
    """The rater's latest finished work (submitted, skipped, undone), newest first, with their labels."""
    done = Assignment.objects.filter(rater=rater, state__in=[Assignment.State.SUBMITTED, Assignment.State.SKIPPED,
                                                              Assignment.State.UNDONE])
    if project is not None:
        done = done.filter(project=project)
    rows = list(done.select_related("item__record").order_by("-finished_at", "-id")[:limit])
    labels = dict(Annotation.objects.filter(assignment__in=rows).values_list("assignment_id", "value"))
    for row in rows:
        row.label = labels.get(row.pk)
    return rows


def rater_progress(*, rater: Rater, project: LabelingProject, now: datetime | None = None,
                   open_max_age: int = 0) -> dict:
    """Done today (submitted in the last calendar day, UTC) and the project's items still open (gold aside);
    with `open_max_age`, the latter may be a count that many seconds old (`project_open_count`)."""
    now = now or timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    done_today = Annotation.objects.filter(rater=rater, project=project, undone_at__isnull=True,
                                           created_at__gte=midnight).count()
    return {"done_today": done_today, "remaining": project_open_count(project=project, max_age=open_max_age)}


def project_open_count(*, project: LabelingProject, max_age: int = 0) -> int:
    """The project's open items, gold aside. Counting reads the whole queue (about 0.3 s at a million items), so
    with `max_age` the count is shared through the cache by all the project's raters for that many seconds."""
    if not max_age:
        return QueueItem.objects.filter(project=project, state=QueueItem.State.OPEN, is_gold=False).count()
    key = f"labeling:open-items:{project.pk}:{project.created_at.timestamp()}"
    remaining = cache.get(key)
    if remaining is None:
        remaining = project_open_count(project=project)
        cache.set(key, remaining, max_age)
    return remaining


def rater_project_list(*, rater: Rater) -> list[LabelingProject]:
    """The open projects the rater belongs to, by name, whether or not their kind and domains fit each now."""
    return list(LabelingProject.objects.filter(memberships__rater=rater, is_active=True).order_by("name"))


def rater_get(*, rater_id: int) -> Rater | None:
    """A rater with their user."""
    return Rater.objects.select_related("user").filter(pk=rater_id).first()


def label_undone_last(*, rater: Rater, item_id: int):
    """The rater's latest withdrawn label on an item (what an undo shows again), or None."""
    return (Annotation.objects.filter(item_id=item_id, rater=rater, undone_at__isnull=False)
            .order_by("-undone_at", "-id").values_list("value", flat=True).first())


def project_stats(*, project: LabelingProject) -> dict:
    """Items by state, annotations by provenance, and how many raters belong to the project."""
    items = dict(QueueItem.objects.filter(project=project, is_gold=False).values_list("state")
                 .annotate(n=Count("id")).values_list("state", "n"))
    annotations = dict(Annotation.objects.filter(project=project, undone_at__isnull=True).values_list("provenance")
                       .annotate(n=Count("id")).values_list("provenance", "n"))
    return {"open": items.get(QueueItem.State.OPEN, 0), "complete": items.get(QueueItem.State.COMPLETE, 0),
            "gold": QueueItem.objects.filter(project=project, is_gold=True).count(),
            "human": annotations.get(Annotation.Provenance.HUMAN, 0),
            "process_feedback": annotations.get(Annotation.Provenance.PROCESS_FEEDBACK, 0),
            "raters": Membership.objects.filter(project=project).count()}


def feedback_conflicts(*, project: LabelingProject, limit: int = 100) -> list[dict]:
    """Items where process feedback disagrees with the raters: the feedback's majority is not the humans'.

    Each: {item, human (the raters' majority, or the consensus), feedback (the feedback's majority),
    human_votes, feedback_votes}. Ties on either side are not a conflict yet.
    """
    both = QueueItem.objects.filter(project=project, feedback_count__gt=0, submitted_count__gt=0,
                                    is_gold=False).select_related("record").order_by("id")
    conflicts = []
    for start in range(0, 10**9, 500):
        chunk = list(both[start:start + 500])
        if not chunk:
            break
        values: dict[int, dict[str, list]] = {}
        # Gold answers left from when an item was gold never count as the raters' labels.
        for item_id, provenance, value in (Annotation.objects.filter(item__in=chunk, undone_at__isnull=True,
                                                                     is_gold=False)
                                           .values_list("item_id", "provenance", "value")):
            values.setdefault(item_id, {}).setdefault(provenance, []).append(value)
        for item in chunk:
            human = majority(values.get(item.pk, {}).get(Annotation.Provenance.HUMAN, []))
            feedback = majority(values.get(item.pk, {}).get(Annotation.Provenance.PROCESS_FEEDBACK, []))
            if human and feedback and not human.tie and not feedback.tie and not same_label(human.label,
                                                                                            feedback.label):
                conflicts.append({"item": item, "human": human.label, "feedback": feedback.label,
                                  "human_votes": len(values[item.pk][Annotation.Provenance.HUMAN]),
                                  "feedback_votes": len(values[item.pk][Annotation.Provenance.PROCESS_FEEDBACK])})
                if len(conflicts) >= limit:
                    return conflicts
    return conflicts


def gold_accuracy(*, project: LabelingProject) -> list[dict]:
    """Per rater: gold answers given and the share that matched the known answer."""
    rows = (Annotation.objects.filter(project=project, correct__isnull=False, undone_at__isnull=True)
            .values("rater_id", "rater__user__username")
            .annotate(answered=Count("id"), right=Count("id", filter=Q(correct=True)))
            .order_by("rater__user__username"))
    return [{"rater_id": r["rater_id"], "username": r["rater__user__username"], "answered": r["answered"],
             "accuracy": r["right"] / r["answered"]} for r in rows]


def batches_awaiting_route(*, older_than: timedelta, within: timedelta = timedelta(days=1),
                           now: datetime | None = None) -> list[int]:
    """Admitted batches (admitted in the last `within`) that an active project fed by their source has not got
    yet: the route message was lost. The sweeper routes them."""
    now = now or timezone.now()
    fed = LabelingProject.objects.filter(is_active=True, sources=OuterRef("source_id"))
    routed = RoutedBatch.objects.filter(batch=OuterRef("pk"), project__sources=OuterRef("source_id"),
                                        project__is_active=True)
    return list(Batch.objects.filter(status=Batch.Status.ADMITTED, updated_at__lt=now - older_than,
                                     updated_at__gte=now - within)
                .filter(Exists(fed)).exclude(Exists(routed)).values_list("pk", flat=True)[:1000])


def rater_pauses(*, rater: Rater) -> list[Membership]:
    """The open projects in which the rater is paused, with why: their home says so rather than hiding them."""
    return list(Membership.objects.filter(rater=rater, paused_at__isnull=False, project__is_active=True)
                .select_related("project").order_by("project__name"))
