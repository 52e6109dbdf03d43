"""The labeling admin: every list and change page opens, counts are read-only, and the project actions work."""
import pytest
from django.urls import reverse

from labeling import services
from labeling.models import Assignment, FeedbackRule, LabelingProject, QueueItem, Rater

from .conftest import batch_of_records


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


def test_an_item_made_gold_in_the_admin_keeps_its_counts(staff, project, queued, make_rater):
    item = queued[0]
    services.item_next(rater=make_rater(), project=project)  # a lease on it, after the form was loaded
    url = reverse("admin:labeling_queueitem_change", args=[item.pk])
    answer = staff.post(url, {"is_gold": "on", "gold_answer": '"positive"', "annotations-TOTAL_FORMS": "0",
                              "annotations-INITIAL_FORMS": "0"})
    assert answer.status_code == 302
    item.refresh_from_db()
    assert (item.is_gold, item.gold_answer, item.leased_count) == (True, "positive", 1)


def test_the_project_action_queues_its_sources_admitted_batches(staff, project, source):
    batch = batch_of_records(source, 7)
    url = reverse("admin:labeling_labelingproject_changelist")
    staff.post(url, {"action": "queue_admitted", "_selected_action": [project.pk]})
    assert project.items.count() == 7 and project.routed_batches.get().batch_id == batch.pk
