"""Rater quality in a project: the gold-accuracy gate that pauses a rater, and pausing and resuming by staff."""
from datetime import datetime

from django.db import transaction
from django.db.models import Count, F, Max, Q
from django.urls import reverse
from django.utils import timezone

from validation.alerts import alert_raise, alert_resolve
from validation.models import Alert, AuditEntry

from ..models import Annotation, Assignment, LabelingProject, Membership, QueueItem, Rater

GATE_ACTOR = "gate:gold-accuracy"


def pause_subject(*, project_id: int, rater_id: int) -> str:
    """What a rater-paused alert is about: one open alert per rater and project."""
    return f"project:{project_id}/rater:{rater_id}"


def rater_gold_gate(*, rater_id: int, project_id: int) -> bool:
    """Pause the rater in the project when their gold accuracy fell under the project's minimum; True if paused now.

    The gate applies once the rater has `min_gold_answers` gold answers (not withdrawn), counted
    since staff last resumed them in this project: a resume is a fresh start, not a pause again at
    the very next gold answer for answers staff have already judged. Called after each gold answer
    is committed; a rater already paused is left as they are.
    """
    project = (LabelingProject.objects.filter(pk=project_id)
               .only("id", "name", "min_gold_accuracy", "min_gold_answers").first())
    if project is None or project.min_gold_accuracy is None:
        return False
    answers = Annotation.objects.filter(project_id=project_id, rater_id=rater_id, correct__isnull=False,
                                        undone_at__isnull=True)
    answered, right = _gold_counts(answers)
    if answered < project.min_gold_answers or right / answered >= project.min_gold_accuracy:
        return False
    # Failing over every answer: count only those given since the last resume (read only in this rare case).
    resumed = (Alert.objects.filter(kind=Alert.Kind.RATER_PAUSED, resolved_at__isnull=False,
                                    subject=pause_subject(project_id=project_id, rater_id=rater_id))
               .aggregate(last=Max("resolved_at"))["last"])
    if resumed is not None:
        answered, right = _gold_counts(answers.filter(created_at__gt=resumed))
        if answered < project.min_gold_answers or right / answered >= project.min_gold_accuracy:
            return False
    accuracy = right / answered
    reason = (f"gold accuracy {accuracy:.0%} ({right} of {answered} gold answers right) is under the project's "
              f"minimum of {project.min_gold_accuracy:.0%}")
    return rater_pause(project=project, rater_id=rater_id, reason=reason, by=None)


def _gold_counts(answers) -> tuple[int, int]:
    counts = answers.aggregate(answered=Count("id"), right=Count("id", filter=Q(correct=True)))
    return counts["answered"], counts["right"]


def rater_pause(*, project: LabelingProject, rater_id: int, reason: str, by=None,
                now: datetime | None = None) -> bool:
    """Pause a member of the project: they get no more of its work and their live leases go back to the queue.

    `by` is the staff member who paused them, None for the gold-accuracy gate (which also raises a
    `rater_paused` alert linking to the rater's quality page). True when this call paused them;
    False when they were paused already or are not a member.
    """
    now = now or timezone.now()
    reason = reason.strip() or "paused by staff"
    with transaction.atomic():
        # Conditional: of two gates (or a gate and staff) acting at once, one pauses and one does nothing.
        paused = Membership.objects.filter(project=project, rater_id=rater_id, paused_at__isnull=True).update(
            paused_at=now, paused_reason=reason, paused_by=by)
        if not paused:
            return False
        returned = _leases_hand_back(project_id=project.pk, rater_id=rater_id, now=now)
        subject = pause_subject(project_id=project.pk, rater_id=rater_id)
        AuditEntry.objects.create(actor=_actor(by), action="rater_paused",
                                  detail=f"{subject}: {reason}; {returned} live lease(s) handed back")
        if by is None:
            username = Rater.objects.filter(pk=rater_id).values_list("user__username", flat=True).first()
            alert_raise(kind=Alert.Kind.RATER_PAUSED, subject=subject,
                        link=reverse("label-quality-rater", args=[project.pk, rater_id]),
                        message=f"{username} was paused in project {project.name}: {reason}. "
                                f"Staff can resume them from their quality page.")
    return True


def rater_resume(*, project: LabelingProject, rater: Rater, by) -> bool:
    """Let a paused rater work in the project again (staff); closes their rater-paused alert. True if resumed."""
    with transaction.atomic():
        resumed = Membership.objects.filter(project=project, rater=rater, paused_at__isnull=False).update(
            paused_at=None, paused_reason="", paused_by=None)
        if not resumed:
            return False
        subject = pause_subject(project_id=project.pk, rater_id=rater.pk)
        # The alert's resolution time is also where the gate starts counting gold answers again.
        alert_resolve(kind=Alert.Kind.RATER_PAUSED, subject=subject)
        AuditEntry.objects.create(actor=_actor(by), action="rater_resumed", detail=subject)
    return True


def _actor(user) -> str:
    return f"user:{user.get_username()}" if user is not None else GATE_ACTOR


def _leases_hand_back(*, project_id: int, rater_id: int, now: datetime) -> int:
    """Expire the rater's live leases in the project, giving their slots back (in the caller's transaction).

    Locks as the queue does (queue.py): the assignments first, then their items in id order.
    A lease being submitted right now is waited for and then, no longer leased, left alone.
    """
    leases = list(Assignment.objects.select_for_update().filter(
        project_id=project_id, rater_id=rater_id, state=Assignment.State.LEASED).order_by("id")
        .only("id", "item_id", "holds_slot"))
    if not leases:
        return 0
    Assignment.objects.filter(pk__in=[lease.pk for lease in leases]).update(
        state=Assignment.State.EXPIRED, holds_slot=False, finished_at=now)
    slots: dict[int, int] = {}
    for lease in leases:
        if lease.holds_slot:
            slots[lease.item_id] = slots.get(lease.item_id, 0) + 1
    for item_id in sorted(slots):
        QueueItem.objects.filter(pk=item_id).update(leased_count=F("leased_count") - slots[item_id])
    return len(leases)
