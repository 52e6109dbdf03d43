"""Adjudication: who may decide an item (staff, the project's experts of its domains), what a decision writes
and keeps, retries, overrides of open items by staff, closing as unlabelable, and two adjudicators at once."""
import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from labeling import services
from labeling.models import Adjudication, Annotation, Assignment, Membership, QueueItem, Rater
from labeling.selectors.adjudication import adjudication_next, adjudication_queue, items_for_adjudication
from tests.conftest import wait_for
from tests.factories import CHOICES, batch_of_records


@pytest.fixture
def law(source):
    """A project of the "law" domain with four items: two tied between two generalists (waiting for an
    adjudicator), one complete, one open."""
    project = services.project_create(name="contracts", choices=CHOICES, overlap=2, sources=[source],
                                      domains=["law"])
    services.batch_route(batch_id=batch_of_records(source, 4).pk)
    items = list(project.items.order_by("id"))
    anna, ben = (services.rater_create(username=name, domains=["law"]) for name in ("anna", "ben"))
    services.project_add_raters(project=project, raters=[anna, ben])
    for item in items[:3]:
        Annotation.objects.bulk_create([
            Annotation(item=item, project=project, rater=anna, value="positive", provenance="imported"),
            Annotation(item=item, project=project, rater=ben, value="negative", provenance="imported")])
    QueueItem.objects.filter(pk__in=[i.pk for i in items[:2]]).update(state="adjudication", agreement=0.5,
                                                                     confidence=0.5, decided_by="majority")
    QueueItem.objects.filter(pk=items[2].pk).update(state="complete", consensus="positive", decided_by="majority",
                                                    completed_at=timezone.now())
    for item in items:
        item.refresh_from_db()
    return project, items


def expert(project, name: str = "erin", domains=("law",), join: bool = True) -> Rater:
    rater = services.rater_create(username=name, kind=Rater.Kind.EXPERT, domains=domains)
    if join:
        services.project_add_raters(project=project, raters=[rater])
    return rater


def test_an_expert_of_the_domain_sets_the_final_label_and_who_when_why_are_kept(law):
    project, items = law
    erin = expert(project)
    decision, created = services.item_adjudicate(item=items[0], user=erin.user, value="negative",
                                                 reason="the clause says the opposite")
    assert created
    item = QueueItem.objects.get(pk=items[0].pk)
    assert (item.state, item.consensus, item.confidence, item.decided_by) == ("complete", "negative", 1.0,
                                                                                "adjudicated")
    assert item.completed_at == decision.decided_at and item.agreement == 0.5  # one of the two labels agrees
    kept = Adjudication.objects.get()
    assert (kept.decided_by, kept.value, kept.reason, kept.previous_consensus, kept.unlabelable) == (
        erin.user, "negative", "the clause says the opposite", None, False)
    assert adjudication_next(project=project).pk == items[1].pk  # the queue moves on


def test_a_decision_needs_a_reason_and_a_value_that_fits_the_project(law):
    project, items = law
    erin = expert(project)
    with pytest.raises(services.ReasonMissing):
        services.item_adjudicate(item=items[0], user=erin.user, value="negative", reason="   ")
    with pytest.raises(services.InvalidLabel):
        services.item_adjudicate(item=items[0], user=erin.user, value="maybe", reason="unsure")
    assert not Adjudication.objects.exists()
    assert QueueItem.objects.get(pk=items[0].pk).state == "adjudication"


def test_only_staff_and_the_projects_experts_of_its_domains_may_adjudicate(law, source, admin_user):
    project, items = law
    refused = {
        "a generalist member": Rater.objects.get(user__username="anna"),
        "an expert who is not a member": expert(project, "otto", join=False),
        "an expert of another domain": expert(project, "mia", domains=("medicine",)),
    }
    paused = expert(project, "pat")
    Membership.objects.filter(rater=paused).update(paused_at=timezone.now())
    refused["a paused expert"] = paused
    for who, rater in refused.items():
        with pytest.raises(services.NotAllowed):
            services.item_adjudicate(item=items[0], user=rater.user, value="positive", reason="sure")
        assert services.adjudicator_problem(user=rater.user, project=project), who
    assert not Adjudication.objects.exists()
    # Without domains on the project, any expert member may; staff always may.
    open_project = services.project_create(name="open-domain", choices=CHOICES, sources=[source])
    assert services.adjudicator_problem(user=expert(open_project, "ida", domains=()).user, project=open_project) is None
    assert services.adjudicator_problem(user=admin_user, project=project) is None
    services.item_adjudicate(item=items[0], user=admin_user, value="positive", reason="staff decide too")
    assert QueueItem.objects.get(pk=items[0].pk).decided_by == "adjudicated"


def test_the_same_decision_sent_again_is_the_first_and_another_is_refused(law, admin_user):
    project, items = law
    erin = expert(project)
    first, created = services.item_adjudicate(item=items[0], user=erin.user, value="negative", reason="clear")
    again, created_again = services.item_adjudicate(item=items[0], user=erin.user, value="negative", reason="clear")
    assert created and not created_again and again.pk == first.pk
    for user, value in ((erin.user, "positive"), (admin_user, "negative")):
        with pytest.raises(services.AlreadyDecided, match="decided already by erin"):
            services.item_adjudicate(item=items[0], user=user, value=value, reason="clear")
    with pytest.raises(services.AlreadyDecided):
        services.item_close_unlabelable(item=items[0], user=admin_user, reason="changed my mind")
    assert Adjudication.objects.count() == 1


def test_an_expert_decides_only_waiting_items_and_staff_may_override_an_open_one(law, admin_user):
    project, items = law
    erin = expert(project)
    complete, open_item = items[2], items[3]
    for item in (complete, open_item):
        with pytest.raises(services.NotAdjudicable):
            services.item_adjudicate(item=item, user=erin.user, value="neutral", reason="mine")
    cara = services.rater_create(username="cara", domains=["law"])
    services.project_add_raters(project=project, raters=[cara])
    lease = services.item_next(rater=cara, project=project)
    assert lease.item_id == open_item.pk

    decision, _ = services.item_adjudicate(item=open_item, user=admin_user, value="neutral",
                                           reason="known from the contract's owner")

    open_item.refresh_from_db()
    assert (open_item.state, open_item.consensus, open_item.leased_count) == ("complete", "neutral", 0)
    assert Assignment.objects.get(pk=lease.pk).state == "expired"  # the lease went back
    with pytest.raises(services.LeaseLost):
        services.assignment_submit(assignment=lease, value="positive")
    open_item.refresh_from_db()
    assert (open_item.consensus, open_item.decided_by) == ("neutral", "adjudicated")
    assert decision.previous_consensus is None
    services.item_adjudicate(item=complete, user=admin_user, value="neutral", reason="override")
    assert Adjudication.objects.get(item=complete).previous_consensus == "positive"


def test_staff_close_an_item_as_unlabelable_and_experts_may_not(law, admin_user):
    project, items = law
    erin = expert(project)
    with pytest.raises(services.NotAllowed, match="only staff"):
        services.item_close_unlabelable(item=items[0], user=erin.user, reason="gibberish")
    decision, created = services.item_close_unlabelable(item=items[0], user=admin_user, reason="gibberish")
    item = QueueItem.objects.get(pk=items[0].pk)
    assert created and decision.unlabelable and decision.value is None
    assert (item.state, item.consensus, item.confidence, item.decided_by) == ("unlabelable", None, None,
                                                                                "adjudicated")
    assert services.item_close_unlabelable(item=items[0], user=admin_user, reason="gibberish")[1] is False
    assert list(adjudication_queue(project=project)) == [items[1]]


def test_a_gold_item_is_not_adjudicated(law, admin_user):
    project, items = law
    services.item_set_gold(item=items[3], answer="neutral")
    with pytest.raises(services.NotAdjudicable, match="gold"):
        services.item_adjudicate(item=items[3], user=admin_user, value="positive", reason="no")


def test_an_adjudicator_sees_every_label_with_its_raters_kind_and_quality(law):
    project, items = law
    anna = Rater.objects.get(user__username="anna")
    services.item_set_gold(item=items[3], answer="positive")
    lease = Assignment.objects.create(item=items[3], project=project, rater=anna, is_gold=True, state="submitted",
                                      leased_at=timezone.now() - timedelta(minutes=1),
                                      expires_at=timezone.now())
    Annotation.objects.create(item=items[3], project=project, rater=anna, assignment=lease, value="positive",
                              correct=True, is_gold=True)
    [item] = items_for_adjudication(project=project, items=[QueueItem.objects.get(pk=items[0].pk)])
    labels = {label["username"]: label for label in item.labels}
    assert labels["anna"]["value"] == "positive" and labels["anna"]["kind"] == "generalist"
    assert (labels["anna"]["gold_answered"], labels["anna"]["gold_accuracy"]) == (1, 1.0)
    assert (labels["ben"]["gold_answered"], labels["ben"]["gold_accuracy"]) == (0, None)
    assert labels["anna"]["counted"] and labels["anna"]["model_accuracy"] is None  # no run yet
    assert item.posterior is None
    run = services.consensus_run_execute(run=services.consensus_run_request(project=project, trigger="demand"))
    [item] = items_for_adjudication(project=project, items=[QueueItem.objects.get(pk=items[1].pk)])
    assert item.posterior["run"] == run.pk and len(item.posterior["posterior"]) == 3
    assert item.posterior["classes"] == ["positive", "negative", "neutral"]
    assert 0 <= item.labels[0]["model_accuracy"] <= 1


@pytest.mark.django_db(transaction=True)
def test_two_adjudicators_at_once_one_wins_and_the_other_is_told(law, admin_user):
    project, items = law
    erin, eve = expert(project, "erin"), expert(project, "eve")
    target = items[0]
    outcomes: dict[str, object] = {}

    def decide(rater, value):
        try:
            outcomes[rater.user.username] = services.item_adjudicate(item=target, user=rater.user, value=value,
                                                                     reason=f"{rater.user.username} is sure")
        except services.LabelingError as exc:
            outcomes[rater.user.username] = exc
        finally:
            connection.close()

    settings = connection.settings_dict
    holder = psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                             user=settings["USER"], dbname=settings["NAME"], autocommit=False)
    try:
        # A third session holds the item, so that both adjudicators are inside their decision when it lets go.
        holder.execute("SELECT id FROM labeling_queueitem WHERE id = %s FOR UPDATE", [target.pk])
        threads = [threading.Thread(target=decide, args=args) for args in ((erin, "positive"), (eve, "negative"))]
        for thread in threads:
            thread.start()

        def both_wait():
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'")
                return cursor.fetchone()[0] >= 2

        wait_for(both_wait, timeout=30, what="both adjudicators to wait for the item")
        holder.commit()
    finally:
        holder.close()
    for thread in threads:
        thread.join(timeout=30)
    won = [name for name, outcome in outcomes.items() if isinstance(outcome, tuple)]
    lost = [outcome for outcome in outcomes.values() if isinstance(outcome, services.AlreadyDecided)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert f"decided already by {won[0]}" in str(lost[0])
    assert Adjudication.objects.filter(item=target).count() == 1
    assert QueueItem.objects.get(pk=target.pk).consensus == {"erin": "positive", "eve": "negative"}[won[0]]
