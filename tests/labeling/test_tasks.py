"""The route step in the pipeline with a real Celery worker: ingest -> validate -> route as one chain, and
routing after an admin approves a quarantined batch."""
import pytest

from collection.models import Batch
from labeling import services
from labeling.models import QueueItem, RoutedBatch
from tests.conftest import wait_for
from tests.factories import baseline_from_records, checkout_records, feedback_make, project_make

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_an_admitted_batch_flows_into_the_queue_and_an_approved_one_follows(worker, source, upload, tmp_path,
                                                                         admin_user):
    from validation import services as validation

    baseline_from_records(source, tmp_path, checkout_records(3000, seed=0))
    project = project_make(source, name="fraud-check", overlap=2)

    clean = upload(checkout_records(400, seed=1, prefix="c"))
    drifted = upload(checkout_records(300, shift=4, seed=2, prefix="d"))
    wait_for(lambda: QueueItem.objects.filter(project=project).count() == 400, timeout=90,
             what="the clean batch to be ingested, validated and routed")
    wait_for(lambda: Batch.objects.get(pk=drifted).status == "quarantined", timeout=60, what="the drifted verdict")
    assert Batch.objects.get(pk=clean).status == "admitted"
    assert list(RoutedBatch.objects.values_list("batch_id", "item_count", "actor")) == [(clean, 400, "task:route")]

    validation.batch_review(batch_id=drifted, user=admin_user, approve=True, comment="expected")
    wait_for(lambda: QueueItem.objects.filter(project=project).count() == 700, timeout=60,
             what="the approved batch to be routed")
    assert RoutedBatch.objects.get(batch_id=drifted).item_count == 300

    from labeling.tasks import route_batch

    again = [route_batch.delay(batch_id) for batch_id in (clean, drifted)]  # a route message delivered again
    assert [result.get(timeout=30) for result in again] == [clean, drifted]  # handled, each of them
    assert QueueItem.objects.filter(project=project).count() == 700 and RoutedBatch.objects.count() == 2


def test_beat_maps_new_feedback_of_every_project_with_rules(worker, project, queued, source):
    from labeling.models import Annotation
    from labeling.tasks import apply_all_feedback_rules
    services.feedback_rule_create(project=project, signal="rating", op="gte", threshold=4, label="positive")
    project_make(source, name="no-rules", overlap=1)
    feedback_make(source, queued[0].record, "rating", 5, actor="a")
    feedback_make(source, queued[1].record, "rating", 1, actor="b")  # no rule maps it
    assert apply_all_feedback_rules.delay().get(timeout=60) == 1  # one project has enabled rules
    wait_for(lambda: Annotation.objects.filter(provenance="process_feedback").count() == 1, timeout=60,
             what="the feedback to be mapped by the worker")
    label = Annotation.objects.get(provenance="process_feedback")
    assert (label.item_id, label.value, label.actor) == (queued[0].pk, "positive", "pseudo-a")
