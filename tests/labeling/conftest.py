"""Fixtures of the labeling tests: admitted batches of records, a project fed by the source, raters in it."""
import uuid

import pytest

from collection.models import Batch, Record
from labeling import services
from labeling.models import Rater

CHOICES = [{"value": "positive", "label": "Positive", "hotkey": "1"},
           {"value": "negative", "label": "Negative", "hotkey": "2"},
           {"value": "neutral", "label": "Neutral", "hotkey": "3"}]


def batch_of_records(source, n: int, *, status: str = Batch.Status.ADMITTED, prefix: str | None = None) -> Batch:
    """A batch with n current records, made directly (ingest is collection's to test)."""
    prefix = prefix or uuid.uuid4().hex[:6]
    batch = Batch.objects.create(source=source, status=status, format=Batch.Format.NDJSON, payload="test",
                                 sha256=uuid.uuid4().hex, record_count=n, ingested_count=n)
    Record.objects.bulk_create([
        Record(batch=batch, source=source, line=i + 1, external_id=f"{prefix}-{i}",
               features={"text": f"review {prefix} {i}", "stars": i % 5}, is_current=True)
        for i in range(n)
    ])
    return batch


@pytest.fixture
def project(source):
    return services.project_create(name="sentiment", choices=CHOICES, overlap=3, sources=[source],
                                   instructions="Is the review **positive**?")


@pytest.fixture
def make_rater(project):
    def make(name: str | None = None, *, kind: str = Rater.Kind.GENERALIST, domains=(), join=project,
             password: str | None = None) -> Rater:
        rater = services.rater_create(username=name or f"rater-{uuid.uuid4().hex[:8]}", kind=kind, domains=domains,
                                      password=password)
        if join is not None:
            services.project_add_raters(project=join, raters=[rater])
        return rater
    return make


@pytest.fixture
def queued(project, source):
    """Ten items in the project's queue, from one admitted batch."""
    batch = batch_of_records(source, 10)
    services.batch_route(batch_id=batch.pk)
    return list(project.items.order_by("id"))
