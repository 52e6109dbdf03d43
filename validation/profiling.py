"""Profiling a batch's columnar copy on its baseline's bins: whole, or in chunks of row groups that
workers profile apart and one worker folds, with process-feedback corrections as labels.

Both ways profile the same frames (a row group, or a slice of a large one, as `iter_parquet` reads
it) and fold their profiles left to right in file order, so a chunked batch gets exactly the
profile, and so the report, that one worker would give it.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq

from collection.models import Batch, FeedbackEvent
from collection.parsing import LABEL_COLUMN

from .stats import Profile, ProfileSpec, iter_parquet, profile_frame

EXTERNAL_ID = "__external_id"
# Columns of a columnar copy that describe the record rather than the data.
META_COLUMNS = (EXTERNAL_ID, "__observed_at")


def feedback_labels(batch: Batch) -> dict[str, object]:
    """The label each record of the batch gets from process feedback: the value of its latest
    correction (by occurred_at). One query; corrections without a value are not labels."""
    rows = (FeedbackEvent.objects
            .filter(source_id=batch.source_id, signal=FeedbackEvent.Signal.CORRECTION, record__batch_id=batch.pk)
            .order_by("occurred_at", "id").values_list("external_id", "value"))
    labels: dict[str, object] = {}
    for external_id, value in rows:
        if value is not None:
            labels[external_id] = value
    return labels


@dataclass
class LabelCount:
    """How many rows took their label from a correction, and how many of those already had one."""

    applied: int = 0
    replaced: int = 0

    def add(self, other: LabelCount) -> LabelCount:
        return LabelCount(self.applied + other.applied, self.replaced + other.replaced)

    def to_dict(self) -> dict:
        return asdict(self)


class Corrections:
    """Corrections by external id, applied to the label column of each frame before it is profiled.

    A correction wins over the label the record was sent with: it is the process's ground truth.
    """

    def __init__(self, labels: dict[str, object]):
        self.ids = pd.Index(list(labels), dtype=object)
        self.values = list(labels.values())
        self.count = LabelCount()

    def __bool__(self) -> bool:
        return len(self.ids) > 0

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        ids = frame.pop(EXTERNAL_ID)
        where = self.ids.get_indexer(ids.astype(object))
        hit = where >= 0
        if not hit.any():
            return frame
        old = frame[LABEL_COLUMN] if LABEL_COLUMN in frame.columns else pd.Series(None, index=frame.index,
                                                                                   dtype=object)
        text = isinstance(old.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(old.dtype)
        new = [self.values[i] for i in where[hit]]
        if text:
            # A text label column keeps other JSON values as their JSON text, as ingest writes them.
            new = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in new]
        labels = old.astype(object).to_numpy(copy=True)
        present = ~(pd.isna(labels[hit]) | (labels[hit] == ""))
        labels[hit] = np.asarray(new + [None], dtype=object)[:-1]
        frame[LABEL_COLUMN] = labels
        self.count = self.count.add(LabelCount(int(hit.sum()), int(present.sum())))
        return frame


def row_group_rows(path: Path) -> list[int]:
    """Rows per row group of a Parquet file, from its footer."""
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def plan_chunks(group_rows: list[int], chunk_rows: int) -> list[list[int]]:
    """Split row groups, in order, into contiguous chunks of about chunk_rows rows each.

    Chunks follow row-group boundaries, so a chunk never shares a row group (and a frame) with
    another; a file with fewer row groups than that gives fewer, larger chunks.
    """
    total = sum(group_rows)
    wanted = max(1, min(len(group_rows), -(-total // chunk_rows))) if chunk_rows > 0 else 1
    chunks: list[list[int]] = [[]]
    done = 0
    for group, rows in enumerate(group_rows):
        # Cut where the rows so far pass the next equal share, keeping the chunks balanced.
        if chunks[-1] and done >= total * len(chunks) / wanted:
            chunks.append([])
        chunks[-1].append(group)
        done += rows
    return chunks


def _columns(path: Path, corrections: Corrections | None) -> list[str]:
    names = pq.read_schema(path).names
    skip = {"__observed_at"} if corrections else set(META_COLUMNS)
    return [name for name in names if name not in skip]


def frame_profiles(path: Path, spec: ProfileSpec, *, row_groups: Iterable[int] | None = None,
                   corrections: Corrections | None = None, privacy: bool = True) -> Iterator[Profile]:
    """The profile of each frame of the file (or of the chosen row groups), in file order; `privacy`: check the
    text features for personal data (off for a source whose privacy check is off)."""
    for frame in iter_parquet(path, row_groups=row_groups, columns=_columns(path, corrections)):
        if corrections:
            frame = corrections.apply(frame)
        yield profile_frame(frame, spec=spec, privacy=privacy)


def fold(profiles: Iterable[Profile], spec: ProfileSpec) -> Profile:
    """Merge profiles left to right, as profile_chunks does, so the same frames give the same profile."""
    total: Profile | None = None
    for part in profiles:
        total = part if total is None else total.merge(part)
    return total if total is not None else Profile(spec)


def write_profiles(path: Path, profiles: Iterable[Profile]) -> None:
    """One profile JSON a line; written beside, then renamed, so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w") as out:
        for profile in profiles:
            out.write(profile.to_json())
            out.write("\n")
    partial.replace(path)


def read_profiles(path: Path) -> Iterator[Profile]:
    """The profiles write_profiles wrote, in order."""
    with open(path) as lines:
        for line in lines:
            yield Profile.from_json(line)
