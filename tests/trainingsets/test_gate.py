"""The gate at publish: a version's own profile, and its comparison with the previous published version and
with its sources' active baselines. Versions here are Parquet files written by hand with the build's columns."""
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collection import services as collection_services
from collection.parsing import LABEL_COLUMN
from collection.storage import data_path
from trainingsets.gate_charts import comparison_charts
from trainingsets.models import GateOn, TrainingSet, TrainingSetVersion
from trainingsets.services import gate
from trainingsets.services.decisions import version_make_baseline
from trainingsets.services.gate import NOTHING_TO_COMPARE, gate_run
from validation.models import Baseline
from validation.services import baseline_create_from_profile
from validation.stats import Profile, profile_chunks, spec_from_frame

Status = TrainingSetVersion.Status
META = [("external_id", pa.string()), ("source", pa.string()), ("observed_at", pa.timestamp("us", tz="UTC"))]
TAIL = [("label", pa.string()), ("label_confidence", pa.float64()), ("split", pa.string())]
# The feature called "source" is written `feature.source`, as the build does with a meta column's name.
FEATURES = [("amount", pa.float64(), "amount"), ("country", pa.string(), "country"),
            ("feature.source", pa.string(), "source"), ("tags", pa.list_(pa.string()), "tags")]


def rows(n: int, *, source: str = "checkout-app", shift: float = 0.0, fraud: float = 0.1, seed: int = 0,
         prefix: str = "r", split: str = "train") -> pd.DataFrame:
    """n rows in the build's columns: amount ~ N(10 + shift, 2), three countries, a fraud label."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "external_id": [f"{prefix}{i}" for i in range(n)],
        "source": source,
        "observed_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="min"),
        "amount": rng.normal(10 + shift, 2, n),
        "country": rng.choice(["DE", "FR", "NL"], n),
        "feature.source": rng.choice(["web", "app"], n),
        "tags": pd.Series([["a", "b"] if i % 3 == 0 else ["c"] for i in range(n)], dtype=object),
        "label": rng.choice(["ok", "fraud"], n, p=[1 - fraud, fraud]),
        "label_confidence": rng.uniform(0.7, 1.0, n),
        "split": split,
    })


def write_version(training_set: TrainingSet, number: int, splits: dict[str, pd.DataFrame], *,
                  status: str = Status.BUILDING, row_group: int = 250) -> tuple[TrainingSetVersion, dict]:
    """The split files of a version as the build writes them, and its row with a manifest holding the schema."""
    folder = f"trainingsets/{training_set.pk}/v{number}"
    data_path(folder).mkdir(parents=True, exist_ok=True)
    schema = pa.schema(META + [(name, kind) for name, kind, _ in FEATURES] + TAIL)
    files = {}
    for split, frame in splits.items():
        files[split] = data_path(f"{folder}/{split}.parquet")
        # Without pandas' metadata, as the build writes: a reader gets Arrow's types, not pandas' dtypes back.
        table = pa.Table.from_pandas(frame.assign(split=split), schema=schema, preserve_index=False) \
            .replace_schema_metadata(None)
        pq.write_table(table, files[split], row_group_size=row_group)
    manifest = {"schema": [{"name": n, "type": str(t), "feature": None} for n, t in META]
                + [{"name": n, "type": str(t), "feature": f} for n, t, f in FEATURES]
                + [{"name": n, "type": str(t), "feature": None} for n, t in TAIL],
                "rows": sum(len(f) for f in splits.values())}
    version = TrainingSetVersion.objects.create(training_set=training_set, number=number, status=status,
                                                folder=folder, manifest=manifest)
    return version, files


def gated(version: TrainingSetVersion, files: dict) -> gate.GateResult:
    """Run the gate and record it as the build would: published, or held for review."""
    result = gate_run(version=version, files=files)
    status = Status.REVIEW if result.held else Status.PUBLISHED
    TrainingSetVersion.objects.filter(pk=version.pk).update(
        profile=result.profile_json, gate_verdict=result.verdict, gate_report=result.report,
        status=status)
    version.refresh_from_db()
    return result


def engine_frames(files: dict) -> list[pd.DataFrame]:
    """The files as the engine sees them, made here apart from the gate's code."""
    frames = []
    for split in sorted(files):
        frame = pq.read_table(files[split]).to_pandas()
        frame = frame.drop(columns=["external_id", "observed_at", "label_confidence", "split", "source"])
        frame["tags"] = frame["tags"].map(lambda v: json.dumps(list(v), separators=(",", ":")))
        frames.append(frame.rename(columns={"label": LABEL_COLUMN, "feature.source": "source"}))
    return frames


@pytest.fixture
def training_set(source):
    training_set = TrainingSet.objects.create(name="fraud")
    training_set.sources.add(source)
    return training_set


@pytest.fixture
def first(training_set):
    version, files = write_version(training_set, 1, {"train": rows(800, seed=1), "test": rows(200, seed=2)})
    gated(version, files)
    return version


def test_a_first_version_with_no_active_baseline_passes_with_nothing_to_compare(training_set):
    version, files = write_version(training_set, 1, {"train": rows(500)})
    result = gate_run(version=version, files=files)
    assert (result.verdict, result.held) == ("pass", False)
    assert result.report["reasons"] == [NOTHING_TO_COMPARE] and result.report["comparisons"] == []
    assert Profile.from_json(result.profile_json).n_rows == 500


def test_a_version_whose_amount_moved_several_deviations_is_held_as_a_covariate_shift(training_set, first):
    version, files = write_version(training_set, 2, {"train": rows(800, seed=3, shift=8.0),
                                                     "test": rows(200, seed=4, shift=8.0)})
    result = gated(version, files)

    assert (result.verdict, result.held, version.status) == ("fail", True, Status.REVIEW)
    [entry] = result.report["comparisons"]
    assert (entry["against"], entry["version"], entry["baseline_id"]) == ("previous", 1, None)
    assert entry["shift"] == "covariate" and entry["verdict"] == "fail"
    assert "amount" in entry["report"]["drifted_features"]
    assert any("covariate shift" in reason and reason.startswith("against v1") for reason in result.report["reasons"])
    assert Profile.from_json(entry["profile"]).spec == Profile.from_json(first.profile).spec


def test_a_version_whose_label_priors_changed_is_held_as_a_prior_shift(training_set):
    # 5,000 rows a side: with 100 fraud rows the engine can take a large prior move for a concept one.
    gated(*write_version(training_set, 1, {"train": rows(5000, seed=1)}, row_group=2000))
    version, files = write_version(training_set, 2, {"train": rows(5000, seed=3, fraud=0.5)}, row_group=2000)
    result = gated(version, files)
    [entry] = result.report["comparisons"]
    assert result.held and entry["shift"] == "prior"
    assert ("label_drift", LABEL_COLUMN) in {(a["kind"], a["feature"]) for a in entry["report"]["anomalies"]}


def test_an_unchanged_version_passes_against_the_previous_one(training_set, first):
    version, files = write_version(training_set, 2, {"train": rows(800, seed=5), "test": rows(200, seed=6)})
    result = gated(version, files)
    assert (result.verdict, result.held, version.status) == ("pass", False, Status.PUBLISHED)
    assert result.report["comparisons"][0]["shift"] == "none"


def test_the_previous_version_is_the_latest_published_one_below_this_one(training_set, first):
    held, files = write_version(training_set, 2, {"train": rows(500, seed=7, shift=8.0)})
    gated(held, files)
    assert held.status == Status.REVIEW
    third, files = write_version(training_set, 3, {"train": rows(500, seed=8)})
    result = gate_run(version=third, files=files)
    assert [c["version"] for c in result.report["comparisons"]] == [1] and result.verdict == "pass"


def test_a_warning_holds_a_version_only_when_its_set_gates_on_warnings(training_set, first):
    # 60 rows, all from one country: drift shown by so small a sample only warns (Thresholds.min_rows is 100).
    version, files = write_version(training_set, 2, {"train": rows(60, seed=9).assign(country="DE")})
    result = gate_run(version=version, files=files)
    assert (result.verdict, result.held) == ("warn", False)
    TrainingSet.objects.filter(pk=training_set.pk).update(gate_on=GateOn.WARNINGS)
    version.refresh_from_db()
    assert gate_run(version=version, files=files).held


def test_each_source_is_compared_with_its_baseline_on_its_own_rows_only(source, training_set):
    other = collection_services.source_create(name="mobile-app", kind="app")
    training_set.sources.add(other)
    calm = profile_chunks(engine_frames_of(rows(1000, seed=11)), label=LABEL_COLUMN)
    baseline_create_from_profile(source=source, profile=calm, origin=Baseline.Origin.FILE, detail="test")
    # The mobile app's rows moved far; the checkout's did not, and only the checkout has a baseline.
    version, files = write_version(training_set, 1, {"train": pd.concat([
        rows(700, seed=12, source=source.name, prefix="c"),
        rows(300, seed=13, source="mobile-app", shift=12.0, prefix="m")])})
    result = gate_run(version=version, files=files)

    [entry] = result.report["comparisons"]
    assert (entry["against"], entry["source"]) == ("baseline", source.name)
    assert entry["rows"] == 700 and entry["verdict"] == "pass" and result.verdict == "pass"
    assert Profile.from_json(entry["profile"]).n_rows == 700


def test_a_source_whose_rows_moved_fails_against_its_baseline_while_the_other_passes(source, training_set):
    other = collection_services.source_create(name="mobile-app", kind="app")
    training_set.sources.add(other)
    calm = profile_chunks(engine_frames_of(rows(1000, seed=11)), label=LABEL_COLUMN)
    for each in (source, other):
        baseline_create_from_profile(source=each, profile=calm, origin=Baseline.Origin.FILE, detail="test")
    version, files = write_version(training_set, 1, {"train": pd.concat([
        rows(700, seed=12, source=source.name, prefix="c"),
        rows(300, seed=13, source="mobile-app", shift=12.0, prefix="m")])})
    result = gate_run(version=version, files=files)

    verdicts = {c["source"]: (c["verdict"], c["shift"], c["rows"]) for c in result.report["comparisons"]}
    assert verdicts == {source.name: ("pass", "none", 700), "mobile-app": ("fail", "covariate", 300)}
    assert result.verdict == "fail" and result.held


def test_a_source_without_rows_in_the_version_is_skipped_not_failed(source, training_set):
    other = collection_services.source_create(name="mobile-app", kind="app")
    training_set.sources.add(other)
    calm = profile_chunks(engine_frames_of(rows(1000, seed=11)), label=LABEL_COLUMN)
    baseline = baseline_create_from_profile(source=other, profile=calm, origin=Baseline.Origin.FILE, detail="t")
    version, files = write_version(training_set, 1, {"train": rows(500, source=source.name)})
    assert Baseline.objects.filter(source=source).count() == 0
    result = gate_run(version=version, files=files)
    assert result.report["comparisons"] == [] and result.report["reasons"] == [NOTHING_TO_COMPARE]
    assert result.report["skipped"] == [{"source": "mobile-app", "baseline_id": baseline.pk,
                                         "reason": "no rows of this source in the version"}]


def test_the_version_s_profile_is_the_profile_of_its_rows_made_directly(training_set):
    splits = {"train": rows(1500, seed=21, prefix="t"), "validation": rows(300, seed=22, prefix="v"),
              "test": rows(0)}
    version, files = write_version(training_set, 1, splits, row_group=400)
    result = gate_run(version=version, files=files)
    mine = Profile.from_json(result.profile_json)

    frames = engine_frames(files)
    # Under 100,000 rows the sample is every row, so the bins are those of the whole data.
    spec = spec_from_frame(pd.concat(frames, ignore_index=True), label=LABEL_COLUMN)
    direct = profile_chunks(frames, spec=spec)
    assert mine.spec == spec and mine.n_rows == direct.n_rows == 1800
    assert set(mine.features) == set(direct.features) == {"amount", "country", "source", "tags", LABEL_COLUMN}
    for name, fp in direct.features.items():
        got = mine.features[name]
        assert (got.count, got.missing) == (fp.count, fp.missing)
        assert np.array_equal(got.hist, fp.hist)
    assert mine.features["amount"].mean == pytest.approx(direct.features["amount"].mean, abs=1e-9)
    assert mine.features["amount"].m2 == pytest.approx(direct.features["amount"].m2, rel=1e-9)
    assert "tags" in mine.spec.features and '["a","b"]' in mine.spec.features["tags"].vocab


def test_the_sample_takes_every_kth_row_and_the_same_files_give_the_same_profile(training_set, monkeypatch):
    monkeypatch.setattr(gate, "SAMPLE_ROWS", 100)
    version, files = write_version(training_set, 1, {"train": rows(750, seed=31), "test": rows(250, seed=32)},
                                   row_group=90)
    result = gate_run(version=version, files=files)
    assert result.report["sample"] == {"every": 10, "rows": 100}
    assert gate_run(version=version, files=files).profile_json == result.profile_json
    # The spec is that of every 10th row over the files in split order (test, then train).
    sample = pd.concat(engine_frames(files), ignore_index=True).iloc[::10]
    assert Profile.from_json(result.profile_json).spec == spec_from_frame(sample, label=LABEL_COLUMN)
    assert Profile.from_json(result.profile_json).n_rows == 1000


def test_an_integer_label_keeps_the_same_classes_with_or_without_unlabeled_rows(training_set, tmp_path):
    frame = rows(400, seed=41)
    schema = pa.schema(META + [(n, t) for n, t, _ in FEATURES] + [("label", pa.int64()), *TAIL[1:]])
    labels = [None if i < 200 and i % 4 == 0 else i % 2 for i in range(400)]
    path = data_path(f"trainingsets/{training_set.pk}/int.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame.assign(label=pd.array(labels, dtype="Int64")), schema=schema,
                                 preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path, row_group_size=100)
    version = TrainingSetVersion.objects.create(training_set=training_set, number=1, manifest={
        "schema": [{"name": n, "feature": f} for n, _, f in FEATURES], "rows": 400})
    profile = Profile.from_json(gate_run(version=version, files={"train": path}).profile_json)
    # The first two row groups hold unlabeled rows (floats in pandas), the last two none: one set of classes.
    assert profile.spec.label_classes == ("1", "0")
    assert profile.features[LABEL_COLUMN].missing == 50 and list(profile.features[LABEL_COLUMN].hist) == [200, 150, 0]


def test_the_report_is_plain_json(training_set, first):
    version, files = write_version(training_set, 2, {"train": rows(300, seed=51, shift=30.0)})
    result = gate_run(version=version, files=files)
    text = json.dumps(result.report, allow_nan=False)
    slim = gate.manifest_report(result.report)
    assert "profile" not in slim["comparisons"][0] and slim["comparisons"][0]["report"]["verdict"] == "fail"
    assert "profile" in result.report["comparisons"][0] and len(json.dumps(slim)) < len(text)
    assert json.loads(text)["verdict"] == "fail"
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(result.report))


def test_a_comparison_s_charts_show_both_sides_per_bin_with_flagged_features_first(source, training_set, first):
    baseline = baseline_create_from_profile(source=source, profile=Profile.from_json(first.profile),
                                            origin=Baseline.Origin.TRAINING_SET, detail="fraud v1")
    version, files = write_version(training_set, 2, {"train": rows(800, seed=3, shift=8.0)})
    gated(version, files)

    previous = comparison_charts(version, 0)
    assert previous["comparison"]["against"] == "previous" and previous["run"] is None
    assert (previous["reference"], previous["subject"]) == ("v1", "v2")
    assert previous["features"][0] == ("amount", True)
    amount = previous["charts"][0]
    assert amount["feature"] == "amount" and amount["flagged"] and "wasserstein" in amount["metrics"]
    assert sum(amount["baseline"]) == pytest.approx(1.0) and sum(amount["batch"]) == pytest.approx(1.0)
    assert amount["baseline"] != amount["batch"] and len(amount["labels"]) == len(amount["batch"])

    against_baseline = comparison_charts(version, 1, features=[("country", False)])
    assert against_baseline["run"].baseline_id == baseline.pk
    assert against_baseline["run"].baseline.source_id == source.pk
    assert [c["feature"] for c in against_baseline["charts"]] == ["country"]
    assert against_baseline["reference"] == "checkout-app baseline"
    assert "profile" not in against_baseline["comparison"] and against_baseline["data_id"].endswith("-1")
    with pytest.raises(IndexError):
        comparison_charts(version, 2)


def test_once_a_version_is_its_sources_baseline_the_next_one_is_compared_with_it_too(
        source, training_set, first, django_user_model):
    staff = django_user_model.objects.create_user("admin", password="pw-12345678", is_staff=True)
    [baseline] = version_make_baseline(version_id=first.pk, user=staff)
    version, files = write_version(training_set, 2, {"train": rows(800, seed=61), "test": rows(200, seed=62)})
    result = gate_run(version=version, files=files)
    assert [(c["against"], c["version"], c["baseline_id"], c["verdict"]) for c in result.report["comparisons"]] == [
        ("previous", 1, None, "pass"), ("baseline", None, baseline.pk, "pass")]
    # Same bins on both sides: the baseline is the first version's profile.
    assert result.report["comparisons"][0]["profile"] == result.report["comparisons"][1]["profile"]


def test_a_built_version_keeps_the_profile_of_all_its_rows(built_version):
    profile = Profile.from_json(built_version.profile)
    assert profile.n_rows == built_version.manifest["rows"] == 60
    assert set(profile.features) == {"amount", "country", LABEL_COLUMN}
    assert profile.spec.label_classes == ("ok", "fraud") and list(profile.features[LABEL_COLUMN].hist) == [48, 12, 0]
    assert built_version.gate_verdict == "pass" and built_version.gate_report["reasons"] == [NOTHING_TO_COMPARE]
    files = {split: data_path(f"{built_version.folder}/{split}.parquet") for split in built_version.manifest["splits"]}
    assert gate_run(version=built_version, files=files).profile_json == built_version.profile


def engine_frames_of(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """One in-memory frame of rows() as the engine sees it (a reference profiled apart from the gate)."""
    frame = frame.drop(columns=["external_id", "observed_at", "label_confidence", "split", "source"])
    frame["tags"] = frame["tags"].map(lambda v: json.dumps(list(v), separators=(",", ":")))
    frame["country"] = frame["country"].astype("category")
    return [frame.rename(columns={"label": LABEL_COLUMN, "feature.source": "source"})]


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value
