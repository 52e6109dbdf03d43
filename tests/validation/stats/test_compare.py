"""compare(): anomalies, verdicts, sample-size rules, thresholds and the Elec2 real data."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from testdata.synthetic import bench_frame
from validation.stats import Thresholds, compare, infer_schema, profile_chunks, profile_frame

ELEC2 = Path(__file__).resolve().parents[2] / "data/drift/elec2/elecNormNew.csv"
ELEC2_COLUMNS = ["date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "class"]


def frame(n, seed, shift=0.0, **extra):
    rng = np.random.default_rng(seed)
    data = {
        "x": rng.normal(shift, 1.0, n),
        "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        "y": rng.choice(["no", "yes"], n),
    }
    data.update(extra)
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def baseline():
    return profile_frame(frame(50_000, 0), label="y")


def check(batch_frame, baseline, **kwargs):
    return compare(profile_frame(batch_frame, spec=baseline.spec), baseline, **kwargs)


def test_a_batch_from_the_same_distribution_passes(baseline):
    report = check(frame(20_000, 1), baseline)
    assert (report.verdict, report.anomalies, report.shift.kind) == ("pass", [], "none")


@pytest.mark.slow
def test_a_million_row_batch_with_no_real_change_passes():
    base = profile_frame(bench_frame(1_000_000, 1), label="label")
    report = compare(profile_frame(bench_frame(1_000_000, 2), spec=base.spec), base)
    assert report.verdict == "pass", report.reasons
    # p-values are reported but do not decide: on a million rows some are small by chance.
    assert all(mv.p_value is None or 0 <= mv.p_value <= 1 for ms in report.metrics.values() for mv in ms.values())


def test_a_large_shift_fails_with_a_drift_anomaly_naming_the_metric(baseline):
    report = check(frame(20_000, 2, shift=1.0), baseline)
    drift = [a for a in report.anomalies if a.kind == "distribution_drift"]
    assert report.verdict == "fail" and [a.feature for a in drift] == ["x"]
    assert drift[0].metric in {"wasserstein", "js"} and drift[0].value >= drift[0].threshold
    assert "mean" in drift[0].explanation
    assert report.drifted_share == 0.5 and report.shift.kind == "covariate"


def test_below_the_minimum_sample_size_a_drift_is_reported_but_only_warns(baseline):
    report = check(frame(60, 3).assign(c="c"), baseline)
    drift = [a for a in report.anomalies if a.kind == "distribution_drift"]
    assert drift and all(a.severity == "warning" for a in drift)
    assert "min_rows" in drift[0].explanation
    assert report.verdict == "warn"


def test_a_small_batch_without_change_does_not_fail_on_noise(baseline):
    for seed in range(5):
        assert check(frame(200, 10 + seed), baseline).verdict == "pass"


def test_schema_anomalies_are_named(baseline):
    batch = frame(5_000, 4).drop(columns="x").assign(extra=1.0)
    batch["c"] = batch["c"].where(np.arange(5_000) % 10 != 0, "zzz")
    kinds = check(batch, baseline).kinds()
    assert {("missing_required_feature", "x"), ("unexpected_feature", "extra"), ("out_of_domain", "c")} <= kinds


def test_a_type_change_is_an_error_and_skips_the_distribution_checks(baseline):
    report = check(frame(1_000, 5).assign(x=lambda d: d["x"].astype(str)), baseline)
    assert ("type_change", "x") in report.kinds()
    assert "js" not in report.metrics["x"]


def test_out_of_range_values_and_infinities_are_counted(baseline):
    batch = frame(1_000, 6)
    batch.loc[:19, "x"] = 1e6
    batch.loc[20:29, "x"] = np.inf
    anomaly = next(a for a in check(batch, baseline).anomalies if a.kind == "out_of_range")
    assert anomaly.value == pytest.approx(0.03)


def test_a_missing_rate_change_is_flagged(baseline):
    batch = frame(5_000, 7)
    batch.loc[: 5_000 * 0.2, "c"] = ""
    assert ("missing_rate_change", "c") in check(batch, baseline).kinds()


def test_a_serving_batch_need_not_carry_the_label(baseline):
    report = check(frame(5_000, 8).drop(columns="y"), baseline, environment="serving")
    assert report.verdict == "pass"
    training = check(frame(5_000, 8).drop(columns="y"), baseline, environment="training")
    assert training.kinds() == {("missing_required_feature", "y")}


def test_a_batch_without_any_label_is_checked_as_serving_data(baseline):
    # Production records arrive before their labels: by default a batch that carries none (no label
    # column, or one with no value) is serving data; one with some labels is training data.
    assert check(frame(5_000, 8).drop(columns="y"), baseline).verdict == "pass"
    unlabeled = frame(5_000, 8)
    unlabeled["y"] = None
    assert check(unlabeled, baseline).verdict == "pass"
    half = frame(5_000, 8)
    half.loc[: 2_499, "y"] = None
    assert ("missing_rate_change", "y") in check(half, baseline).kinds()


def test_thresholds_are_configurable_per_feature_and_metric(baseline):
    batch = frame(20_000, 9, shift=0.2)
    assert check(batch, baseline).verdict == "fail"
    lenient = Thresholds(per_feature={"x": {"wasserstein": 0.5, "js": 0.5}})
    assert check(batch, baseline, thresholds=lenient).verdict == "pass"
    nudged = frame(20_000, 9)
    nudged["c"] = np.random.default_rng(9).choice(["a", "b", "c"], 20_000, p=[0.45, 0.35, 0.2])
    # A share moved by 0.05 is past the default L-infinity (0.025, issue 12) and above the noise at 20,000 rows.
    assert ("distribution_drift", "c") in check(nudged, baseline).kinds()
    tolerant = Thresholds(per_feature={"c": {"linf": 0.1}})
    assert check(nudged, baseline, thresholds=tolerant).verdict == "pass"


def test_an_edited_schema_is_enforced(baseline):
    schema = infer_schema(baseline)
    schema.features["c"].domain = ["a", "b"]
    report = check(frame(5_000, 11), baseline, schema=schema)
    anomaly = next(a for a in report.anomalies if a.kind == "out_of_domain")
    assert anomaly.value == pytest.approx(0.2, abs=0.02)


def test_the_report_serialises_to_json(baseline):
    report = check(frame(2_000, 12, shift=1.0), baseline)
    data = json.loads(report.to_json())
    assert data["verdict"] == "fail"
    assert {"kind", "feature", "metric", "value", "threshold", "severity", "explanation"} <= set(data["anomalies"][0])
    assert data["metrics"]["x"]["js"]["threshold"] is not None


def test_elec2_first_year_against_the_last_names_the_frozen_victoria_columns():
    df = pd.read_csv(ELEC2, header=None, names=ELEC2_COLUMNS)
    first, last = df.iloc[:17_424], df.iloc[-17_424:]
    base = profile_frame(first, label="class")
    report = compare(profile_frame(last, spec=base.spec), base)
    kinds = report.kinds()
    for name in ("vicprice", "vicdemand", "transfer"):
        # Frozen at one constant in the baseline: every later value is out of range and drifted.
        assert ("out_of_range", name) in kinds
        assert ("distribution_drift", name) in kinds
    assert ("distribution_drift", "nswprice") in kinds
    assert not {f for _, f in kinds} & {"day", "period"}
    assert report.verdict == "fail"


def test_a_batch_profiled_in_four_chunks_gives_the_whole_frame_report():
    base = profile_frame(bench_frame(200_000, 1), label="label")
    batch = bench_frame(200_000, 2, drift=True)
    whole = compare(profile_frame(batch, spec=base.spec), base)
    chunks = [batch.iloc[i : i + 50_000] for i in range(0, 200_000, 50_000)]
    merged = compare(profile_chunks(chunks, spec=base.spec), base)
    assert (merged.verdict, merged.shift, merged.kinds()) == (whole.verdict, whole.shift, whole.kinds())
    for feature, metrics in whole.metrics.items():
        for name, mv in metrics.items():
            # Only the KLL-based metrics may differ, within the sketches' error.
            tolerance = {"ks": 0.015, "wasserstein": 0.03}.get(name, 1e-9)
            assert merged.metrics[feature][name].value == pytest.approx(mv.value, abs=tolerance), (feature, name)
