"""Baselines: profiled once from a reference file or from batches, one active per source, older ones kept."""
import io

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError

from collection import services as collection
from collection.storage import data_path
from validation import services
from validation.models import Baseline, ValidationRun
from validation.stats import Profile, compare, iter_parquet, profile_chunks

from tests.conftest import checkout_records


def records(n: int, *, shift: float = 0.0, seed: int = 0) -> bytes:
    return checkout_records(n, shift=shift, seed=seed)


def test_a_baseline_is_profiled_once_from_an_ndjson_reference(source, tmp_path):
    path = tmp_path / "train.ndjson"
    path.write_bytes(records(3000))
    baseline = services.baseline_create_from_file(source=source, path=path)
    assert baseline.is_active and baseline.row_count == 3000
    assert set(baseline.schema["features"]) == {"amount", "country", "__label"}
    assert Profile.from_json(baseline.profile).n_rows == 3000


def test_csv_and_parquet_references_are_read_too(source, tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("external_id,amount,country,label\n" + "".join(f"r{i},{i % 7},DE,ok\n" for i in range(500)))
    assert services.baseline_create_from_file(source=source, path=csv).row_count == 500
    parquet = tmp_path / "train.parquet"
    pd.DataFrame({"amount": np.arange(400.0), "target": ["a", "b"] * 200}).to_parquet(parquet)
    baseline = services.baseline_create_from_file(source=source, path=parquet, label="target")
    assert baseline.row_count == 400 and "__label" in baseline.schema["features"]


def test_a_bad_reference_is_refused_with_its_line(source, tmp_path):
    from collection.parsing import PayloadError

    path = tmp_path / "train.ndjson"
    path.write_bytes(records(3) + b'{"external_id": "x", "features": {"amount": }}\n')
    with pytest.raises(PayloadError, match="line 4"):
        services.baseline_create_from_file(source=source, path=path)
    assert Baseline.objects.count() == 0


def test_one_baseline_is_active_per_source_and_older_ones_can_come_back(source, tmp_path):
    path = tmp_path / "train.ndjson"
    path.write_bytes(records(200))
    first = services.baseline_create_from_file(source=source, path=path)
    second = services.baseline_create_from_file(source=source, path=path)
    first.refresh_from_db()
    assert (first.is_active, second.is_active) == (False, True)
    services.baseline_activate(baseline=first)
    assert list(Baseline.objects.active().values_list("pk", flat=True)) == [first.pk]
    with pytest.raises(IntegrityError):
        Baseline.objects.filter(pk=second.pk).update(is_active=True)


def test_a_baseline_from_ingested_batches_checks_later_batches(source):
    batch = collection.batch_receive(source=source, body=io.BytesIO(records(4000)), fmt="ndjson",
                                     gzipped=False)[0]
    batch = collection.batch_ingest(batch_id=batch.pk)
    baseline = services.baseline_create_from_batches(source=source, batches=[batch])
    assert baseline.origin == "batches" and baseline.row_count == 4000
    reference = Profile.from_json(baseline.profile)

    def verdict(body: bytes) -> str:
        later = collection.batch_receive(source=source, body=io.BytesIO(body), fmt="ndjson", gzipped=False)[0]
        later = collection.batch_ingest(batch_id=later.pk)
        frames = (f.drop(columns=["__external_id", "__observed_at"]) for f in iter_parquet(data_path(later.columnar)))
        return compare(profile_chunks(frames, spec=reference.spec), reference).verdict

    assert verdict(records(4000, seed=1)) == "pass"
    assert verdict(records(4000, shift=3.0, seed=2)) == "fail"


def test_a_baseline_from_another_sources_batch_is_refused(source):
    batch = collection.batch_receive(source=source, body=io.BytesIO(records(10)), fmt="ndjson", gzipped=False)[0]
    other = collection.source_create(name="other", kind="app")
    with pytest.raises(services.BaselineError, match="another source"):
        services.baseline_create_from_batches(source=other, batches=[batch])


def test_the_baseline_create_command_reports_the_new_baseline(source, tmp_path):
    path = tmp_path / "train.ndjson.gz"
    import gzip

    path.write_bytes(gzip.compress(records(100)))
    out = io.StringIO()
    call_command("baseline_create", str(path), "--source", source.name, stdout=out)
    assert "100 rows, 3 features, active" in out.getvalue()
    with pytest.raises(CommandError, match="no source named"):
        call_command("baseline_create", str(path), "--source", "nope", stdout=io.StringIO())


# --- verdicts and reviews


def ingested(source, body: bytes):
    batch = collection.batch_receive(source=source, body=io.BytesIO(body), fmt="ndjson", gzipped=False)[0]
    return collection.batch_ingest(batch_id=batch.pk)


@pytest.fixture
def with_baseline(source, tmp_path):
    path = tmp_path / "train.ndjson"
    path.write_bytes(records(5000))
    return services.baseline_create_from_file(source=source, path=path)


def test_a_batch_of_a_source_without_a_baseline_is_quarantined_for_that_reason(source):
    batch = services.batch_validate(batch_id=ingested(source, records(50)).pk)
    assert batch.status == "quarantined"
    assert (batch.validation.verdict, batch.validation.reasons) == ("no_baseline", ["no baseline"])


def test_a_clean_batch_is_admitted_and_a_drifted_one_quarantined_with_its_anomalies(source, with_baseline):
    clean = services.batch_validate(batch_id=ingested(source, records(3000, seed=5)).pk)
    assert clean.status == "admitted" and clean.validation.verdict == "pass"
    drifted = services.batch_validate(batch_id=ingested(source, records(3000, shift=4, seed=6)).pk)
    assert drifted.status == "quarantined" and drifted.validation.verdict == "fail"
    anomaly = drifted.validation.anomalies.get(feature="amount", kind="distribution_drift")
    assert anomaly.value >= anomaly.threshold and anomaly.explanation
    assert drifted.validation.baseline == with_baseline


def test_validating_twice_gives_one_verdict(source, with_baseline):
    batch = ingested(source, records(500, seed=7))
    services.batch_validate(batch_id=batch.pk)
    services.batch_validate(batch_id=batch.pk)
    assert ValidationRun.objects.filter(batch=batch).count() == 1


def test_an_admin_approves_or_rejects_a_quarantined_batch_once(source, admin_user):
    first = services.batch_validate(batch_id=ingested(source, records(20)).pk)
    approved = services.batch_review(batch_id=first.pk, user=admin_user, approve=True, comment="known promo")
    assert approved.status == "admitted"
    last = approved.transitions.last()
    assert (last.actor, last.note) == ("user:admin", "approved: known promo")
    with pytest.raises(services.ReviewError, match="not quarantined"):
        services.batch_review(batch_id=first.pk, user=admin_user, approve=False)
    second = services.batch_validate(batch_id=ingested(source, records(20, seed=9)).pk)
    assert services.batch_review(batch_id=second.pk, user=admin_user, approve=False).status == "rejected"


def test_the_sweeper_restarts_a_validation_whose_worker_died(source, celery_queue):
    from datetime import timedelta

    from django.utils import timezone

    from collection.models import Batch
    from config.pipeline import sweep_stalled_batches

    batch = ingested(source, records(20))
    collection.batch_transition(batch_id=batch.pk, from_status="ingested", to_status="validating", actor="t")
    Batch.objects.filter(pk=batch.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert sweep_stalled_batches()["requeued"] == 1
    assert Batch.objects.get(pk=batch.pk).status == "ingested"
    assert services.batch_validate(batch_id=batch.pk).status == "quarantined"
