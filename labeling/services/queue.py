"""The work queue: leasing the next item to a rater, submitting, skipping, undoing, lease expiry (settling.py settles).

How an item's slots stay exact under any concurrency (Label Studio's issue 795, two annotators on
one task, came from counting locks in one statement and taking them in another):

- `QueueItem.needed`, `leased_count` and `submitted_count` live on the item row, and every change to
  them happens while that row is locked: a claim locks it with `SELECT ... FOR UPDATE SKIP LOCKED`
  (so raters asking at once each take a different row and nobody waits) and raises `leased_count` in
  the same transaction; submit, skip, undo and expiry lock the assignment first, then the item.
  A check constraint (`submitted + leased <= needed`) refuses anything that would over-assign.
- One rater: a partial unique index allows one live lease per rater and project, one lease per rater
  and item, and one (not withdrawn) human annotation per rater and item.
- A skipped or expired lease gives its slot back (Label Studio PR 3568: skips were counted as done).
- "No item" means none is claimable by this rater: a claim that only skipped rows other transactions
  hold is retried for a bounded time, then answered QueueBusy (503), never "no work" (item_next).

Locks are always taken assignment first, then items in id order, so these paths never deadlock.
"""
import random
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from ..labels import LabelSpec, same_label
from ..models import Annotation, Assignment, LabelingProject, Membership, QueueItem, Rater
from . import hot, raters
from .errors import AlreadyFinished, LeaseLost, NotAllowed, NothingToUndo, QueueBusy
from .people import rater_check_fits, rater_fit_problem
from .settling import item_settle

# Expired leases of other raters handed back by each `next`: enough to keep up, bounded so `next` stays cheap.
RECLAIM_PER_CALL = 10


# Backoff between claims while claimable rows are held by others: short at first (a claim holds its
# row for a millisecond or so), doubling up to the cap.
CONTENTION_FIRST_PAUSE, CONTENTION_MAX_PAUSE = 0.02, 0.25
BUSY_RETRY_AFTER = 1  # seconds: rows are held for milliseconds, so a second later the queue has moved on


def item_next(*, rater: Rater, project: LabelingProject, lease: timedelta | None = None,
              now: datetime | None = None, with_record: bool = False) -> Assignment | None:
    """The rater's live lease in the project, or a new one on an item that fits them; None when no item is
    claimable by this rater.

    A new lease goes to the oldest open item that still has a free slot and that this rater has not
    leased, labeled or skipped; gold items come instead at the project's gold rate, and whenever no
    regular item is left for the rater (so gold never starves). Raises NotAllowed when the rater may
    not work on the project (membership, kind, domains, inactive). `with_record` reads the record the
    lease is about into `.record` in the same statement (PostgreSQL).

    The claim skips rows other transactions hold (FOR UPDATE SKIP LOCKED: raters never wait on each
    other). When it finds nothing, a probe without locks says whether a claimable item exists all the
    same: then the rows were only held, and the claim is tried again with a short backoff for up to
    SIEVE_NEXT_CONTENTION_SECONDS (2 s), after which QueueBusy is raised rather than saying "no work".
    """
    problem = rater_fit_problem(rater, project, membership=False)
    if problem:
        raise NotAllowed(problem, field="project", value=project.pk)
    fixed_now = now is not None
    now = now or timezone.now()
    until = now + (lease or project.lease_duration)
    _reclaim_now_and_then(project, now)
    if project.gold_rate > 0 and random.random() < project.gold_rate:
        # A live lease comes back first, gold or not: the claim below returns it.
        gold = _gold_lease(rater, project, now, until)
        if gold is not None:
            return gold
    deadline, pause = None, CONTENTION_FIRST_PAUSE
    while True:
        found = _claim_regular(rater, project, now, until, with_record)
        if found is not None:
            return found
        if not _claimable_exists(rater, project):
            break  # nothing this rater could take, held or not
        # Claimable items exist, but other transactions held every one of them (claims, submits, a re-settle).
        clock = time.monotonic()
        if deadline is None:
            deadline = clock + float(getattr(settings, "SIEVE_NEXT_CONTENTION_SECONDS", 2.0))
        if clock >= deadline:
            raise QueueBusy("the items you could label are held by other raters' requests right now; ask again "
                            "shortly", retry_after=BUSY_RETRY_AFTER, field="project", value=project.pk)
        time.sleep(min(pause, deadline - clock))
        pause = min(pause * 2, CONTENTION_MAX_PAUSE)
        if not fixed_now:
            now = timezone.now()
            until = now + (lease or project.lease_duration)
    if project.gold_rate > 0:
        gold = _gold_lease(rater, project, now, until)  # regular work ran out: gold they have not answered
        if gold is not None:
            return gold
    rater_check_fits(rater, project)  # nothing came: say so if the reason is that they are not a member
    return None


def _claim_regular(rater, project, now, until, with_record) -> Assignment | None:
    """The rater's live lease, or a new one on a regular item; None when the claim (skipping held rows) finds none."""
    for attempt in range(3):
        try:
            found, own = _claim(rater, project, now, until, with_record)
        except IntegrityError:
            # The same rater asked twice at once and the other request won: answer with its lease.
            found, own = _live_lease(rater, project).first(), True
        if found is not None:
            found.project = project  # the caller's object, so that submit need not fetch it again
        if own and found is not None:
            if found.expires_at > now:
                return found
            _lease_expire(found.pk, now=now)  # their own lease ran out: its slot goes back, then a new claim
            continue
        if found is not None:
            return found
        if attempt or not leases_reclaim(project=project, now=now):
            break  # nothing claimable, and no expired lease to hand back
    return None


def _claimable_exists(rater: Rater, project: LabelingProject) -> bool:
    """Whether an item is claimable by this rater, reading rows without locking them (held ones included)."""
    if connection.vendor == "postgresql":
        return hot.claimable(rater_id=rater.pk, project_id=project.pk)
    member = Membership.objects.filter(project=project, rater=rater, paused_at__isnull=True)
    return (member.exists() and
            QueueItem.objects.claimable().filter(project=project).filter(_not_held_by(rater)).exists())


def _gold_lease(rater, project, now, until) -> Assignment | None:
    """A new gold lease, or None (no gold left for the rater, or they hold a live lease: the claim returns it)."""
    rater_check_fits(rater, project)
    if _live_lease(rater, project).exists():
        return None
    try:
        gold = _claim_gold(rater, project, now, until)
    except IntegrityError:
        return None  # the same rater asked twice at once: the claim returns the other request's lease
    if gold is not None:
        gold.project = project
    return gold


_last_reclaim: dict[int, float] = {}
RECLAIM_EVERY = 1.0  # seconds, per process and project


def _reclaim_now_and_then(project: LabelingProject, now: datetime) -> None:
    """Hand back expired leases at most once a second per process: cheap, and a claim that finds nothing
    reclaims at once anyway."""
    clock = time.monotonic()
    if clock - _last_reclaim.get(project.pk, 0.0) >= RECLAIM_EVERY:
        _last_reclaim[project.pk] = clock
        leases_reclaim(project=project, now=now)


def _live_lease(rater: Rater, project: LabelingProject):
    """The rater's leased assignment in the project (at most one: a partial unique index), live or run out."""
    return Assignment.objects.filter(rater=rater, project=project, state=Assignment.State.LEASED)


def _not_held_by(rater: Rater):
    """Items the rater has not leased, labeled or skipped, nor brought a label for (an import)."""
    imported = Annotation.objects.filter(item=OuterRef("pk"), rater=rater, provenance=Annotation.Provenance.IMPORTED,
                                         undone_at__isnull=True)
    return ~Exists(Assignment.objects.filter(item=OuterRef("pk"), rater=rater, state__in=Assignment.HELD)) & \
        ~Exists(imported)


def _claim(rater, project, now, until, with_record=False) -> tuple[Assignment | None, bool]:
    """(assignment, is_own): the rater's leased assignment if any (live or not), else a new lease, else None."""
    if connection.vendor == "postgresql":
        return hot.claim(rater_id=rater.pk, project_id=project.pk, now=now, until=until, with_record=with_record)
    own = _live_lease(rater, project).first()
    if own is not None:
        return own, True
    if not Membership.objects.filter(project=project, rater=rater, paused_at__isnull=True).exists():
        return None, False
    with transaction.atomic():
        item = (QueueItem.objects.claimable().filter(project=project).filter(_not_held_by(rater)).order_by("id")
                .select_for_update(skip_locked=True, of=("self",)).only("id").first())
        if item is None:
            return None, False
        QueueItem.objects.filter(pk=item.pk).update(leased_count=F("leased_count") + 1)
        return Assignment.objects.create(item_id=item.pk, project=project, rater=rater, holds_slot=True,
                                         leased_at=now, expires_at=until), False


def _claim_gold(rater, project, now, until) -> Assignment | None:
    """Gold items are outside the slots: each fitting rater answers each gold item once, in a random order."""
    member = Membership.objects.filter(project=project, rater=rater, paused_at__isnull=True)
    gold = QueueItem.objects.filter(project=project, is_gold=True).filter(_not_held_by(rater), Exists(member))
    item = gold.order_by("?").only("id").first()
    if item is None:
        return None
    with transaction.atomic():
        return Assignment.objects.create(item_id=item.pk, project=project, rater=rater, is_gold=True,
                                         leased_at=now, expires_at=until)


def _lease_expire(assignment_id: int, *, now: datetime) -> bool:
    """Mark a lease that ran out as expired and give its slot back; False if it was no longer leased."""
    with transaction.atomic():
        lease = (Assignment.objects.select_for_update().filter(pk=assignment_id, state=Assignment.State.LEASED,
                                                               expires_at__lte=now).first())
        if lease is None:
            return False
        _lease_end(lease, Assignment.State.EXPIRED, now=now)
    return True


def _lease_end(lease: Assignment, state: str, *, now: datetime, reason: str = "") -> None:
    """End a locked lease (expired or skipped); a slot it held goes back to the item."""
    if lease.holds_slot:
        QueueItem.objects.filter(pk=lease.item_id).update(leased_count=F("leased_count") - 1)
    fields = {"state": state, "holds_slot": False, "finished_at": now}
    if reason:
        fields["skip_reason"] = reason[:500]
    Assignment.objects.filter(pk=lease.pk).update(**fields)
    for name, value in fields.items():
        setattr(lease, name, value)


def leases_reclaim(*, project: LabelingProject | None = None, now: datetime | None = None,
                   limit: int = RECLAIM_PER_CALL) -> int:
    """Expire up to `limit` leases that ran out, oldest first, handing their slots back; returns how many.

    Leases another transaction holds (a late submit, say) are skipped, not waited for.
    """
    now = now or timezone.now()
    with transaction.atomic():
        found = Assignment.objects.filter(state=Assignment.State.LEASED, expires_at__lte=now)
        if project is not None:
            found = found.filter(project=project)
        leases = list(found.order_by("expires_at").select_for_update(skip_locked=True)
                      .only("id", "item_id", "holds_slot")[:limit])
        if not leases:
            return 0
        slots: dict[int, int] = {}
        for lease in leases:
            if lease.holds_slot:
                slots[lease.item_id] = slots.get(lease.item_id, 0) + 1
        Assignment.objects.filter(pk__in=[a.pk for a in leases]).update(
            state=Assignment.State.EXPIRED, holds_slot=False, finished_at=now)
        for item_id in sorted(slots):  # in id order: two reclaimers never wait on each other in a cycle
            QueueItem.objects.filter(pk=item_id).update(leased_count=F("leased_count") - slots[item_id])
    return len(leases)


def assignment_submit(*, assignment: Assignment, value, now: datetime | None = None) -> tuple[Annotation, bool]:
    """Submit the rater's label for a leased item; returns (annotation, created).

    The value is checked against the project's label kind (InvalidLabel). Submitting the same value
    again on a submitted assignment returns the first annotation (a retried request). A lease that
    expired still counts while its slot is free; once the slot went to someone else, LeaseLost.
    """
    project = assignment.project
    value = LabelSpec.of(project).check(value)
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        try:
            if not project.feedback_counts and not getattr(assignment, "completes_item", False):
                # Most labels do not complete their item: one statement, committed on its own.
                row = hot.submit(assignment_id=assignment.pk, value=value, now=now, settles=False)
                if row is not None:
                    return _submitted(assignment, project, value, now, *row), True
            with transaction.atomic():
                row = hot.submit(assignment_id=assignment.pk, value=value, now=now, settles=True,
                                 with_feedback=project.feedback_counts)
                if row is not None:
                    return _submitted(assignment, project, value, now, *row), True
        except IntegrityError:
            pass  # this rater's label already on the item: the slow path below says so
    return _submit(assignment, project, value, now)


def _submitted(assignment, project, value, now, annotation_id, item_id, needed, submitted, state, decided_by,
               others) -> Annotation:
    """After the hot submit, in its transaction: settle the item if it may be done, and describe the annotation."""
    if others is not None:
        # The row is locked by the submit. What settling reads of an open item, and its labels, came back with
        # the submit (an open item has no consensus fields yet); a settled one (a late lease) is read whole.
        if state == QueueItem.State.OPEN:
            item = QueueItem(id=item_id, project_id=project.pk, needed=needed, submitted_count=submitted,
                             state=state, decided_by=decided_by)
        else:
            item = QueueItem.objects.get(pk=item_id)
        item_settle(item=item, project=project, now=now, counted=[*others, value])
    annotation = Annotation(id=annotation_id, item_id=item_id, project_id=project.pk, assignment_id=assignment.pk,
                            rater_id=assignment.rater_id, value=value, provenance=Annotation.Provenance.HUMAN,
                            created_at=now)
    annotation._state.adding = False
    return annotation


def _submit(assignment: Assignment, project: LabelingProject, value, now: datetime) -> tuple[Annotation, bool]:
    """Every submit on SQLite, and on PostgreSQL the rarer cases: a retry, an expired lease, a gold item."""
    with transaction.atomic():
        lease = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if lease.state == Assignment.State.SUBMITTED:
            done = Annotation.objects.get(assignment=lease)
            if same_label(done.value, value) and done.undone_at is None:
                return done, False
            raise AlreadyFinished("this assignment was already submitted with another value", field="value",
                                  value=done.value)
        if lease.state in (Assignment.State.SKIPPED, Assignment.State.UNDONE):
            raise AlreadyFinished(f"this assignment was {lease.state}; ask for the next item", field="assignment",
                                  value=lease.pk)
        item = QueueItem.objects.select_for_update().get(pk=lease.item_id)
        if lease.is_gold != item.is_gold:
            # Its gold flag changed since the lease (which was then handed back): the lease no longer fits it.
            raise LeaseLost(f"the item is {'no longer' if lease.is_gold else 'now'} a gold item; ask for the "
                            "next item", field="assignment", value=lease.pk)
        if lease.is_gold:
            annotation = _annotation_add(lease, item, value, now, correct=same_label(value, item.gold_answer))
            # Scored: the gold-accuracy gate may pause the rater, once this answer is committed.
            transaction.on_commit(lambda: raters.rater_gold_gate(rater_id=lease.rater_id, project_id=lease.project_id),
                                  robust=True)
            return annotation, True
        if lease.holds_slot:
            item.leased_count -= 1  # the lease's slot becomes the annotation's
        elif item.state != QueueItem.State.OPEN or item.submitted_count + item.leased_count >= item.needed:
            # Expired, its slot handed back, and taken by someone else since (or the item is done).
            raise LeaseLost("the lease expired and the item went to another rater; ask for the next item",
                            field="assignment", value=lease.pk)
        item.submitted_count += 1
        annotation = _annotation_add(lease, item, value, now)
        QueueItem.objects.filter(pk=item.pk).update(leased_count=item.leased_count,
                                                    submitted_count=item.submitted_count)
        item_settle(item=item, project=project, now=now)
    return annotation, True


def _annotation_add(lease: Assignment, item: QueueItem, value, now, correct=None) -> Annotation:
    try:
        with transaction.atomic():
            # A gold answer is marked as one for good: it never counts toward consensus, even once the
            # item stops being gold.
            annotation = Annotation.objects.create(item=item, project_id=lease.project_id, assignment=lease,
                                                   rater_id=lease.rater_id, value=value, correct=correct,
                                                   is_gold=lease.is_gold, created_at=now)
    except IntegrityError:
        raise AlreadyFinished("this rater already labeled this item", field="item", value=item.pk) from None
    Assignment.objects.filter(pk=lease.pk).update(state=Assignment.State.SUBMITTED, holds_slot=False,
                                                  finished_at=now)
    lease.state, lease.holds_slot, lease.finished_at = Assignment.State.SUBMITTED, False, now
    return annotation


def assignment_skip(*, assignment: Assignment, reason: str = "", now: datetime | None = None) -> Assignment:
    """Skip a leased item (with an optional reason): its slot goes back, and it is not served to this rater again."""
    now = now or timezone.now()
    with transaction.atomic():
        lease = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if lease.state == Assignment.State.SKIPPED:
            return lease  # a retried request
        if lease.state not in (Assignment.State.LEASED, Assignment.State.EXPIRED):
            raise AlreadyFinished(f"this assignment was {lease.state}", field="assignment", value=lease.pk)
        _lease_end(lease, Assignment.State.SKIPPED, now=now, reason=reason)
        QueueItem.objects.filter(pk=lease.item_id).update(skipped_count=F("skipped_count") + 1)
    return lease


def annotation_undo_last(*, rater: Rater, project: LabelingProject, now: datetime | None = None) -> Assignment:
    """Withdraw the rater's last submission in the project while its item is still open; returns a new lease on it.

    The rater's other live lease in the project is handed back first (they were shown the next item).
    """
    now = now or timezone.now()
    rater_check_fits(rater, project)
    last = (Assignment.objects.filter(rater=rater, project=project, state=Assignment.State.SUBMITTED)
            .order_by("-finished_at", "-id").first())
    if last is None:
        raise NothingToUndo("there is no submission to undo in this project", field="project", value=project.pk)
    with transaction.atomic():
        live = list(Assignment.objects.select_for_update().filter(rater=rater, project=project,
                                                                  state=Assignment.State.LEASED))
        last = Assignment.objects.select_for_update().get(pk=last.pk)
        if last.state != Assignment.State.SUBMITTED:
            raise NothingToUndo("that submission was already undone", field="assignment", value=last.pk)
        # Every item this touches, locked in id order like everywhere else.
        items = {i.pk: i for i in QueueItem.objects.select_for_update().filter(
            pk__in=[last.item_id, *(lease.item_id for lease in live)]).order_by("id")}
        item = items[last.item_id]
        if item.state != QueueItem.State.OPEN and not last.is_gold:
            raise NothingToUndo("the item is complete: its label can no longer be undone", field="item",
                                value=item.pk)
        for lease in live:
            _lease_end(lease, Assignment.State.EXPIRED, now=now)
        Annotation.objects.filter(assignment=last).update(undone_at=now)
        Assignment.objects.filter(pk=last.pk).update(state=Assignment.State.UNDONE)
        slot = not last.is_gold
        if slot:
            QueueItem.objects.filter(pk=item.pk).update(submitted_count=F("submitted_count") - 1,
                                                        leased_count=F("leased_count") + 1)
        return Assignment.objects.create(item=item, project=project, rater=rater, is_gold=last.is_gold,
                                         holds_slot=slot, leased_at=now, expires_at=now + project.lease_duration)
