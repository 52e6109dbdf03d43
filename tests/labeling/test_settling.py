"""Settling that always ends: a confident majority completes an item, doubt asks more raters, and what cannot be
settled (no confident majority after every extra rater, or no eligible rater left) goes to adjudication."""
import pytest
from django.db import transaction
from django.utils import timezone

from labeling import services, tasks
from labeling.models import Annotation, Membership, QueueItem, Rater
from labeling.services import settling
from labeling.services.labels_io import ImportLine
from tests.factories import CHOICES, batch_of_records


def label(rater, project, value):
    lease = services.item_next(rater=rater, project=project)
    assert lease is not None, "expected work"
    return services.assignment_submit(assignment=lease, value=value)[0]


def fresh(item: QueueItem) -> QueueItem:
    return QueueItem.objects.get(pk=item.pk)


@pytest.fixture
def pairs(source):
    """Overlap 2 and up to 2 extra raters, one item."""
    project = services.project_create(name="pairs", choices=CHOICES, overlap=2, max_extra_raters=2, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    return project


def test_a_confident_majority_completes_the_item_with_its_share_as_confidence(project, queued, make_rater):
    for value in ("positive", "negative", "positive"):
        label(make_rater(), project, value)
    item = fresh(queued[0])
    assert (item.state, item.consensus, item.decided_by) == ("complete", "positive", "majority")
    assert item.agreement == item.confidence == pytest.approx(2 / 3)


def test_a_majority_under_the_minimum_confidence_asks_one_more_rater(source, make_rater):
    project = services.project_create(name="sure", choices=CHOICES, overlap=3, max_extra_raters=1,
                                      min_confidence=0.7, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    raters = [make_rater(join=project) for _ in range(4)]
    for rater, value in zip(raters, ("positive", "negative", "positive"), strict=False):
        label(rater, project, value)
    item = project.items.get()
    assert (item.state, item.needed, item.consensus) == ("open", 4, None)  # 2/3 < 0.7
    label(raters[3], project, "positive")
    item = fresh(item)
    assert (item.state, item.consensus, item.confidence) == ("complete", "positive", 0.75)


def test_an_item_still_unsure_after_every_extra_rater_goes_to_adjudication_and_is_not_served(source, make_rater):
    project = services.project_create(name="sure-or-ask", choices=CHOICES, overlap=3, max_extra_raters=1,
                                      min_confidence=0.8, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    for value in ("positive", "negative", "positive", "positive"):  # 3/4 < 0.8 at the last rater
        label(make_rater(join=project), project, value)
    item = project.items.get()
    assert (item.state, item.consensus, item.needed, item.confidence) == ("adjudication", None, 4, 0.75)
    assert item.completed_at is None and item.decided_by == ""
    assert services.item_next(rater=make_rater(join=project), project=project) is None


def test_imported_labels_count_toward_consensus_and_gold_answers_never_do(pairs, make_rater):
    item = pairs.items.select_related("record").get()
    make_rater("historian", join=pairs)
    services.labels_import(project=pairs, lines=[ImportLine(line=1, data={
        "external_id": item.record.external_id, "rater": "historian", "value": "negative"})])
    # A gold answer left on the item from when it was gold (two of them would win if they counted).
    for _ in range(2):
        Annotation.objects.create(item=item, project=pairs, rater=make_rater(join=pairs), value="positive",
                                  provenance=Annotation.Provenance.IMPORTED, is_gold=True, correct=False)
    assert fresh(item).state == "open"
    label(make_rater(join=pairs), pairs, "negative")  # one human label reaches the overlap with the import
    item = fresh(item)
    assert (item.state, item.consensus, item.agreement, item.submitted_count) == ("complete", "negative", 1.0, 2)


def test_feedback_never_touches_an_adjudicated_or_unlabelable_item(project, queued, source, make_rater):
    from collection.models import FeedbackEvent

    project.feedback_counts = True
    project.save()
    services.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold=False, label="negative")
    adjudicated, closed = queued[0], queued[1]
    QueueItem.objects.filter(pk=adjudicated.pk).update(state="complete", consensus="positive", decided_by="adjudicated",
                                                       completed_at=timezone.now())
    QueueItem.objects.filter(pk=closed.pk).update(state="unlabelable")
    for n, item in enumerate([adjudicated, closed] * 3):
        FeedbackEvent.objects.create(source=source, idempotency_key=f"f{n}", external_id=item.record.external_id,
                                     record=item.record, signal="thumbs", value=False, actor=f"a{n}",
                                     occurred_at=timezone.now())
    assert services.feedback_apply_rules(project=project)["created"] == 6
    assert (fresh(adjudicated).state, fresh(adjudicated).consensus) == ("complete", "positive")
    assert fresh(closed).state == "unlabelable"


def test_feedback_that_leaves_a_complete_item_without_a_confident_majority_sends_it_to_adjudication(
        project, queued, source, make_rater):
    from collection.models import FeedbackEvent

    item = queued[0]
    for value in ("positive", "positive", "negative"):
        label(make_rater(), project, value)
    assert fresh(item).state == "complete"
    project.feedback_counts = True
    project.save()
    services.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold=False, label="negative")
    FeedbackEvent.objects.create(source=source, idempotency_key="tie", external_id=item.record.external_id,
                                 record=item.record, signal="thumbs", value=False, actor="x",
                                 occurred_at=timezone.now())
    services.feedback_apply_rules(project=project)
    item = fresh(item)
    assert (item.state, item.consensus, item.agreement, item.completed_at) == ("adjudication", None, 0.5, None)


def test_a_tie_no_eligible_rater_is_left_to_break_goes_to_adjudication(pairs, make_rater):
    item = pairs.items.get()
    first, second = make_rater(join=pairs), make_rater(join=pairs)
    label(first, pairs, "positive")
    label(second, pairs, "negative")
    assert (fresh(item).state, fresh(item).needed) == ("open", 3)
    spare = make_rater(join=pairs)
    make_rater(join=pairs, kind=Rater.Kind.EXPERT)  # fits too: the project takes any kind
    assert services.items_escalate_stuck(project=pairs) == 0  # two members may still break it
    Membership.objects.filter(project=pairs, rater__kind=Rater.Kind.EXPERT).delete()
    services.rater_set_active(rater=spare, active=False)
    assert services.items_escalate_stuck(project=pairs) == 1
    item = fresh(item)
    assert (item.state, item.consensus, item.agreement, item.confidence) == ("adjudication", None, 0.5, 0.5)


def test_a_paused_or_unfitting_member_is_not_an_eligible_rater(source, make_rater):
    project = services.project_create(name="experts-only", choices=CHOICES, overlap=2, allowed_kinds=["expert"],
                                      sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    experts = [make_rater(join=project, kind=Rater.Kind.EXPERT) for _ in range(3)]
    label(experts[0], project, "positive")
    make_rater(join=project)  # a generalist member: may not label here
    Membership.objects.filter(project=project, rater=experts[2]).update(paused_at=timezone.now())
    # experts[1] may still label the first item; nobody touched the second, so neither is stuck.
    assert services.items_escalate_stuck(project=project) == 0
    Membership.objects.filter(project=project, rater=experts[1]).update(paused_at=timezone.now())
    assert tasks.escalate_stuck_items() == 1
    assert list(project.items.order_by("id").values_list("state", flat=True)) == ["adjudication", "open"]


@pytest.mark.parametrize("plain", [False, True], ids=["sql", "orm"])
def test_stuck_items_are_found_alike_by_the_sql_and_by_the_plain_path_sqlite_takes(source, make_rater, plain):
    project = services.project_create(name="payments", choices=CHOICES, overlap=2, allowed_kinds=["expert"],
                                      domains=["payments"], sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    experts = [make_rater(join=project, kind=Rater.Kind.EXPERT, domains=["payments"]) for _ in range(2)]
    make_rater(join=project, kind=Rater.Kind.EXPERT, domains=["shipping"])  # not of the project's domains
    label(experts[0], project, "positive")

    def escalate() -> int:
        if not plain:
            return services.items_escalate_stuck(project=project)
        with transaction.atomic():
            return len(settling._escalate_stuck_orm(project))

    assert escalate() == 0  # experts[1] may still label it
    Membership.objects.filter(project=project, rater=experts[1]).update(paused_at=timezone.now())
    assert escalate() == 1
    assert list(project.items.order_by("id").values_list("state", flat=True)) == ["adjudication", "open"]


def test_a_paused_member_gets_no_item(project, queued, make_rater):
    rater = make_rater()
    Membership.objects.filter(project=project, rater=rater).update(paused_at=timezone.now())
    try:
        lease = services.item_next(rater=rater, project=project)
    except services.NotAllowed:
        lease = None
    assert lease is None


def test_raising_the_extra_raters_reopens_an_item_waiting_in_adjudication(pairs, make_rater):
    services.project_update_overlap(project=pairs, max_extra_raters=0)
    label(make_rater(join=pairs), pairs, "positive")
    label(make_rater(join=pairs), pairs, "negative")
    item = pairs.items.get()
    assert (item.state, item.needed) == ("adjudication", 2)
    spare = make_rater(join=pairs)  # without a rater left to ask, the sweep would send it back
    services.project_update_overlap(project=pairs, max_extra_raters=1)
    assert (fresh(item).state, fresh(item).needed) == ("open", 3)
    label(spare, pairs, "negative")
    assert (fresh(item).state, fresh(item).consensus) == ("complete", "negative")


def test_resettling_leaves_complete_items_alone(project, queued, make_rater):
    for value in ("positive", "positive", "negative"):
        label(make_rater(), project, value)
    services.project_update_overlap(project=project, overlap=5, max_extra_raters=0)
    item = fresh(queued[0])
    assert (item.state, item.needed, item.consensus) == ("complete", 3, "positive")
    assert services.project_resettle(project=project) == {"items": 9, "complete": 0, "adjudication": 0, "reopened": 0,
                                                          "stuck": 0}


def test_settling_many_items_at_once_decides_each_as_settling_it_alone_would(source, make_rater, admin_user,
                                                                              django_assert_max_num_queries):
    project = services.project_create(name="many", choices=CHOICES, overlap=2, max_extra_raters=0, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 3).pk)
    items = list(project.items.order_by("id"))
    first, second = make_rater(join=project), make_rater(join=project)
    now = timezone.now()
    votes = [("positive", "positive"), ("positive", "negative"), ("neutral", None)]
    for item, pair in zip(items, votes):
        for rater, value in zip((first, second), pair):
            if value is not None:  # labels written directly: settling is what is under test
                lease = services.item_assign(item=item, rater=rater, by=admin_user)
                Annotation.objects.create(item=item, project=project, assignment=lease, rater=rater, value=value)
    QueueItem.objects.filter(pk__in=[i.pk for i in items]).update(leased_count=0)
    for item in items:
        item.refresh_from_db()
        item.submitted_count = Annotation.objects.filter(item=item).count()
    with django_assert_max_num_queries(2):  # one read of the labels, one write of every changed item
        changed = services.items_settle(items=items, project=project, now=now)
    assert changed == 2
    assert [(fresh(i).state, fresh(i).consensus) for i in items] == [
        ("complete", "positive"), ("adjudication", None), ("open", None)]
