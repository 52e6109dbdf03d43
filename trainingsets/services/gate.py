"""The gate at publish: a version's own profile, and its comparison with the previous published version of
its set and with its sources' active baselines, each profile folded in one pass over the split files."""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from collection.parsing import LABEL_COLUMN
from validation.models import Baseline
from validation.services import baseline_compare, report_json
from validation.stats import Profile, ProfileSpec, compare, infer_schema, iter_parquet, profile_frame, spec_from_frame
from validation.stats.schema import TRAINING

from ..models import GateOn, TrainingSetVersion

# The version's own bins come from a deterministic sample of at most this many rows (every k-th row).
SAMPLE_ROWS = 100_000
LABEL = "label"
SOURCE = "source"
PASS, WARN, FAIL = "pass", "warn", "fail"
_RANK = {PASS: 0, WARN: 1, FAIL: 2}
NOTHING_TO_COMPARE = "nothing to compare with: first version and no active baseline"


@dataclass
class GateResult:
    """The version's own profile (JSON), the gate's verdict and report, and whether it waits for staff."""

    profile_json: str
    verdict: str
    report: dict
    held: bool


def engine_names(version: TrainingSetVersion) -> dict[str, str]:
    """File column -> the engine's column: each feature under its own name (`feature.<name>` too), the label as
    LABEL_COLUMN, as a batch's columnar copy names them; meta columns are not in it."""
    names = {entry["name"]: entry["feature"] for entry in version.manifest.get("schema", [])
             if entry.get("feature") is not None}
    names[LABEL] = LABEL_COLUMN
    return names


def _json_text(column: pd.Series) -> pd.Series:
    """A list column as the JSON text of each list: the engine profiles values it can hash."""
    return column.map(lambda v: None if v is None else orjson.dumps(list(v)).decode(), na_action="ignore")


class _Files:
    """The split files of a version read as the engine's frames, in split-name order."""

    def __init__(self, version: TrainingSetVersion, files: dict[str, Path]):
        self.names = engine_names(version)
        self.paths = [Path(files[split]) for split in sorted(files)]

    def frames(self, path: Path, *, with_source: bool) -> Iterator[tuple[pd.DataFrame, pd.Series | None]]:
        """(engine frame, its rows' source names, or None without `with_source`) per frame of the file."""
        schema = pq.read_schema(path)
        wanted = [name for name in schema.names if name in self.names]
        lists = [name for name in wanted if pa.types.is_list(schema.field(name).type)
                 or pa.types.is_large_list(schema.field(name).type)]
        # pandas turns an integer column with nulls into floats ("1.0"): the label's classes must not
        # depend on whether a row group happens to hold an unlabeled row.
        int_label = LABEL in wanted and pa.types.is_integer(schema.field(LABEL).type)
        columns = wanted + ([SOURCE] if with_source else [])
        for frame in iter_parquet(path, columns=columns):
            # Taken off before renaming: a feature may itself be called "source" (written `feature.source`).
            sources = frame.pop(SOURCE) if with_source else None
            yield self._engine_frame(frame, lists, int_label), sources

    def empty(self) -> pd.DataFrame:
        """No rows, with the columns and types of the first file (a version with no rows still has a spec)."""
        path = self.paths[0]
        schema = pq.read_schema(path)
        wanted = [name for name in schema.names if name in self.names]
        frame = schema.empty_table().select(wanted).to_pandas()
        return self._engine_frame(frame, [], False)

    def _engine_frame(self, frame: pd.DataFrame, lists: list[str], int_label: bool) -> pd.DataFrame:
        for name in lists:
            frame[name] = _json_text(frame[name])
        if int_label:
            frame[LABEL] = frame[LABEL].astype("Int64")
        return frame.rename(columns=self.names)


def _total_rows(version: TrainingSetVersion, paths: list[Path]) -> int:
    rows = version.manifest.get("rows")
    if isinstance(rows, int):
        return rows
    return sum(pq.ParquetFile(path).metadata.num_rows for path in paths)


def sample_spec(files: _Files, total_rows: int) -> tuple[ProfileSpec, int, int]:
    """The version's own bins from every k-th row over the files (k from the total rows), so the same
    files always give the same bins; returns (spec, k, sampled rows)."""
    every = max(1, math.ceil(total_rows / SAMPLE_ROWS))
    parts, seen = [], 0
    for path in files.paths:
        for frame, _ in files.frames(path, with_source=False):
            # Rows whose index over all files is a multiple of k, wherever the frame starts.
            parts.append(frame.iloc[(-seen) % every::every])
            seen += len(frame)
    sample = pd.concat(parts, ignore_index=True) if parts else files.empty()
    return spec_from_frame(sample, label=LABEL_COLUMN), every, len(sample)


class _Target:
    """One profile being folded: on a spec, over all rows or one source's."""

    def __init__(self, spec: ProfileSpec, source: str | None = None):
        self.spec, self.source = spec, source
        self.profile: Profile | None = None

    def add(self, frame: pd.DataFrame, sources: pd.Series | None) -> None:
        if self.source is not None:
            frame = frame[(sources == self.source).to_numpy()]
            if frame.empty:
                return
        part = profile_frame(frame, spec=self.spec)
        # Left to right in file order, as profile_chunks folds: the same frames give the same profile.
        self.profile = part if self.profile is None else self.profile.merge(part)

    def result(self) -> Profile:
        return self.profile if self.profile is not None else Profile(self.spec)


def previous_version(version: TrainingSetVersion) -> TrainingSetVersion | None:
    """The set's published version with the highest number below this one's, if it has a profile."""
    return (TrainingSetVersion.objects.published()
            .filter(training_set_id=version.training_set_id, number__lt=version.number).exclude(profile="")
            .order_by("-number").first())


def _entry(*, against: str, report, profile: Profile, version: int | None = None, baseline: Baseline | None = None
           ) -> dict:
    return {
        "against": against, "version": version, "baseline_id": baseline.pk if baseline else None,
        "source": baseline.source.name if baseline else None, "verdict": report.verdict,
        "reasons": list(report.reasons), "shift": report.shift.kind, "drifted_share": report.drifted_share,
        "rows": report.n_batch, "reference_rows": report.n_baseline,
        "report": report_json(report), "profile": profile.to_json(),
    }


def _title(entry: dict) -> str:
    if entry["against"] == "previous":
        return f"against v{entry['version']}"
    return f"against {entry['source']}'s baseline {entry['baseline_id']}"


def _reasons(comparisons: list[dict]) -> list[str]:
    """Each comparison's reasons under its name, with the shift type it names."""
    reasons = []
    for entry in comparisons:
        title = _title(entry)
        reasons += [f"{title}: {reason}" for reason in entry["reasons"]]
        if entry["shift"] != "none":
            shift = entry["report"]["shift"]
            reasons.append(f"{title}: {entry['shift']} shift ({shift['explanation']})")
    return reasons


def manifest_report(report: dict) -> dict:
    """The gate report without each comparison's profile (tens of kB a feature): what the manifest keeps.
    The version's `gate_report` keeps the profiles, which its charts need."""
    return {**report, "comparisons": [{k: v for k, v in entry.items() if k != "profile"}
                                      for entry in report.get("comparisons", [])]}


def gate_run(*, version: TrainingSetVersion, files: dict[str, Path]) -> GateResult:
    """Profile a built version and compare it with the previous published version of its set and with each
    source's active baseline (that source's rows only); the worst comparison is the verdict.

    The files are read twice: once for the sample that fixes the version's own bins (label and features only),
    then once for every profile together (own, previous, each baseline's), frame by frame, so memory holds one
    frame and the running profiles. `held`: the verdict is `fail`, or `warn` on a set that gates on warnings.
    """
    training_set = version.training_set
    reader = _Files(version, files)
    own_spec, every, sampled = sample_spec(reader, _total_rows(version, reader.paths))
    own = _Target(own_spec)
    previous = previous_version(version)
    prev_profile = Profile.from_json(previous.profile) if previous else None
    against_previous = _Target(prev_profile.spec) if previous else None
    baselines = list(Baseline.objects.active().filter(source__in=training_set.sources.all())
                     .select_related("source").order_by("source__name"))
    references = {b.pk: Profile.from_json(b.profile) for b in baselines}
    per_source = {b.pk: _Target(references[b.pk].spec, b.source.name) for b in baselines}
    targets = [t for t in (own, against_previous, *per_source.values()) if t is not None]

    for path in reader.paths:
        for frame, sources in reader.frames(path, with_source=bool(per_source)):
            for target in targets:
                target.add(frame, sources)

    profile = own.result()
    comparisons, skipped = [], []
    if previous is not None:
        mine = against_previous.result()
        report = compare(mine, prev_profile, schema=infer_schema(prev_profile), environment=TRAINING)
        comparisons.append(_entry(against="previous", version=previous.number, report=report, profile=mine))
    for baseline in baselines:
        mine = per_source[baseline.pk].result()
        if mine.n_rows == 0:
            # A source that gave this version no row has nothing to be compared on.
            skipped.append({"source": baseline.source.name, "baseline_id": baseline.pk,
                            "reason": "no rows of this source in the version"})
            continue
        report = baseline_compare(profile=mine, baseline=baseline, reference=references[baseline.pk],
                                  environment=TRAINING)
        comparisons.append(_entry(against="baseline", baseline=baseline, report=report, profile=mine))

    if comparisons:
        verdict = max((entry["verdict"] for entry in comparisons), key=_RANK.__getitem__)
        reasons = _reasons(comparisons)
    else:
        verdict, reasons = PASS, [NOTHING_TO_COMPARE]
    held = verdict == FAIL or (verdict == WARN and training_set.gate_on == GateOn.WARNINGS)
    report = {"verdict": verdict, "reasons": reasons, "held": held, "gate_on": training_set.gate_on,
              "rows": profile.n_rows, "sample": {"every": every, "rows": sampled},
              "comparisons": comparisons, "skipped": skipped}
    return GateResult(profile_json=profile.to_json(), verdict=verdict, report=report, held=held)
