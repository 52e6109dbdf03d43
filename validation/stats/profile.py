"""Mergeable dataset profiles: from a frame, a stream of chunks or a Parquet file."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .categorical import CategoricalProfile, profile_categorical
from .columns import label_codes, numeric_values
from .features import FeatureProfile, class_grouping
from .numeric import NumericProfile, profile_numeric
from .spec import CATEGORICAL, NUMERIC, FeatureSpec, ProfileSpec, kind_of, spec_from_frame

PROFILE_VERSION = 1
_KINDS = {NUMERIC: NumericProfile, CATEGORICAL: CategoricalProfile}

# Parquet is read this many rows at a time: ~0.2 GB of decoded frame for 20 features.
PARQUET_BATCH_ROWS = 500_000
# Batches decoded ahead of the one being profiled; each costs ~0.1 GB for 20 features.
PARQUET_READ_AHEAD = 1


@dataclass
class Profile:
    """Per-feature statistics of a dataset, binned by `spec`; merging adds datasets together."""

    spec: ProfileSpec
    n_rows: int = 0
    features: dict[str, FeatureProfile] = field(default_factory=dict)

    @property
    def has_labels(self) -> bool:
        """True when the batch carries labels (a label column with at least one value), so label and
        concept drift can be computed. A label column with no value at all is no label."""
        label = self.spec.label
        return label is not None and label in self.features and self.features[label].missing < self.n_rows

    def merge(self, other: Profile) -> Profile:
        """Profile of the concatenation; a feature absent from one side counts as missing there."""
        if self.spec != other.spec:
            raise ValueError("profiles with different specs cannot be merged")
        names = list(self.features) + [n for n in other.features if n not in self.features]
        merged = {}
        for name in names:
            a, b = self.features.get(name), other.features.get(name)
            if a is None:
                merged[name] = _absent_rows(b, self.n_rows)
            elif b is None:
                merged[name] = _absent_rows(a, other.n_rows)
            else:
                merged[name] = a.merge(b)
        return Profile(self.spec, self.n_rows + other.n_rows, merged)

    def to_dict(self) -> dict:
        """Plain JSON-ready form with a "version" field."""
        return {
            "version": PROFILE_VERSION,
            "spec": self.spec.to_dict(),
            "n_rows": self.n_rows,
            "features": {name: fp.to_dict() for name, fp in self.features.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> Profile:
        """Inverse of to_dict; refuses versions it does not know."""
        if d.get("version") != PROFILE_VERSION:
            raise ValueError(f"unsupported profile version {d.get('version')!r}")
        features = {name: _KINDS[fd["kind"]].from_dict(fd) for name, fd in d["features"].items()}
        return cls(ProfileSpec.from_dict(d["spec"]), d["n_rows"], features)

    def to_json(self) -> str:
        """Versioned JSON text (floats keep all their digits; sketches are base64)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Profile:
        """Inverse of to_json."""
        return cls.from_dict(json.loads(text))


def _absent_rows(fp: FeatureProfile, n: int) -> FeatureProfile:
    """The same profile with n more rows where the column did not exist (all missing)."""
    return dataclasses.replace(fp, count=fp.count + n, missing=fp.missing + n)


def _feature_spec(spec: ProfileSpec, name: str, col: pd.Series) -> FeatureSpec:
    """The baseline's binning, unless the data's type differs (profiled as it is, to report it)."""
    if name == spec.label:
        return spec.feature(name) or FeatureSpec(CATEGORICAL, vocab=spec.label_classes)
    data_kind = kind_of(col)
    fs = spec.feature(name)
    if fs is None:
        return FeatureSpec(data_kind)
    if fs.kind != data_kind and not col.isna().all():
        return FeatureSpec(data_kind)
    return fs


def profile_frame(
    df: pd.DataFrame,
    *,
    spec: ProfileSpec | None = None,
    label: str | None = None,
    workers: int | None = None,
    privacy: bool = True,
) -> Profile:
    """Profile one frame; without a spec the frame is the baseline and fixes its own binning.

    Columns are profiled on `workers` threads (default: one per CPU, at most 4); numpy sorts
    and Arrow hashing release the GIL, so on two cores this is close to twice as fast.
    `privacy` (the source's choice, never the spec's): check text features for personal data
    (validation/stats/privacy.py); off, nothing is checked and raw values are kept as before.
    """
    if spec is None:
        spec = spec_from_frame(df, label=label, privacy=privacy)
    y = grouping = None
    if spec.label is not None and spec.label in df.columns:
        y = label_codes(df[spec.label], spec.label_classes)
        grouping = class_grouping(y, spec.n_label_columns)

    def one(name) -> FeatureProfile:
        """Profile one column on the baseline's binning."""
        col = df[name]
        fs = _feature_spec(spec, name, col)
        if fs.kind == NUMERIC:
            return profile_numeric(numeric_values(col), fs.edges, spec, y, grouping)
        if name == spec.label:
            return profile_categorical(col, fs.vocab, spec, privacy=False)
        return profile_categorical(col, fs.vocab, spec, y, privacy=privacy)

    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(df.columns) > 1:
        with ThreadPoolExecutor(workers) as pool:
            profiles = list(pool.map(one, df.columns))
    else:
        profiles = [one(name) for name in df.columns]
    return Profile(spec, len(df), dict(zip(df.columns, profiles)))


def profile_chunks(
    chunks: Iterable[pd.DataFrame],
    *,
    spec: ProfileSpec | None = None,
    label: str | None = None,
    workers: int | None = None,
    privacy: bool = True,
) -> Profile:
    """Profile a stream of frames one at a time; without a spec the first chunk fixes the bins."""
    total: Profile | None = None
    for chunk in chunks:
        if spec is None:
            spec = spec_from_frame(chunk, label=label, privacy=privacy)
        # Fold as we go so memory holds one chunk and one running profile, never the stream.
        part = profile_frame(chunk, spec=spec, workers=workers, privacy=privacy)
        total = part if total is None else total.merge(part)
    if total is None:
        if spec is None:
            raise ValueError("no chunks and no spec")
        return Profile(spec)
    return total


def _to_pandas(table) -> pd.DataFrame:
    # One block per column, and the Arrow buffers freed as they convert: no 2-D copy.
    return table.to_pandas(split_blocks=True, self_destruct=True)


def iter_parquet(
    path: str | Path,
    *,
    batch_rows: int = PARQUET_BATCH_ROWS,
    row_groups: Iterable[int] | None = None,
    columns: list[str] | None = None,
):
    """Yield a Parquet file as pandas frames of at most batch_rows, strings as categoricals.

    `row_groups` (default all, in file order) and `columns` (default all) select a part; the frames
    of a row group are the same whichever part it is read with, so profiles of parts fold into the
    profile of the whole. The next row group is decoded on a background thread while the caller
    profiles the current one (Arrow releases the GIL); at most PARQUET_READ_AHEAD + 1 batches are
    in memory.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    # Dictionary-encoded strings become pandas categoricals: codes without decoding strings.
    with pq.ParquetFile(path, read_dictionary=strings) as pf, ThreadPoolExecutor(1) as pool:

        def reads():
            """One deferred read per batch, in file order."""
            for group in range(pf.num_row_groups) if row_groups is None else row_groups:
                if pf.metadata.row_group(group).num_rows <= batch_rows:
                    # A whole row group at once is several times faster than iter_batches.
                    yield lambda g=group: _to_pandas(pf.read_row_group(g, columns=columns))
                    continue
                batches = pf.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns)
                for batch in batches:
                    yield lambda b=batch: _to_pandas(pa.Table.from_batches([b]))

        pending: deque = deque()
        for read in reads():
            pending.append(pool.submit(read))
            if len(pending) > PARQUET_READ_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def profile_parquet(
    path: str | Path,
    *,
    spec: ProfileSpec | None = None,
    label: str | None = None,
    batch_rows: int = PARQUET_BATCH_ROWS,
    workers: int | None = None,
    privacy: bool = True,
) -> Profile:
    """Profile a Parquet file batch by batch so memory stays bounded by one batch."""
    chunks = iter_parquet(path, batch_rows=batch_rows)
    return profile_chunks(chunks, spec=spec, label=label, workers=workers, privacy=privacy)
