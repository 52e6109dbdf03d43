"""The work queue through its services: leases, submit, skip, undo, expiry, consensus and ties, gold items."""
import io
import random
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling import services
from labeling.models import Annotation, Assignment, QueueItem, Rater
from tests.factories import CHOICES, batch_of_records, project_make


def label(rater, project, value, **kwargs):
    """Lease the rater's next item and submit `value`; returns the annotation."""
    lease = services.item_next(rater=rater, project=project, **kwargs)
    assert lease is not None, "expected work"
    return services.assignment_submit(assignment=lease, value=value)[0]


def fresh(item: QueueItem) -> QueueItem:
    return QueueItem.objects.get(pk=item.pk)


def test_a_reload_gets_the_same_lease_back_instead_of_a_new_item(project, queued, make_rater):
    rater = make_rater()
    first = services.item_next(rater=rater, project=project)
    again = services.item_next(rater=rater, project=project)
    assert again.pk == first.pk
    assert Assignment.objects.filter(rater=rater).count() == 1
    assert fresh(first.item).leased_count == 1


def test_the_oldest_item_with_a_free_slot_is_served_and_never_twice_to_one_rater(project, queued, make_rater):
    raters = [make_rater() for _ in range(4)]
    items = [label(r, project, "positive").item_id for r in raters[:3]]
    assert items == [queued[0].pk] * 3  # the first item takes its three raters before the queue moves on
    assert label(raters[3], project, "positive").item_id == queued[1].pk
    again = label(raters[0], project, "positive")
    assert again.item_id == queued[1].pk  # not queued[0], which this rater already labeled


def test_an_item_never_gets_more_leases_and_labels_than_its_overlap(project, queued, make_rater):
    raters = [make_rater() for _ in range(3)]
    leases = [services.item_next(rater=r, project=project) for r in raters]
    assert {lease.item_id for lease in leases} == {queued[0].pk}
    fourth = services.item_next(rater=make_rater(), project=project)
    assert fourth.item_id == queued[1].pk  # the first item's three slots are all leased
    item = fresh(queued[0])
    assert (item.leased_count, item.submitted_count, item.needed) == (3, 0, 3)


def test_the_database_refuses_an_over_assigned_item_and_a_second_label_by_one_rater(project, queued, make_rater):
    item = queued[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        QueueItem.objects.filter(pk=item.pk).update(submitted_count=3, leased_count=1)
    rater = make_rater()
    annotation = label(rater, project, "positive")
    second = Assignment.objects.create(item_id=annotation.item_id, project=project, rater=make_rater(),
                                       expires_at=timezone.now() + timedelta(minutes=1))
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(item_id=annotation.item_id, project=project, assignment=second, rater=rater,
                                  value="negative")


def test_three_agreeing_labels_complete_an_item_with_its_consensus_and_agreement(project, queued, make_rater):
    for value in ("positive", "negative", "positive"):
        label(make_rater(), project, value)
    item = fresh(queued[0])
    assert item.state == "complete"
    assert (item.consensus, item.agreement, item.submitted_count, item.leased_count) == ("positive", 2 / 3, 3, 0)
    assert item.completed_at is not None


def test_a_tie_asks_one_more_rater_and_the_next_label_decides(source, make_rater):
    project = project_make(source, name="pairs", overlap=2)
    services.batch_route(batch_id=batch_of_records(source, 3).pk)
    raters = [make_rater(join=project) for _ in range(3)]
    label(raters[0], project, "positive")
    first = label(raters[1], project, "negative").item
    item = fresh(first)
    assert (item.state, item.needed, item.consensus) == ("open", 3, None)
    third = label(raters[2], project, "negative")
    assert third.item_id == first.pk  # the tied item is served first: it is the oldest with a free slot
    item = fresh(first)
    assert (item.state, item.consensus, item.agreement, item.submitted_count) == ("complete", "negative", 2 / 3, 3)


def test_a_tie_that_persists_past_the_extra_raters_goes_to_adjudication(source, make_rater):
    project = services.project_create(name="stubborn", choices=CHOICES, overlap=2, max_extra_raters=1,
                                      sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    for value in ("positive", "negative", "neutral"):
        label(make_rater(join=project), project, value)
    item = project.items.get()
    assert (item.state, item.consensus, item.needed, item.agreement) == ("adjudication", None, 3, pytest.approx(1 / 3))
    assert item.completed_at is None


def test_a_value_that_does_not_fit_the_label_kind_is_refused_and_named(project, queued, make_rater):
    lease = services.item_next(rater=make_rater(), project=project)
    with pytest.raises(services.InvalidLabel) as refused:
        services.assignment_submit(assignment=lease, value="great")
    assert refused.value.value == "great" and "not one of the choices" in str(refused.value)
    assert fresh(lease.item).submitted_count == 0


@pytest.mark.parametrize(("kind", "options", "good", "stored", "bad"), [
    ("multiple_choice", {"choices": CHOICES}, ["neutral", "positive"], ["positive", "neutral"], ["positive", "bad"]),
    ("rating", {"scale_min": 1, "scale_max": 5}, 4, 4, 6),
    ("free_text", {}, "  a fine review ", "a fine review", ""),
])
def test_each_label_kind_checks_and_normalises_its_values(source, make_rater, kind, options, good, stored, bad):
    project = services.project_create(name=f"kind-{kind}", label_kind=kind, overlap=1, sources=[source], **options)
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    rater = make_rater(join=project)
    lease = services.item_next(rater=rater, project=project)
    with pytest.raises(services.InvalidLabel):
        services.assignment_submit(assignment=lease, value=bad)
    annotation, created = services.assignment_submit(assignment=lease, value=good)
    assert created and annotation.value == stored
    assert fresh(annotation.item).state == "complete"


def test_a_retried_submit_returns_the_same_annotation_and_another_value_is_refused(project, queued, make_rater):
    lease = services.item_next(rater=make_rater(), project=project)
    first, created = services.assignment_submit(assignment=lease, value="positive")
    again, created_again = services.assignment_submit(assignment=lease, value="positive")
    assert (created, created_again, again.pk) == (True, False, first.pk)
    with pytest.raises(services.AlreadyFinished):
        services.assignment_submit(assignment=lease, value="negative")
    assert Annotation.objects.count() == 1 and fresh(lease.item).submitted_count == 1


def test_an_expired_lease_goes_back_to_the_queue_and_a_late_submit_loses_its_taken_slot(source, make_rater):
    project = project_make(source, name="single", overlap=1)
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    slow, quick = make_rater(join=project), make_rater(join=project)
    lease = services.item_next(rater=slow, project=project, lease=timedelta(seconds=1))
    assert services.item_next(rater=quick, project=project) is None  # the one slot is leased
    later = timezone.now() + timedelta(seconds=2)
    taken = services.item_next(rater=quick, project=project, now=later)  # reclaims the expired lease first
    assert taken.item_id == lease.item_id
    assert Assignment.objects.get(pk=lease.pk).state == "expired"
    with pytest.raises(services.LeaseLost) as lost:
        services.assignment_submit(assignment=lease, value="positive")
    assert lost.value.code == "lease_expired"
    services.assignment_submit(assignment=taken, value="negative")
    item = project.items.get()
    assert (item.submitted_count, item.leased_count, item.consensus) == (1, 0, "negative")


def test_a_late_submit_on_an_expired_lease_whose_slot_is_still_free_counts(project, queued, make_rater):
    rater = make_rater()
    lease = services.item_next(rater=rater, project=project, lease=timedelta(seconds=1))
    assert services.leases_reclaim(project=project, now=timezone.now() + timedelta(seconds=2)) == 1
    assert fresh(lease.item).leased_count == 0
    annotation, created = services.assignment_submit(assignment=lease, value="positive")
    assert created and fresh(lease.item).submitted_count == 1
    assert Assignment.objects.get(pk=lease.pk).state == "submitted"


def test_a_skipped_item_frees_its_slot_and_is_not_served_to_that_rater_again(project, queued, make_rater):
    rater = make_rater()
    lease = services.item_next(rater=rater, project=project)
    services.assignment_skip(assignment=lease, reason="not in English")
    item = fresh(lease.item)
    assert (item.leased_count, item.skipped_count) == (0, 1)
    assert Assignment.objects.get(pk=lease.pk).skip_reason == "not in English"
    assert services.item_next(rater=rater, project=project).item_id != lease.item_id
    assert services.item_next(rater=make_rater(), project=project).item_id == lease.item_id


def test_undo_withdraws_the_last_label_and_leases_its_item_again(project, queued, make_rater):
    rater = make_rater()
    annotation = label(rater, project, "positive")
    shown_next = services.item_next(rater=rater, project=project)
    again = services.annotation_undo_last(rater=rater, project=project)
    assert again.item_id == annotation.item_id and again.state == "leased"
    assert Assignment.objects.get(pk=shown_next.pk).state == "expired"  # handed back to the queue
    assert Annotation.objects.get(pk=annotation.pk).undone_at is not None
    assert (fresh(annotation.item).submitted_count, fresh(annotation.item).leased_count) == (0, 1)
    assert fresh(shown_next.item).leased_count == 0
    fixed, _ = services.assignment_submit(assignment=again, value="negative")
    assert fresh(annotation.item).submitted_count == 1 and fixed.value == "negative"


def test_undo_is_refused_once_the_item_is_complete(project, queued, make_rater):
    raters = [make_rater() for _ in range(3)]
    for rater in raters:
        label(rater, project, "positive")
    with pytest.raises(services.NothingToUndo):
        services.annotation_undo_last(rater=raters[0], project=project)
    with pytest.raises(services.NothingToUndo):
        services.annotation_undo_last(rater=make_rater(), project=project)


def test_an_expert_only_project_is_never_served_to_generalists_or_end_users(source, make_rater):
    project = services.project_create(name="experts", choices=CHOICES, overlap=1, sources=[source],
                                      allowed_kinds=[Rater.Kind.EXPERT], domains=["payments"])
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    for kind in (Rater.Kind.GENERALIST, Rater.Kind.END_USER):
        with pytest.raises(services.NotAllowed):
            services.item_next(rater=make_rater(kind=kind, domains=["payments"], join=project), project=project)
    with pytest.raises(services.NotAllowed):  # an expert of another domain
        services.item_next(rater=make_rater(kind=Rater.Kind.EXPERT, domains=["radiology"], join=project),
                           project=project)
    with pytest.raises(services.NotAllowed):  # a fitting expert who is not a member
        services.item_next(rater=make_rater(kind=Rater.Kind.EXPERT, domains=["payments"], join=None),
                           project=project)
    expert = make_rater(kind=Rater.Kind.EXPERT, domains=["Payments"], join=project)
    assert services.item_next(rater=expert, project=project) is not None
    assert Assignment.objects.exclude(rater=expert).count() == 0


def test_gold_items_come_at_the_gold_rate_and_are_scored_but_never_counted(source, make_rater):
    project = services.project_create(name="with-gold", choices=CHOICES, overlap=1, gold_rate=0.2,
                                      sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 600).pk)
    golds = list(project.items.order_by("-id")[:100])
    for item in golds:
        services.item_set_gold(item=item, answer="positive")
    random.seed(5)
    served = gold = right = 0
    for rater in [make_rater(join=project) for _ in range(2)]:
        for _ in range(200):
            lease = services.item_next(rater=rater, project=project)
            annotation, _ = services.assignment_submit(assignment=lease, value="positive" if served % 2 else "negative")
            served += 1
            gold += lease.is_gold
            right += bool(annotation.correct)
    assert 0.14 <= gold / served <= 0.26  # 80 expected of 400
    assert right == Annotation.objects.filter(correct=True).count() > 0
    gold_items = QueueItem.objects.filter(is_gold=True)
    assert set(gold_items.values_list("submitted_count", "leased_count", "state").distinct()) == {(0, 0, "open")}
    with pytest.raises(services.InvalidLabel):
        services.item_set_gold(item=golds[0], answer="maybe")


def test_a_reload_gets_the_live_lease_back_whatever_the_gold_rate(source, make_rater):
    # Gold is drawn before the claim: it must not lease a second item (or fail on the one-live-lease
    # index) while the rater still holds one, gold or not.
    project = services.project_create(name="all-gold", choices=CHOICES, overlap=1, gold_rate=1.0, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 20).pk)
    for item in project.items.order_by("id")[:10]:
        services.item_set_gold(item=item, answer="positive")
    rater = make_rater(join=project)
    first = services.item_next(rater=rater, project=project)
    assert first.is_gold
    assert {services.item_next(rater=rater, project=project).pk for _ in range(20)} == {first.pk}
    services.assignment_submit(assignment=first, value="positive")
    project.gold_rate = 0
    regular = services.item_next(rater=rater, project=project)  # a regular live lease, then gold again
    project.gold_rate = 1.0
    assert not regular.is_gold
    assert {services.item_next(rater=rater, project=project).pk for _ in range(20)} == {regular.pk}
    assert Assignment.objects.filter(rater=rater, state=Assignment.State.LEASED).count() == 1


def test_reclaiming_expired_leases_is_bounded_per_call_and_returns_every_slot(project, queued, make_rater):
    raters = [make_rater() for _ in range(12)]
    for rater in raters:
        services.item_next(rater=rater, project=project, lease=timedelta(seconds=1))
    later = timezone.now() + timedelta(seconds=5)
    assert services.leases_reclaim(project=project, now=later, limit=10) == 10
    assert services.leases_reclaim(project=project, now=later, limit=10) == 2
    assert sum(QueueItem.objects.values_list("leased_count", flat=True)) == 0


def test_gold_left_for_a_rater_is_served_once_their_regular_items_run_out(source, make_rater):
    project = services.project_create(name="gold-tail", choices=CHOICES, overlap=1, gold_rate=0.2, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 6).pk)
    golds = list(project.items.order_by("id")[1:])
    for item in golds:
        services.item_set_gold(item=item, answer="positive")
    rater = make_rater(join=project)
    random.seed(3)
    served = [label(rater, project, "positive").item_id for _ in range(6)]  # 204 on any of them fails here
    assert sorted(served) == sorted(i.pk for i in project.items.all())
    assert services.item_next(rater=rater, project=project) is None  # every gold item answered: now no work


def test_gold_answers_are_marked_as_gold(source, make_rater):
    project = services.project_create(name="gold-marked", choices=CHOICES, overlap=1, gold_rate=1.0, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    gold = project.items.order_by("id").first()
    services.item_set_gold(item=gold, answer="negative")
    answer = label(make_rater(join=project), project, "negative")
    assert (answer.item_id, Annotation.objects.get(pk=answer.pk).is_gold, answer.correct) == (gold.pk, True, True)


def test_an_item_unmarked_as_gold_is_settled_by_its_regular_labels_alone(source, make_rater):
    project = services.project_create(name="ungold", choices=CHOICES, overlap=2, gold_rate=1.0, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    item = project.items.get()
    services.item_set_gold(item=item, answer="negative")
    answers = [label(make_rater(join=project), project, "negative") for _ in range(3)]
    services.item_unset_gold(item=fresh(item))
    assert (fresh(item).is_gold, fresh(item).state, fresh(item).submitted_count) == (False, "open", 0)
    project.gold_rate = 0
    project.save()
    for _ in range(2):
        label(make_rater(join=project), project, "positive")
    item = fresh(item)
    # Three gold answers said "negative": counted, they would have won.
    assert (item.state, item.consensus, item.agreement) == ("complete", "positive", 1.0)
    frozen = Annotation.objects.filter(pk__in=[a.pk for a in answers])
    assert set(frozen.values_list("is_gold", "correct")) == {(True, True)}


def test_unmarking_gold_hands_back_live_gold_leases_and_resettles_with_the_projects_overlap(source, make_rater):
    project = project_make(source, name="ungold-resettle", overlap=3)
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    item = project.items.get()
    for _ in range(2):
        label(make_rater(join=project), project, "positive")
    services.item_set_gold(item=item, answer="negative")
    project.gold_rate = 1.0
    project.save()
    gold_lease = services.item_next(rater=make_rater(join=project), project=project)
    assert gold_lease.is_gold
    services.project_update_overlap(project=project, overlap=2)  # gold items wait until they are regular again
    assert fresh(item).needed == 3
    services.item_unset_gold(item=fresh(item))
    assert Assignment.objects.get(pk=gold_lease.pk).state == "expired"
    item = fresh(item)
    assert (item.state, item.consensus, item.needed, item.decided_by) == ("complete", "positive", 2, "majority")


def test_an_item_made_gold_keeps_its_labels_and_hands_back_its_live_leases(project, queued, make_rater):
    item = queued[0]
    label(make_rater(), project, "positive")
    late = services.item_next(rater=make_rater(), project=project)
    assert late.item_id == item.pk
    services.item_set_gold(item=item, answer="negative")
    assert Assignment.objects.get(pk=late.pk).state == "expired"
    assert (fresh(item).submitted_count, fresh(item).leased_count) == (1, 0)
    with pytest.raises(services.LeaseLost):
        services.assignment_submit(assignment=late, value="positive")
    assert fresh(item).submitted_count == 1
    assert services.item_next(rater=make_rater(), project=project).item_id == queued[1].pk  # out of the queue


def test_lowering_the_overlap_completes_open_items_that_now_have_enough_agreeing_labels(project, queued, make_rater):
    raters = [make_rater() for _ in range(2)]
    make_rater()  # someone who may still break the tie below
    for rater in raters:  # queued[0]: two agreeing labels
        label(rater, project, "positive")
    label(raters[0], project, "positive")  # queued[1]: one label, and a tie on queued[2] below
    lease = services.item_next(rater=raters[1], project=project)
    assert lease.item_id == queued[1].pk
    services.assignment_submit(assignment=lease, value="negative")
    assert [fresh(i).state for i in queued[:2]] == ["open", "open"]
    services.project_update_overlap(project=project, overlap=2)
    first, tied, untouched = fresh(queued[0]), fresh(queued[1]), fresh(queued[2])
    assert (first.state, first.consensus, first.needed, first.confidence) == ("complete", "positive", 2, 1.0)
    assert (tied.state, tied.needed) == ("open", 3)  # a tie at the new overlap asks one more rater
    assert (untouched.state, untouched.needed) == ("open", 2)


def test_raising_the_overlap_makes_open_items_need_more_labels(project, queued, make_rater):
    label(make_rater(), project, "positive")
    services.project_update_overlap(project=project, overlap=5)
    assert set(QueueItem.objects.filter(project=project).values_list("needed", flat=True)) == {5}
    assert project.overlap == 5 and fresh(queued[0]).submitted_count == 1


def test_the_resettle_command_resettles_a_project(project, queued, make_rater):
    for _ in range(2):
        label(make_rater(), project, "negative")
    type(project).objects.filter(pk=project.pk).update(overlap=2)  # changed behind the services' back
    call_command("project_resettle", str(project.pk), stdout=io.StringIO())
    assert fresh(queued[0]).state == "complete"
