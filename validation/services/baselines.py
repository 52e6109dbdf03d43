"""Baselines: made from a reference file, a stored profile or ingested batches; the active one; compares with it."""
import gzip
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
from django.db import transaction

from collection.columnar import ParquetCopy
from collection.models import Batch, Source
from collection.parsing import LABEL_COLUMN, PayloadParser
from collection.storage import data_path
from collection.writers import chunks
from validation.models import Baseline, PrivacyPolicy
from validation.profiling import META_COLUMNS
from validation.selectors import source_policy_get
from validation.stats import Profile, Schema, Thresholds, compare, infer_schema, iter_parquet, profile_chunks

from .audit import actor_label, audit_record

FILE_FORMATS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json", ".parquet": "parquet"}
CHUNK_ROWS = 200_000


class BaselineError(ValueError):
    """A reference that cannot become a baseline; the message says why."""


def _features_only(frame: pd.DataFrame, *, label: str | None = None) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in META_COLUMNS if c in frame.columns])
    if label and label in frame.columns and label != LABEL_COLUMN:
        frame = frame.rename(columns={label: LABEL_COLUMN})
    return frame


def _columnar_frames(paths: Iterable[Path], *, label: str | None = None) -> Iterator[pd.DataFrame]:
    for path in paths:
        for frame in iter_parquet(path):
            yield _features_only(frame, label=label)


def _record_file_as_parquet(path: Path, fmt: str, target: Path) -> None:
    """A reference in the batch formats becomes a columnar copy by the same rules as a batch,
    so that a baseline and the batches compared with it are typed alike."""
    def opener():
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")

    with opener() as stream:
        checked = PayloadParser(stream, fmt, max_json_bytes=2**31)
        for _ in checked:
            pass
    if checked.count == 0:
        raise BaselineError(f"{path.name} has no records")
    copy = ParquetCopy(target, checked.columns)
    try:
        with opener() as stream:
            for chunk in chunks(PayloadParser(stream, fmt, max_json_bytes=2**31, trusted=True), CHUNK_ROWS):
                copy.write(chunk)
    finally:
        copy.close()


def _baseline_save(*, source: Source, profile: Profile, origin: str, detail: str, name: str, created_by,
                   activate: bool) -> Baseline:
    if profile.n_rows == 0:
        raise BaselineError("the reference has no rows")
    baseline = Baseline.objects.create(
        source=source, name=name, origin=origin, origin_detail=detail[:500], profile=profile.to_json(),
        schema=infer_schema(profile).to_dict(), row_count=profile.n_rows, created_by=created_by,
    )
    audit_record(actor=actor_label(created_by), action="baseline_created", source_id=source.pk, baseline_id=baseline.pk,
                 detail=f"from {detail}, {profile.n_rows} rows")
    if activate:
        baseline_activate(baseline=baseline, by=created_by)
    return baseline


def baseline_create_from_profile(*, source: Source, profile: Profile, origin: str, detail: str, name: str = "",
                                 created_by=None, activate: bool = True) -> Baseline:
    """Keep a profile made elsewhere (a training-set version's) as a baseline of the source, without a new pass."""
    return _baseline_save(source=source, profile=profile, origin=origin, detail=detail, name=name,
                          created_by=created_by, activate=activate)


def baseline_create_from_file(*, source: Source, path: Path, label: str = "label", name: str = "",
                              created_by=None, activate: bool = True) -> Baseline:
    """Profile a reference file (the training data) once and keep it as a baseline of the source.

    CSV, NDJSON and JSON are read by the batch rules (README, "The record format"); Parquet is read
    as flat columns, with `label` naming the label column.
    """
    suffixes = [s for s in path.suffixes if s != ".gz"]
    fmt = FILE_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise BaselineError(f"cannot tell the format of {path.name}: use .csv, .ndjson, .jsonl, .json or .parquet")
    if fmt == "parquet":
        profile = profile_chunks(_columnar_frames([path], label=label), label=LABEL_COLUMN,
                                 privacy=privacy_on(source))
    else:
        with tempfile.TemporaryDirectory() as folder:
            columnar = Path(folder) / "reference.parquet"
            _record_file_as_parquet(path, fmt, columnar)
            profile = profile_chunks(_columnar_frames([columnar]), label=LABEL_COLUMN, privacy=privacy_on(source))
    return _baseline_save(source=source, profile=profile, origin=Baseline.Origin.FILE, detail=path.name,
                          name=name, created_by=created_by, activate=activate)


def baseline_create_from_batches(*, source: Source, batches: list[Batch], name: str = "", created_by=None,
                                 activate: bool = True) -> Baseline:
    """Profile chosen batches of the source, already ingested, as its baseline."""
    foreign = [b.pk for b in batches if b.source_id != source.pk]
    if foreign:
        raise BaselineError(f"batches {foreign} belong to another source")
    unusable = [b.pk for b in batches if not b.columnar]
    if unusable or not batches:
        raise BaselineError(f"batches {unusable} have no columnar copy yet" if unusable else "choose batches")
    paths = [data_path(b.columnar) for b in batches]
    profile = profile_chunks(_columnar_frames(paths), label=LABEL_COLUMN, privacy=privacy_on(source))
    return _baseline_save(source=source, profile=profile, origin=Baseline.Origin.BATCHES,
                          detail="batches " + ", ".join(str(b.pk) for b in batches), name=name,
                          created_by=created_by, activate=activate)


def baseline_activate(*, baseline: Baseline, by=None) -> Baseline:
    """Make this the source's active baseline; the one before it is kept, inactive."""
    with transaction.atomic():
        audit_record(actor=actor_label(by), action="baseline_activated", source_id=baseline.source_id,
                     baseline_id=baseline.pk)
        # Lock the source so two activations at once cannot leave two active baselines.
        Source.objects.select_for_update().get(pk=baseline.source_id)
        Baseline.objects.filter(source_id=baseline.source_id, is_active=True).exclude(pk=baseline.pk).update(
            is_active=False)
        Baseline.objects.filter(pk=baseline.pk).update(is_active=True)
    baseline.refresh_from_db()
    return baseline


def privacy_on(source: Source) -> bool:
    """Whether the source's batches and references are checked for personal data (and their profiles then keep no
    raw value of a feature found to be personal data)."""
    return source_policy_get(source=source).privacy_check != PrivacyPolicy.OFF


def baseline_compare(*, profile: Profile, baseline: Baseline, reference: Profile | None = None,
                     environment: str | None = None):
    """A profile made on the baseline's spec against the baseline, under its schema and thresholds and its source's
    privacy check (as a batch's verdict is made); `reference` saves parsing the baseline's profile again."""
    thresholds = Thresholds.from_dict(baseline.thresholds) if baseline.thresholds else None
    privacy = source_policy_get(source=baseline.source).privacy_check
    return compare(profile, reference or Profile.from_json(baseline.profile), schema=Schema.from_dict(baseline.schema),
                   thresholds=thresholds, environment=environment, privacy=privacy)
