"""The labeling admin: every list and change page opens, counts are read-only, and the project actions work."""
import pytest
from django.urls import reverse

from labeling import services
from labeling.models import Annotation, Assignment, FeedbackRule, LabelingProject, QueueItem, Rater
from tests.factories import batch_of_records


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_every_labeling_admin_page_opens(staff, project, queued, make_rater):
    rater = make_rater()
    lease = services.item_next(rater=rater, project=project)
    rule = services.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold=False, label="negative")
    for model, obj in [(Rater, rater), (LabelingProject, project), (QueueItem, queued[0]), (Assignment, lease),
                       (FeedbackRule, rule)]:
        meta = model._meta
        assert staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")).status_code == 200
        assert staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])).status_code == 200


def test_an_item_made_gold_in_the_admin_keeps_its_labels_and_hands_back_its_leases(staff, project, queued,
                                                                                   make_rater):
    item = queued[0]
    first = services.item_next(rater=make_rater(), project=project)  # after the form was loaded: a label
    services.assignment_submit(assignment=first, value="negative")
    lease = services.item_next(rater=make_rater(), project=project)  # and a live lease
    url = reverse("admin:labeling_queueitem_change", args=[item.pk])
    answer = staff.post(url, {"is_gold": "on", "gold_answer": '"positive"', "annotations-TOTAL_FORMS": "0",
                              "annotations-INITIAL_FORMS": "0"})
    assert answer.status_code == 302
    item.refresh_from_db()
    assert (item.is_gold, item.gold_answer, item.submitted_count, item.leased_count) == (True, "positive", 1, 0)
    assert Assignment.objects.get(pk=lease.pk).state == "expired"


def test_unticking_gold_in_the_admin_settles_the_item_without_its_gold_answers(staff, source, make_rater):
    project = services.project_create(name="admin-gold", choices=[{"value": "a", "label": "A"},
                                                                  {"value": "b", "label": "B"}],
                                      overlap=1, gold_rate=1.0, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 1).pk)
    item = services.item_set_gold(item=project.items.get(), answer="b")
    for _ in range(2):
        lease = services.item_next(rater=make_rater(join=project), project=project)
        services.assignment_submit(assignment=lease, value="b")
    url = reverse("admin:labeling_queueitem_change", args=[item.pk])
    answer = staff.post(url, {"gold_answer": '"b"', "annotations-TOTAL_FORMS": "0", "annotations-INITIAL_FORMS": "0"})
    assert answer.status_code == 302
    item.refresh_from_db()
    assert (item.is_gold, item.state, item.submitted_count) == (False, "open", 0)  # two gold answers: not counted
    assert Annotation.objects.filter(item=item, is_gold=True, correct=True).count() == 2


def test_changing_the_overlap_in_the_admin_resettles_the_waiting_items(staff, project, queued, make_rater):
    for _ in range(2):
        services.assignment_submit(assignment=services.item_next(rater=make_rater(), project=project),
                                   value="positive")
    url = reverse("admin:labeling_labelingproject_change", args=[project.pk])
    page = staff.get(url)
    assert "applies to the open items too" in page.content.decode()
    data = project_form_data(page.context["adminform"].form, overlap=2)
    for inline in page.context["inline_admin_formsets"]:  # the inlines left as they are
        data.update({f"{inline.formset.prefix}-TOTAL_FORMS": "0", f"{inline.formset.prefix}-INITIAL_FORMS": "0"})
    answer = staff.post(url, data)
    assert answer.status_code == 302
    item = QueueItem.objects.get(pk=queued[0].pk)
    assert (item.state, item.consensus, item.needed) == ("complete", "positive", 2)
    assert set(QueueItem.objects.filter(state="open").values_list("needed", flat=True)) == {2}


def project_form_data(form, **changes) -> dict:
    """What the browser would post for the project's change form as it stands, with `changes`."""
    data = {}
    for name in form.fields:
        value = changes.get(name, form[name].value())
        if value is True:
            data[name] = "on"
        elif isinstance(value, list):
            data[name] = [str(v) for v in value]
        elif value is not None and value is not False:
            data[name] = value
    return data


def test_the_project_action_queues_its_sources_admitted_batches(staff, project, source):
    batch = batch_of_records(source, 7)
    url = reverse("admin:labeling_labelingproject_changelist")
    staff.post(url, {"action": "queue_admitted", "_selected_action": [project.pk]})
    assert project.items.count() == 7 and project.routed_batches.get().batch_id == batch.pk


def test_consensus_runs_and_adjudications_are_shown_and_never_edited_in_the_admin(staff, admin_user, project,
                                                                                   queued):
    from labeling.models import Adjudication, ConsensusRun

    run = services.consensus_run_execute(run=services.consensus_run_request(
        project=project, trigger=ConsensusRun.Trigger.DEMAND))
    decision, _ = services.item_adjudicate(item=queued[0], user=admin_user, value="positive", reason="clear case")
    for model, obj in [(ConsensusRun, run), (Adjudication, decision)]:
        meta = model._meta
        assert staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")).status_code == 200
        page = staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]))
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert staff.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_add")).status_code == 403
