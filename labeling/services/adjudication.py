"""Adjudication: an expert of the project's domains (or staff) sets the final label of an item the raters could
not settle, with a reason, or staff close it as unlabelable. Who, when, why and what it replaced are kept.

An item waits in the `adjudication` state. Staff may also decide an open or complete item (an override of
the crowd: its live leases go back, their raters' late labels are refused). An adjudicated or unlabelable
item is final: the decision is never overwritten by a later one, by settling, or by a consensus run (which
instead takes the adjudicated label as known truth). Two adjudicators deciding one item at once: the item's
row lock makes one of them win; the other is told who decided it (409).
"""
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..labels import LabelSpec, label_key, same_label
from ..models import Adjudication, Annotation, Assignment, LabelingProject, Membership, QueueItem, Rater
from ..selectors.consensus import counted_provenances
from .errors import AlreadyDecided, LabelingError, NotAdjudicable, NotAllowed, ReasonMissing

REASON_MAX = 2000


def adjudicator_problem(*, user, project: LabelingProject, membership: Membership | None = None) -> str | None:
    """Why this user may not adjudicate the project's items, or None when they may.

    Staff may. Otherwise a subject-matter expert (an active rater of kind expert) who is a member of the
    project, not paused in it, and whose domains meet the project's (any expert member when the project
    names no domain). A generalist or an end user never adjudicates.
    """
    if not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
        return "sign in to adjudicate"
    if user.is_staff:
        return None
    rater = Rater.objects.filter(user_id=user.pk).first()
    if rater is None or rater.kind != Rater.Kind.EXPERT:
        return "only staff and the project's subject-matter experts adjudicate"
    if not rater.is_active or not user.is_active:
        return "this rater is inactive"
    if membership is None:
        membership = Membership.objects.filter(project=project, rater=rater).first()
    if membership is None:
        return f"this expert is not a member of project {project.name!r}"
    if membership.is_paused:
        return f"this expert is paused in project {project.name!r}"
    if project.domains and not set(project.domains) & set(rater.domains or []):
        return f"project {project.name!r} needs an expert of one of the domains {project.domains}"
    return None


def adjudicator_check(*, user, project: LabelingProject) -> None:
    problem = adjudicator_problem(user=user, project=project)
    if problem:
        raise NotAllowed(problem, field="project", value=project.pk)


def item_adjudicate(*, item: QueueItem, user, value, reason: str,
                    now: datetime | None = None) -> tuple[Adjudication, bool]:
    """Set an item's final label; returns (adjudication, created).

    The value is checked against the project's label kind (InvalidLabel) and the reason must not be
    blank (ReasonMissing). The same decision sent again by the same person (a retried request) returns
    the first adjudication with created=False; any other decision on a decided item is AlreadyDecided.
    """
    project = item.project
    reason = _reason(reason)
    adjudicator_check(user=user, project=project)
    value = LabelSpec.of(project).check(value)
    return _decide(item.pk, project, user, value=value, unlabelable=False, reason=reason, now=now)


def item_close_unlabelable(*, item: QueueItem, user, reason: str,
                           now: datetime | None = None) -> tuple[Adjudication, bool]:
    """Close an item as unlabelable (staff only): it leaves the queue without a label; returns (adjudication,
    created), with the same retry rule as `item_adjudicate`."""
    project = item.project
    reason = _reason(reason)
    if not getattr(user, "is_staff", False):
        adjudicator_check(user=user, project=project)  # says why when they may not adjudicate at all
        raise NotAllowed("only staff close an item as unlabelable", field="unlabelable", value=True)
    return _decide(item.pk, project, user, value=None, unlabelable=True, reason=reason, now=now)


def _reason(reason) -> str:
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise ReasonMissing("say why: a reason is required", field="reason", value=reason)
    return reason[:REASON_MAX]


def _decide(item_id: int, project: LabelingProject, user, *, value, unlabelable: bool, reason: str,
            now: datetime | None) -> tuple[Adjudication, bool]:
    now = now or timezone.now()
    for _ in range(3):
        with transaction.atomic():
            # Leases first, then the item, in the queue's lock order (a submit locks its lease, then the item).
            leases = list(Assignment.objects.select_for_update().filter(item_id=item_id, state=Assignment.State.LEASED)
                          .order_by("id").values_list("id", "holds_slot"))
            item = QueueItem.objects.select_for_update().get(pk=item_id)
            if item.leased_count != sum(holds for _, holds in leases):
                continue  # a lease was claimed between the two locks: lock again, with it
            return _decide_locked(item, project, user, leases, value=value, unlabelable=unlabelable,
                                  reason=reason, now=now)
    raise LabelingError("the item is busy; try again", field="item", value=item_id)


def _decide_locked(item: QueueItem, project: LabelingProject, user, leases: list[tuple], *, value,
                   unlabelable: bool, reason: str, now: datetime) -> tuple[Adjudication, bool]:
    if item.is_gold:
        raise NotAdjudicable("a gold item's answer is known already: change it as a gold item", field="item",
                             value=item.pk)
    if item.state == QueueItem.State.UNLABELABLE or item.decided_by == QueueItem.Decided.ADJUDICATED:
        last = (Adjudication.objects.filter(item=item).select_related("decided_by")
                .order_by("-decided_at", "-id").first())
        if (last is not None and last.decided_by_id == user.pk and last.unlabelable == unlabelable
                and last.reason == reason and (unlabelable or same_label(last.value, value))):
            return last, False  # the same request again
        who = f" by {last.decided_by.get_username()} at {last.decided_at:%Y-%m-%d %H:%M} UTC" if last else ""
        raise AlreadyDecided(f"item {item.pk} was decided already{who}", field="item", value=item.pk)
    if item.state != QueueItem.State.ADJUDICATION and not user.is_staff:
        raise NotAdjudicable(f"item {item.pk} is {item.state}, not waiting for adjudication", field="item",
                             value=item.pk)
    if leases:
        # The override ends the item: its live leases go back, and a late submit on them is refused.
        Assignment.objects.filter(pk__in=[pk for pk, _ in leases]).update(
            state=Assignment.State.EXPIRED, holds_slot=False, finished_at=now)
    fields = {
        "state": QueueItem.State.UNLABELABLE if unlabelable else QueueItem.State.COMPLETE,
        "consensus": None if unlabelable else value, "confidence": None if unlabelable else 1.0,
        "agreement": None if unlabelable else _agreement(item, project, value),
        "decided_by": QueueItem.Decided.ADJUDICATED, "consensus_run": None, "completed_at": now,
        "leased_count": F("leased_count") - sum(holds for _, holds in leases),
    }
    QueueItem.objects.filter(pk=item.pk).update(**fields)
    previous = item.consensus
    item.refresh_from_db()
    adjudication = Adjudication.objects.create(item=item, project=project, decided_by=user, value=value,
                                               unlabelable=unlabelable, reason=reason,
                                               previous_consensus=previous, decided_at=now)
    return adjudication, True


def _agreement(item: QueueItem, project: LabelingProject, value) -> float | None:
    """The share of the item's counted labels equal to the adjudicated label (None: it has none)."""
    values = list(Annotation.objects.filter(item=item, provenance__in=counted_provenances(project), is_gold=False,
                                            undone_at__isnull=True).values_list("value", flat=True))
    if not values:
        return None
    key = label_key(value)
    return sum(label_key(v) == key for v in values) / len(values)
