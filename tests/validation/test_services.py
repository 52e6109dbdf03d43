"""Baselines: profiled once from a reference file or from batches, one active per source, older ones kept."""
import io
import threading
from datetime import timedelta

import numpy as np
import orjson
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection
from django.utils import timezone

from collection import services as collection
from collection.models import Batch
from collection.parsing import LABEL_COLUMN
from collection.storage import data_path
from tests.factories import batch_ingested, batch_received, checkout_records
from validation import services
from validation.models import Alert, Baseline, DailyProfile, QuarantinePolicy, ValidationRun
from validation.stats import Profile, compare, iter_parquet, profile_chunks


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


def test_a_parquet_reference_without_its_label_column_becomes_a_baseline(source, tmp_path):
    parquet = tmp_path / "features-only.parquet"
    pd.DataFrame({"amount": np.arange(400.0), "country": ["DE", "FR"] * 200}).to_parquet(parquet)
    baseline = services.baseline_create_from_file(source=source, path=parquet)
    assert baseline.row_count == 400 and "__label" not in baseline.schema["features"]
    labeled = pd.DataFrame({"amount": np.arange(400.0), "country": ["DE", "FR"] * 200, "__label": ["ok"] * 400})
    reference = Profile.from_json(baseline.profile)
    report = compare(profile_chunks([labeled], spec=reference.spec), reference)
    assert report.verdict == "pass", report.reasons


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
    batch = batch_ingested(source, records(4000))
    baseline = services.baseline_create_from_batches(source=source, batches=[batch])
    assert baseline.origin == "batches" and baseline.row_count == 4000
    reference = Profile.from_json(baseline.profile)

    def verdict(body: bytes) -> str:
        later = batch_ingested(source, body)
        frames = (f.drop(columns=["__external_id", "__observed_at"]) for f in iter_parquet(data_path(later.columnar)))
        return compare(profile_chunks(frames, spec=reference.spec), reference).verdict

    assert verdict(records(4000, seed=1)) == "pass"
    assert verdict(records(4000, shift=3.0, seed=2)) == "fail"


def test_a_baseline_from_another_sources_batch_is_refused(source):
    batch = batch_received(source, records(10))
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
    return batch_ingested(source, body)


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


def test_production_records_without_labels_are_admitted_and_half_labeled_ones_flagged(source, with_baseline):
    # A baseline made from labeled data; production batches arrive before their labels.
    def without_labels(body: bytes, keep_every: int = 0) -> bytes:
        lines = []
        for number, line in enumerate(body.splitlines()):
            record = orjson.loads(line)
            if not keep_every or number % keep_every:
                record.pop("label", None)
            lines.append(orjson.dumps(record))
        return b"\n".join(lines) + b"\n"

    unlabeled = services.batch_validate(batch_id=ingested(source, without_labels(records(3000, seed=8))).pk)
    assert unlabeled.status == "admitted" and unlabeled.validation.verdict == "pass"
    assert not unlabeled.validation.anomalies.filter(feature=LABEL_COLUMN).exists()
    half = services.batch_validate(batch_id=ingested(source, without_labels(records(3000, seed=9), keep_every=2)).pk)
    assert half.validation.anomalies.filter(feature=LABEL_COLUMN, kind="missing_rate_change").exists()


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


# --- the source's quarantine policy


def with_extra_feature(body: bytes) -> bytes:
    """The same records with a feature the baseline never saw: a warning, not an error."""
    lines = [orjson.loads(line) for line in body.splitlines()]
    for line in lines:
        line["features"]["coupon"] = "none"
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def test_under_the_errors_policy_a_warning_admits_the_batch_and_raises_the_warn_alert(source, with_baseline):
    batch = services.batch_validate(batch_id=ingested(source, with_extra_feature(records(2000, seed=3))).pk)
    assert (batch.validation.verdict, batch.status) == ("warn", "admitted")
    assert Alert.objects.filter(source=source, kind="warn", batch=batch, resolved_at__isnull=True).exists()
    assert not Alert.objects.filter(source=source, kind="quarantine").exists()


def test_under_the_warnings_policy_a_warning_quarantines_the_batch_and_raises_the_quarantine_alert(source,
                                                                                                    with_baseline):
    services.source_policy_set(source=source, quarantine_on=QuarantinePolicy.WARNINGS)
    batch = services.batch_validate(batch_id=ingested(source, with_extra_feature(records(2000, seed=3))).pk)
    assert (batch.validation.verdict, batch.status) == ("warn", "quarantined")
    alert = Alert.objects.get(source=source, kind="quarantine", resolved_at__isnull=True)
    assert alert.batch_id == batch.pk and "unexpected_feature" in alert.message
    assert not Alert.objects.filter(source=source, kind="warn").exists()
    clean = services.batch_validate(batch_id=ingested(source, records(2000, seed=4)).pk)
    assert (clean.validation.verdict, clean.status) == ("pass", "admitted")


# --- daily profiles


def profiled_together(batches, baseline) -> Profile:
    spec = Profile.from_json(baseline.profile).spec
    frames = (frame.drop(columns=["__external_id", "__observed_at"])
              for batch in batches for frame in iter_parquet(data_path(batch.columnar)))
    return profile_chunks(frames, spec=spec)


def same_statistics(a: Profile, b: Profile) -> bool:
    """Equal profiles: every field, and what the sketches answer (their bytes also record how they
    were built: whether a query has sorted a KLL level yet, an HLL union's layout)."""
    def plain(profile: Profile) -> dict:
        d = profile.to_dict()
        for feature in d["features"].values():
            feature.pop("quantiles", None)
            feature["distinct"].pop("hll")
        return d

    ranks = np.linspace(0, 1, 201)
    return plain(a) == plain(b) and all(
        fp.distinct.estimate() == b.features[name].distinct.estimate()
        and (fp.kind != "numeric"
             or np.array_equal(fp.quantiles.quantiles(ranks), b.features[name].quantiles.quantiles(ranks)))
        for name, fp in a.features.items())


def test_two_batches_of_one_day_make_one_daily_profile_equal_to_profiling_both_together(source, with_baseline):
    first = services.batch_validate(batch_id=ingested(source, records(1000, seed=11)).pk)
    second = services.batch_validate(batch_id=ingested(source, records(1000, shift=4, seed=12)).pk)
    daily = DailyProfile.objects.get()
    assert (daily.source_id, daily.baseline_id, daily.day) == (source.pk, with_baseline.pk, first.received_at.date())
    assert (daily.batch_count, daily.row_count) == (2, 2000)
    assert same_statistics(Profile.from_json(daily.profile), profiled_together([first, second], with_baseline))
    # Half the day drifted: the day's comparison says so, with its metrics per feature.
    assert daily.drifted == ["amount"]
    assert daily.metrics["amount"]["wasserstein"]["value"] >= daily.metrics["amount"]["wasserstein"]["threshold"]


def test_batches_of_different_days_make_one_daily_profile_each(source, with_baseline):
    earlier = ingested(source, records(500, seed=13))
    Batch.objects.filter(pk=earlier.pk).update(received_at=earlier.received_at - timedelta(days=1))
    services.batch_validate(batch_id=earlier.pk)
    services.batch_validate(batch_id=ingested(source, records(500, seed=14)).pk)
    days = list(DailyProfile.objects.values_list("day", "batch_count", "row_count"))
    assert len(days) == 2 and [(count, rows) for _, count, rows in days] == [(1, 500), (1, 500)]
    assert days[1][0] - days[0][0] == timedelta(days=1)


def test_a_batch_without_a_baseline_makes_no_daily_profile(source):
    services.batch_validate(batch_id=ingested(source, records(50)).pk)
    assert not DailyProfile.objects.exists()


def test_concurrent_verdicts_of_one_day_all_reach_its_profile(transactional_db, source, tmp_path):
    path = tmp_path / "train.ndjson"
    path.write_bytes(records(3000))
    baseline = services.baseline_create_from_file(source=source, path=path)
    batches = [ingested(source, checkout_records(800, seed=20 + i, prefix=f"p{i}")) for i in range(4)]
    start = threading.Barrier(len(batches))
    errors = []

    def validate(batch_id: int) -> None:
        try:
            start.wait()
            services.batch_validate(batch_id=batch_id)
        except Exception as exc:  # reported below: an assertion in a thread would pass silently
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=validate, args=(batch.pk,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    daily = DailyProfile.objects.get()
    assert (daily.batch_count, daily.row_count, Profile.from_json(daily.profile).n_rows) == (4, 3200, 3200)
    together = profiled_together(Batch.objects.filter(pk__in=[b.pk for b in batches]), baseline)
    merged = Profile.from_json(daily.profile)
    for name, feature in together.features.items():
        assert (merged.features[name].count, merged.features[name].hist.tolist()) == (feature.count,
                                                                                      feature.hist.tolist())


# --- process-feedback labels


def corrections(batch, ids_and_values, *, at) -> None:
    collection.feedback_receive(source=batch.source, events=[
        {"external_id": external_id, "signal": "correction", "value": value, "actor": "ops", "occurred_at": at,
         "idempotency_key": f"fix-{external_id}-{at.isoformat()}"}
        for external_id, value in ids_and_values])


def test_a_label_shift_seen_only_through_corrections_is_flagged_as_label_drift(source, with_baseline):
    plain = services.batch_validate(batch_id=ingested(source, checkout_records(3000, seed=30, prefix="a")).pk)
    assert ("label_drift", "__label") not in {(a.kind, a.feature) for a in plain.validation.anomalies.all()}
    assert plain.validation.report["feedback_labels"] == {"applied": 0, "replaced": 0}

    batch = ingested(source, checkout_records(3000, seed=30, prefix="b"))
    oks = [r.external_id for r in batch.records.all() if r.label == "ok"][:900]
    now = timezone.now()
    # The process says these were fraud; for the first 100 it first said "ok" and later corrected itself.
    corrections(batch, [(i, "ok") for i in oks[:100]], at=now - timedelta(hours=2))
    corrections(batch, [(i, "fraud") for i in oks], at=now - timedelta(hours=1))
    # 50 fraud records corrected to ok; the later correction without a value is no label, so ok stands.
    frauds = [r.external_id for r in batch.records.all() if r.label == "fraud"][:50]
    corrections(batch, [(i, "ok") for i in frauds], at=now - timedelta(hours=3))
    corrections(batch, [(i, None) for i in frauds], at=now)
    corrections(batch, [(oks[0], "fraud")], at=now - timedelta(hours=4))  # older: the later one stands

    run = services.batch_validate(batch_id=batch.pk).validation
    anomaly = run.anomalies.get(kind="label_drift")
    assert anomaly.feature == "__label" and "fraud" in anomaly.explanation
    assert run.report["feedback_labels"] == {"applied": 950, "replaced": 950}
    assert run.verdict == "fail" and run.batch.status == "quarantined"
    profile = Profile.from_json(run.profile)
    shares = profile.features["__label"].hist / profile.features["__label"].hist.sum()
    classes = list(profile.spec.label_classes)
    expected_fraud = (sum(1 for r in batch.records.all() if r.label == "fraud") - 50 + 900) / 3000
    assert shares[classes.index("fraud")] == pytest.approx(expected_fraud)
