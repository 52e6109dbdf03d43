"""The gold-accuracy gate and pausing: a rater under the project's minimum is paused after their Nth gold
answer, gets no work, their lease goes back and an alert is raised; staff resume them."""
import pytest

from labeling import services
from labeling.models import Assignment, Membership, QueueItem
from labeling.services.raters import rater_gold_gate, rater_pause, rater_resume
from tests.factories import CHOICES, batch_of_records, project_make
from validation.models import Alert, AuditEntry


@pytest.fixture
def gated(source):
    """Overlap 1, 30 regular items and 10 gold ones (answer "positive"); under 70 % after 4 gold answers pauses."""
    project = services.project_create(name="gated", choices=CHOICES, overlap=1, gold_rate=1.0, sources=[source],
                                      min_gold_accuracy=0.7, min_gold_answers=4)
    services.batch_route(batch_id=batch_of_records(source, 40).pk)
    for item in project.items.order_by("-id")[:10]:
        services.item_set_gold(item=item, answer="positive")
    return project


def answer_gold(rater, project, values, capture):
    """Answer gold items with `values` through the real `next` and submit, running what is done on commit."""
    for value in values:
        with capture(execute=True):
            lease = services.item_next(rater=rater, project=project)
            assert lease is not None and lease.is_gold
            services.assignment_submit(assignment=lease, value=value)


def membership(rater, project) -> Membership:
    return Membership.objects.get(rater=rater, project=project)


def test_a_rater_under_the_minimum_is_paused_after_the_nth_gold_answer_and_gets_no_work(
        gated, make_rater, django_capture_on_commit_callbacks):
    rater = make_rater("gina", join=gated)
    answer_gold(rater, gated, ["positive", "negative", "negative"], django_capture_on_commit_callbacks)
    assert not membership(rater, gated).is_paused  # 1 of 3 right, but the gate waits for 4 answers
    answer_gold(rater, gated, ["negative"], django_capture_on_commit_callbacks)
    paused = membership(rater, gated)
    assert paused.is_paused and paused.paused_by is None
    assert "gold accuracy 25% (1 of 4" in paused.paused_reason
    with pytest.raises(services.NotAllowed, match="paused in this project: gold accuracy 25%"):
        services.item_next(rater=rater, project=gated)  # gold drawn
    gated.gold_rate = 0
    with pytest.raises(services.NotAllowed, match="paused in this project"):
        services.item_next(rater=rater, project=gated)  # the regular claim
    alert = Alert.objects.get(kind=Alert.Kind.RATER_PAUSED, resolved_at__isnull=True)
    assert alert.subject == f"project:{gated.pk}/rater:{rater.pk}"
    assert alert.link == f"/label/admin/projects/{gated.pk}/quality/raters/{rater.pk}/"
    assert "gina was paused in project gated" in alert.message
    assert AuditEntry.objects.filter(action="rater_paused", actor="gate:gold-accuracy").count() == 1


def test_a_rater_at_or_above_the_minimum_keeps_working(gated, make_rater, django_capture_on_commit_callbacks):
    rater = make_rater(join=gated)
    answer_gold(rater, gated, ["positive", "positive", "negative", "positive", "positive"],
                django_capture_on_commit_callbacks)
    assert not membership(rater, gated).is_paused
    assert services.item_next(rater=rater, project=gated) is not None
    assert not Alert.objects.exists()


def test_without_a_minimum_nobody_is_paused(source, make_rater, django_capture_on_commit_callbacks):
    project = services.project_create(name="ungated", choices=CHOICES, overlap=1, gold_rate=1.0, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 6).pk)
    for item in project.items.all():
        services.item_set_gold(item=item, answer="positive")
    rater = make_rater(join=project)
    answer_gold(rater, project, ["negative"] * 6, django_capture_on_commit_callbacks)
    assert not membership(rater, project).is_paused


def test_pausing_hands_the_raters_live_lease_back_to_the_queue(gated, make_rater):
    rater, other = make_rater(join=gated), make_rater(join=gated)
    gated.gold_rate = 0
    lease = services.item_next(rater=rater, project=gated)
    assert QueueItem.objects.get(pk=lease.item_id).leased_count == 1
    assert rater_pause(project=gated, rater_id=rater.pk, reason="talks to the team lead first", by=None)
    lease.refresh_from_db()
    assert lease.state == Assignment.State.EXPIRED and not lease.holds_slot
    assert QueueItem.objects.get(pk=lease.item_id).leased_count == 0
    assert services.item_next(rater=other, project=gated).item_id == lease.item_id  # the slot is free again
    assert not rater_pause(project=gated, rater_id=rater.pk, reason="again", by=None)  # once
    assert Alert.objects.filter(kind=Alert.Kind.RATER_PAUSED).count() == 1


def test_a_gold_answer_while_holding_no_lease_pauses_and_a_lease_held_elsewhere_is_kept(
        gated, source, make_rater, django_capture_on_commit_callbacks):
    elsewhere = project_make(source, name="elsewhere", overlap=1)
    services.project_queue_admitted(project=elsewhere, actor="test")
    rater = make_rater(join=gated)
    services.project_add_raters(project=elsewhere, raters=[rater])
    kept = services.item_next(rater=rater, project=elsewhere)
    answer_gold(rater, gated, ["negative"] * 4, django_capture_on_commit_callbacks)
    assert membership(rater, gated).is_paused and not membership(rater, elsewhere).is_paused
    kept.refresh_from_db()
    assert kept.state == Assignment.State.LEASED  # paused in one project, not everywhere


def test_resuming_lets_the_rater_work_again_closes_the_alert_and_starts_the_count_afresh(
        gated, make_rater, admin_user, django_capture_on_commit_callbacks):
    rater = make_rater(join=gated)
    answer_gold(rater, gated, ["negative"] * 4, django_capture_on_commit_callbacks)
    assert membership(rater, gated).is_paused
    assert rater_resume(project=gated, rater=rater, by=admin_user)
    assert not membership(rater, gated).is_paused
    assert Alert.objects.get(kind=Alert.Kind.RATER_PAUSED).resolved_at is not None
    assert AuditEntry.objects.filter(action="rater_resumed", actor=f"user:{admin_user.username}",
                                     detail=f"project:{gated.pk}/rater:{rater.pk}").exists()
    assert not rater_resume(project=gated, rater=rater, by=admin_user)  # not paused any more
    # The four answers staff have seen no longer count: three right of the next four keeps them working...
    answer_gold(rater, gated, ["positive", "negative", "positive", "positive"], django_capture_on_commit_callbacks)
    assert not membership(rater, gated).is_paused
    # ...and the gate still applies to what they answer from now on: 3 of 5 is under 70 %.
    answer_gold(rater, gated, ["negative"], django_capture_on_commit_callbacks)
    assert membership(rater, gated).is_paused
    assert Alert.objects.filter(kind=Alert.Kind.RATER_PAUSED, resolved_at__isnull=True).count() == 1


def test_the_gate_ignores_withdrawn_gold_answers(gated, make_rater, django_capture_on_commit_callbacks):
    rater = make_rater(join=gated)
    answer_gold(rater, gated, ["negative"] * 3, django_capture_on_commit_callbacks)
    services.annotation_undo_last(rater=rater, project=gated)  # leases that gold item again
    assert not rater_gold_gate(rater_id=rater.pk, project_id=gated.pk)
    assert not membership(rater, gated).is_paused


def test_a_paused_rater_sees_on_their_home_page_why_a_project_left_their_list(gated, make_rater, client):
    rater = make_rater(join=gated, password="pw-paused-1")
    client.force_login(rater.user)
    assert gated.name in client.get("/label/").content.decode()
    rater_pause(project=gated, rater_id=rater.pk, reason="gold accuracy 40% is under the minimum", by=None)
    home = client.get("/label/").content.decode()
    assert 'id="paused"' in home and "gold accuracy 40% is under the minimum" in home
    assert f"/label/projects/{gated.pk}/" not in home  # no link to work they cannot get
