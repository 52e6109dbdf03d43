"""The route step in the pipeline with a real Celery worker: ingest -> validate -> route as one chain, and
routing after an admin approves a quarantined batch."""
import pytest

from collection.models import Batch
from labeling import services
from labeling.models import QueueItem, RoutedBatch
from tests.conftest import checkout_records, wait_for
from tests.config.test_pipeline import upload

from .conftest import CHOICES

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_an_admitted_batch_flows_into_the_queue_and_an_approved_one_follows(worker, source, source_key, tmp_path,
                                                                         admin_user):
    from validation import services as validation

    reference = tmp_path / "train.ndjson"
    reference.write_bytes(checkout_records(3000, seed=0))
    validation.baseline_create_from_file(source=source, path=reference)
    project = services.project_create(name="fraud-check", choices=CHOICES, overlap=2, sources=[source])

    clean = upload(source_key, checkout_records(400, seed=1, prefix="c"))
    drifted = upload(source_key, checkout_records(300, shift=4, seed=2, prefix="d"))
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

    for batch_id in (clean, drifted):
        route_batch.delay(batch_id)  # a route message delivered again
    wait_for(lambda: sum(1 for line in worker.output().splitlines() if "route_batch" in line and "succeeded" in line)
             >= 5, timeout=30, what="the repeated route messages to be handled")
    assert QueueItem.objects.filter(project=project).count() == 700 and RoutedBatch.objects.count() == 2


def test_beat_maps_new_feedback_of_every_project_with_rules(worker, project, queued, source):
    from labeling.models import Annotation
    from labeling.tasks import apply_all_feedback_rules
    from tests.labeling.test_feedback import feedback

    services.feedback_rule_create(project=project, signal="rating", op="gte", threshold=4, label="positive")
    services.project_create(name="no-rules", choices=CHOICES, overlap=1, sources=[source])
    feedback(source, queued[0].record, "rating", 5, actor="a")
    feedback(source, queued[1].record, "rating", 1, actor="b")  # no rule maps it
    assert apply_all_feedback_rules.delay().get(timeout=60) == 1  # one project has enabled rules
    wait_for(lambda: Annotation.objects.filter(provenance="process_feedback").count() == 1, timeout=60,
             what="the feedback to be mapped by the worker")
    label = Annotation.objects.get(provenance="process_feedback")
    assert (label.item_id, label.value, label.actor) == (queued[0].pk, "positive", "pseudo-a")
