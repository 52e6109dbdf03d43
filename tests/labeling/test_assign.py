"""Staff assign a given item to a given rater: the lease `next` returns first, its slot, and what is refused."""
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling import services
from labeling.models import Assignment, LabelingProject, QueueItem
from labeling.services.labels_io import ImportLine
from tests.factories import CHOICES, batch_of_records


def fresh(item: QueueItem) -> QueueItem:
    return QueueItem.objects.select_related("project").get(pk=item.pk)


def label(rater, project, value):
    lease = services.item_next(rater=rater, project=project)
    return services.assignment_submit(assignment=lease, value=value)[0]


def test_the_assigned_item_is_what_next_returns_first(project, queued, make_rater, admin_user):
    rater = make_rater()
    lease = services.item_assign(item=fresh(queued[7]), rater=rater, by=admin_user)
    assert lease.created and lease.handed_back is None
    assert (lease.item_id, lease.state, lease.holds_slot) == (queued[7].pk, "leased", True)
    assert services.item_next(rater=rater, project=project).pk == lease.pk
    assert fresh(queued[7]).leased_count == 1
    again = services.item_assign(item=fresh(queued[7]), rater=rater, by=admin_user)
    assert again.pk == lease.pk and not again.created


def test_the_raters_other_lease_goes_back_to_the_queue_with_its_slot(project, queued, make_rater, admin_user):
    rater = make_rater()
    current = services.item_next(rater=rater, project=project)
    lease = services.item_assign(item=fresh(queued[4]), rater=rater, by=admin_user)
    assert lease.handed_back == current.pk
    assert Assignment.objects.get(pk=current.pk).state == "expired"
    assert (fresh(queued[0]).leased_count, fresh(queued[4]).leased_count) == (0, 1)
    # The item handed back is served again; this rater never gets it back from `next` while holding the lease.
    assert services.item_next(rater=make_rater(), project=project).item_id == queued[0].pk


def test_an_item_with_every_slot_taken_gets_one_more_for_the_assigned_rater(project, queued, make_rater, admin_user):
    for value in ("positive", "negative"):
        label(make_rater(), project, value)
    services.item_next(rater=make_rater(), project=project)  # the third slot, leased
    item = fresh(queued[0])
    assert (item.submitted_count, item.leased_count, item.needed) == (2, 1, 3)
    extra = make_rater()
    lease = services.item_assign(item=item, rater=extra, by=admin_user)
    item = fresh(queued[0])
    assert (item.submitted_count, item.leased_count, item.needed) == (2, 2, 4)
    services.assignment_submit(assignment=lease, value="positive")
    assert fresh(queued[0]).submitted_count == 3


def test_a_gold_item_is_leased_as_gold_outside_the_slots(project, queued, make_rater, admin_user):
    services.item_set_gold(item=queued[2], answer="positive")
    lease = services.item_assign(item=fresh(queued[2]), rater=make_rater(), by=admin_user)
    assert (lease.is_gold, lease.holds_slot) == (True, False)
    assert fresh(queued[2]).leased_count == 0


def test_a_rater_who_labeled_skipped_or_imported_the_item_is_not_assigned_it(project, queued, make_rater,
                                                                               admin_user):
    labeled, skipped, imported = make_rater(), make_rater(), make_rater("imp")
    done = label(labeled, project, "positive")
    lease = services.item_next(rater=skipped, project=project)
    services.assignment_skip(assignment=lease)
    services.labels_import(project=project, lines=[ImportLine(1, {"external_id": queued[5].record.external_id,
                                                                  "rater": "imp", "value": "neutral"})])
    for rater, item_id in ((labeled, done.item_id), (skipped, lease.item_id), (imported, queued[5].pk)):
        with pytest.raises(services.CannotAssign, match="already labeled or skipped"):
            services.item_assign(item=fresh(QueueItem(pk=item_id)), rater=rater, by=admin_user)


def test_a_rater_who_does_not_fit_the_project_or_a_closed_item_is_refused(project, queued, make_rater, admin_user):
    with pytest.raises(services.CannotAssign, match="not a member") as refused:
        services.item_assign(item=fresh(queued[0]), rater=make_rater(join=None), by=admin_user)
    assert (refused.value.code, refused.value.status, refused.value.field) == ("not_assignable", 409, "rater")
    for value in ("positive", "positive", "positive"):
        label(make_rater(), project, value)
    assert fresh(queued[0]).state == "complete"
    with pytest.raises(services.CannotAssign, match="complete"):
        services.item_assign(item=fresh(queued[0]), rater=make_rater(), by=admin_user)


def test_only_staff_assign(project, queued, make_rater):
    rater = make_rater()
    with pytest.raises(services.NotAllowed):
        services.item_assign(item=fresh(queued[0]), rater=rater, by=rater.user)
    assert not Assignment.objects.exists()


def test_a_lease_of_the_same_item_that_ran_out_is_replaced_by_a_fresh_one(source, make_rater, admin_user):
    project = services.project_create(name="short", choices=CHOICES, overlap=1, sources=[source],
                                      lease_duration=timedelta(minutes=1))
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    rater = make_rater(join=project)
    item = project.items.order_by("id").first()
    old = services.item_assign(item=fresh(item), rater=rater, by=admin_user, now=timezone.now() - timedelta(hours=1))
    new = services.item_assign(item=fresh(item), rater=rater, by=admin_user, lease=timedelta(days=2))
    assert new.pk != old.pk and new.created and new.handed_back == old.pk
    assert new.expires_at - new.leased_at == timedelta(days=2)
    assert fresh(item).leased_count == 1
    assert LabelingProject.objects.get(pk=project.pk).lease_duration == timedelta(minutes=1)
