"""The reads behind the sources and drift pages: counts per day, quarantine rates, freshness and drift,
checked on small worlds whose answers are known."""
import datetime as dt

import pytest
from django.utils import timezone

from collection.models import BatchTransition, Source
from tests.factories import at, engine_run, make_baseline, make_batch, make_day
from validation import selectors

UTC = dt.timezone.utc


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
    Source.objects.create(name="quiet", kind="upload")

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
        ("amount", 3, "wasserstein"), ("label", 1, "label"), ("country", 0, "linf")]


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


def test_the_deciding_metric_is_the_engine_s_first_with_a_threshold(source):
    baseline = make_baseline(source, thresholds={"per_feature": {"amount": {"wasserstein": None, "psi": 0.25}}})
    assert selectors.drift_metrics(baseline, "amount") == ("js", "psi", "wasserstein", "ks")
    assert selectors.drift_metrics(make_baseline(source, active=False), "amount")[:2] == ("wasserstein", "js")
    assert selectors.drift_metrics(baseline, "country") == ("linf", "js", "psi")
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
