"""Staff hand a given item to a given rater: a lease that `next` then returns to that rater first."""
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import Annotation, Assignment, QueueItem, Rater
from .errors import CannotAssign, NotAllowed
from .people import rater_fit_problem


def item_assign(*, item: QueueItem, rater: Rater, by, lease: timedelta | None = None,
                now: datetime | None = None) -> Assignment:
    """Lease `item` to `rater` on a staff member's word; returns the lease (`.created` False when the rater
    already held a live lease on this very item, which is returned as it is).

    The rater must fit the project (member, kind, domains, active) and must not have leased, labeled or
    skipped the item before; the item must be open. A rater's other live lease in the project is handed
    back to the queue first (one live lease per rater and project): `.handed_back` names it. An item
    whose slots are all taken gets one more (`needed` + 1): staff may ask for an extra label. A gold
    item is leased as gold (outside the slots).
    """
    if not getattr(by, "is_staff", False):
        raise NotAllowed("only staff assign items to raters", field="by", value=getattr(by, "pk", None))
    project = item.project
    problem = rater_fit_problem(rater, project)
    if problem:
        raise CannotAssign(problem, field="rater", value=rater.user.get_username())
    now = now or timezone.now()
    until = now + (lease or project.lease_duration)
    with transaction.atomic():
        # Locks as everywhere in the queue: the rater's leases first, then the items in id order.
        live = list(Assignment.objects.select_for_update().filter(rater=rater, project=project,
                                                                   state=Assignment.State.LEASED))
        items = {i.pk: i for i in QueueItem.objects.select_for_update()
                 .filter(pk__in={item.pk, *(a.item_id for a in live)}).order_by("id")}
        target = items[item.pk]
        for current in live:
            if current.item_id == target.pk and current.expires_at > now:
                current.created, current.handed_back = False, None
                return current
        if target.state != QueueItem.State.OPEN:
            raise CannotAssign(f"the item is {target.state}: it takes no more labels", field="item",
                               value=target.pk)
        others = Assignment.objects.filter(item=target, rater=rater, state__in=Assignment.HELD).exclude(
            pk__in=[a.pk for a in live])
        labeled = Annotation.objects.filter(item=target, rater=rater, undone_at__isnull=True)
        if others.exists() or labeled.exists():
            raise CannotAssign("this rater already labeled or skipped this item", field="item", value=target.pk)
        handed_back = None
        for current in live:
            # Their other lease goes back to the queue, as on undo: they are now shown the assigned item.
            if current.holds_slot:
                items[current.item_id].leased_count -= 1
            Assignment.objects.filter(pk=current.pk).update(state=Assignment.State.EXPIRED, holds_slot=False,
                                                           finished_at=now)
            handed_back = current.pk
        gold = target.is_gold
        if not gold:
            if target.submitted_count + target.leased_count >= target.needed:
                target.needed += 1  # every slot is taken: staff ask for one more label on this item
            target.leased_count += 1
        for locked in items.values():
            QueueItem.objects.filter(pk=locked.pk).update(needed=locked.needed, leased_count=locked.leased_count)
        try:
            with transaction.atomic():
                assignment = Assignment.objects.create(item=target, project=project, rater=rater, is_gold=gold,
                                                       holds_slot=not gold, leased_at=now, expires_at=until)
        except IntegrityError:
            # The rater's own `next` took a lease between our lock and this insert.
            raise CannotAssign("the rater just took another item; try again", field="rater",
                               value=rater.user.get_username()) from None
    assignment.project = project
    assignment.created, assignment.handed_back = True, handed_back
    return assignment
