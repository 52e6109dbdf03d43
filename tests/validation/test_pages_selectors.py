"""The reads behind the sources and drift pages: counts per day, quarantine rates, freshness and drift,
checked on small worlds whose answers are known."""
import datetime as dt
import uuid

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone

from collection.models import Batch, BatchTransition, Source
from validation import selectors
from validation.models import Anomaly, Baseline, DailyProfile, ValidationRun
from validation.services import _json_safe
from validation.stats import compare, infer_schema, profile_frame

UTC = dt.timezone.utc
SCHEMA = {"version": 1, "label": "label", "features": {
    "amount": {"kind": "numeric"}, "country": {"kind": "categorical"}, "label": {"kind": "categorical"}}}


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)


def make_batch(source, when, *, records=10, verdict=None, quarantined=False, status=None) -> Batch:
    """A batch as the pipeline leaves it: with a verdict, the validate step's transition is recorded too."""
    status = status or (("quarantined" if quarantined else "admitted") if verdict else "ingested")
    batch = Batch.objects.create(source=source, status=status, format="ndjson", payload="-", sha256=uuid.uuid4().hex,
                                 record_count=records, received_at=when, updated_at=when)
    if verdict:
        ValidationRun.objects.create(batch=batch, verdict=verdict, started_at=when, finished_at=when)
        BatchTransition.objects.create(batch=batch, from_status="validating", actor="task:validate", at=when,
                                       to_status="quarantined" if quarantined else "admitted")
    return batch


def make_baseline(source, *, active=True, schema=SCHEMA, thresholds=None, when=None) -> Baseline:
    return Baseline.objects.create(source=source, origin="file", profile="{}", schema=schema,
                                   thresholds=thresholds or {}, is_active=active,
                                   created_at=when or timezone.now())


def metric(value, threshold):
    return {"value": value, "threshold": threshold, "p_value": None}


def make_day(baseline, day, *, amount, country=0.01, drifted=(), label=0.0, batches=1) -> DailyProfile:
    return DailyProfile.objects.create(
        source_id=baseline.source_id, baseline=baseline, day=day, profile="{}", batch_count=batches,
        metrics={"amount": {"wasserstein": metric(amount, 0.1), "js": metric(amount / 2, 0.1), "ks": metric(0.1, None)},
                 "country": {"js": metric(country, 0.1), "linf": metric(country, 0.1)},
                 "label": {"missing_rate": metric(0.0, 0.05), "label": metric(label, 0.05)}},
        drifted=list(drifted))


def engine_run(source, *, features=30, rows=400, seed=1, when=None) -> ValidationRun:
    """A baseline and a quarantined batch's run made by the engine on a wide frame; every fifth
    feature moves by one standard deviation, so those are flagged."""
    rng = np.random.default_rng(seed)

    def frame(shift):
        return pd.DataFrame({f"f{i:02d}": rng.normal(shift if i % 5 == 0 else 0.0, 1.0, rows) for i in range(features)})

    reference = profile_frame(frame(0.0))
    schema = infer_schema(reference)
    baseline = Baseline.objects.create(source=source, origin="file", profile=reference.to_json(),
                                       schema=schema.to_dict(), is_active=True, row_count=rows)
    profile = profile_frame(frame(1.0), spec=reference.spec)
    report = compare(profile, reference, schema=schema)
    when = when or timezone.now()
    batch = make_batch(source, when, records=rows, verdict=report.verdict, quarantined=True)
    run = ValidationRun.objects.get(batch=batch)
    run.baseline, run.reasons, run.report, run.profile = baseline, report.reasons, _json_safe(report.to_dict()), \
        profile.to_json()
    run.save()
    Anomaly.objects.bulk_create([Anomaly(run=run, kind=a.kind, feature=a.feature, metric=a.metric,
                                         value=_json_safe(a.value), threshold=_json_safe(a.threshold),
                                         severity=a.severity) for a in report.anomalies])
    return run


@pytest.fixture
def today():
    return timezone.now().date()


def test_a_source_s_days_count_arrivals_records_and_the_share_its_verdicts_quarantined(source, today):
    d0, d2 = today - dt.timedelta(days=2), today
    make_batch(source, at(d0), records=5, verdict="pass")
    make_batch(source, at(d0, 13), records=7, verdict="fail", quarantined=True)
    # Approved since: still a batch its verdict quarantined.
    approved = make_batch(source, at(d0, 14), records=1, verdict="fail", quarantined=True, status="admitted")
    BatchTransition.objects.create(batch=approved, from_status="quarantined", to_status="admitted", actor="user:a")
    make_batch(source, at(d2), records=100)  # no verdict yet
    make_batch(source, at(today - dt.timedelta(days=3)), records=1000, verdict="fail", quarantined=True)  # before
    other = Source.objects.create(name="other", kind="app")
    make_batch(other, at(d2), records=50, verdict="fail", quarantined=True)

    result = selectors.source_days(source, start=d0, end=d2)

    assert [d["day"] for d in result["days"]] == [d0.isoformat(), (d0 + dt.timedelta(days=1)).isoformat(),
                                                  d2.isoformat()]
    first, empty, last = result["days"]
    assert (first["batches"], first["records"], first["validated"], first["quarantined"]) == (3, 13, 3, 2)
    assert first["rate"] == pytest.approx(2 / 3)
    assert (empty["batches"], empty["records"], empty["rate"]) == (0, 0, None)
    assert (last["batches"], last["records"], last["validated"], last["rate"]) == (1, 100, 0, None)
    assert result["totals"] == {"batches": 4, "records": 113, "validated": 3, "quarantined": 2,
                                "rate": pytest.approx(2 / 3)}


def test_the_days_are_utc_days_of_arrival(source, today):
    day = today - dt.timedelta(days=1)
    make_batch(source, dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=UTC))
    make_batch(source, dt.datetime.combine(today, dt.time(0, 0), tzinfo=UTC))
    days = selectors.source_days(source, start=day, end=today)["days"]
    assert [d["batches"] for d in days] == [1, 1]


def test_the_sources_list_counts_only_the_window_and_says_who_is_silent(source, today):
    now = timezone.now()
    source.expected_interval = dt.timedelta(hours=1)
    source.save()
    make_batch(source, now - dt.timedelta(hours=3), records=4, verdict="warn", quarantined=True)
    make_batch(source, now - dt.timedelta(days=100), records=1000, verdict="pass")
    fresh = Source.objects.create(name="fresh", kind="service", expected_interval=dt.timedelta(hours=1))
    make_batch(fresh, now - dt.timedelta(minutes=10), records=2, verdict="pass")
    quiet = Source.objects.create(name="quiet", kind="upload")

    rows = {r["source"].name: r for r in selectors.source_rows(selectors.source_list(),
                                                                since=now - dt.timedelta(days=90), now=now)}

    checkout = rows["checkout-app"]
    assert (checkout["batches"], checkout["records"], checkout["rate"]) == (1, 4, 1.0)
    assert rows["checkout-app"]["silent"] is True
    assert rows["checkout-app"]["last_batch_at"] == now - dt.timedelta(hours=3)
    assert (rows["fresh"]["silent"], rows["fresh"]["rate"]) == (False, 0.0)
    assert (rows["quiet"]["batches"], rows["quiet"]["silent"], rows["quiet"]["last_batch_at"]) == (0, False, None)
    # The home page and the silence alert read the same answer.
    assert [s["source"].name for s in selectors.source_silences(now=now) if s["silent"]] == ["checkout-app"]


def test_the_sources_list_names_each_source_s_active_baseline(source):
    make_baseline(source, active=False)
    active = make_baseline(source)
    assert selectors.source_list().get(pk=source.pk).active_baseline_id == active.pk


def test_drift_features_count_drifted_days_in_range_worst_first(source, today):
    baseline = make_baseline(source)
    older = make_baseline(source, active=False)
    for i in range(5):
        day = today - dt.timedelta(days=i)
        make_day(baseline, day, amount=0.05 + 0.02 * i, drifted=["amount"] if i < 3 else [],
                 label=0.2 if i == 0 else 0.0)
    make_day(baseline, today - dt.timedelta(days=30), amount=0.5, drifted=["amount", "country"])  # out of range
    make_day(older, today, amount=0.5, drifted=["country"])  # another baseline

    rows, days = selectors.drift_features(baseline, start=today - dt.timedelta(days=6), end=today)

    assert days == 5
    assert [(r["feature"], r["drifted_days"], r["metric"]) for r in rows] == [
        ("amount", 3, "wasserstein"), ("label", 1, "label"), ("country", 0, "js")]


def test_a_drift_series_is_the_metric_and_its_threshold_day_by_day(source, today):
    baseline = make_baseline(source)
    yesterday = today - dt.timedelta(days=1)
    make_day(baseline, today, amount=0.3, drifted=["amount"], batches=4)
    make_day(baseline, yesterday, amount=0.02)

    series = selectors.drift_series(baseline, feature="amount", metric="wasserstein", start=yesterday, end=today)

    assert series == {"feature": "amount", "metric": "wasserstein", "days": [yesterday.isoformat(), today.isoformat()],
                      "values": [0.02, 0.3], "thresholds": [0.1, 0.1], "drifted": [False, True], "batches": [1, 4]}
    report_only = selectors.drift_series(baseline, feature="amount", metric="ks", start=yesterday, end=today)
    assert report_only["thresholds"] == [None, None]
    absent = selectors.drift_series(baseline, feature="amount", metric="linf", start=yesterday, end=today)
    assert absent["values"] == [None, None]


def test_the_deciding_metric_is_the_first_with_a_threshold(source):
    baseline = make_baseline(source, thresholds={"per_feature": {"amount": {"wasserstein": None, "psi": 0.25}}})
    assert selectors.drift_metrics(baseline, "amount")[0] == "psi"
    assert selectors.drift_metrics(make_baseline(source, active=False), "amount")[:2] == ("wasserstein", "js")
    assert selectors.drift_metrics(baseline, "country")[0] == "js"
    assert selectors.drift_metrics(baseline, "label") == ("label",)


def test_a_batch_s_charts_put_flagged_features_first_and_draw_only_those_asked_for(source):
    run = engine_run(source, features=12)
    order = selectors.batch_chart_features(run)
    flagged = [name for name, is_flagged in order if is_flagged]
    assert flagged == sorted(set(run.anomalies.values_list("feature", flat=True)))
    assert {"f00", "f05", "f10"} <= set(flagged) and len(flagged) < 12
    assert [name for name, _ in order[:len(flagged)]] == flagged and len(order) == 12
    charts = selectors.batch_charts(run, order[len(flagged) - 1:len(flagged) + 2])
    assert [c["feature"] for c in charts] == [n for n, _ in order[len(flagged) - 1:len(flagged) + 2]]
    assert charts[0]["flagged"] and not charts[1]["flagged"]
    assert sum(charts[0]["baseline"]) == pytest.approx(1.0) and "wasserstein" in charts[0]["metrics"]
