"""The files of a version: one Parquet file per split in row groups, the lineage file beside them,
and the counts the manifest reports, gathered as rows go by."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .columns import VersionSchema

ROW_GROUP_ROWS = 128_000
LINEAGE_SCHEMA = pa.schema([
    ("source_id", pa.int64()), ("external_id", pa.string()), ("split", pa.string()), ("row", pa.int64()),
    ("record_id", pa.int64()), ("batch_id", pa.int64()), ("item_id", pa.int64()), ("project_id", pa.int64()),
    ("label_origin", pa.string()), ("consensus_run_id", pa.int64()), ("label", pa.string()),
    ("label_confidence", pa.float64()),
])
LINEAGE_FILE = "lineage.parquet"


@dataclass
class SplitCounts:
    rows: int = 0
    unlabeled: int = 0
    labels: Counter = field(default_factory=Counter)
    origins: Counter = field(default_factory=Counter)

    def add(self, text: str | None, origin: str) -> None:
        """Count one row's label (JSON text, None when unlabeled) and where it came from."""
        self.origins[origin] += 1
        if text is None:
            self.unlabeled += 1
        else:
            self.labels[text] += 1

    def to_dict(self) -> dict:
        return {"rows": self.rows, "unlabeled": self.unlabeled,
                "labels": dict(sorted(self.labels.items())), "origins": dict(sorted(self.origins.items()))}


def _buffered_rows(tables: list[pa.Table]) -> int:
    return sum(t.num_rows for t in tables)


class VersionWriter:
    """Writes rows split by split; a split's rows go out in row groups of about ROW_GROUP_ROWS."""

    def __init__(self, folder: Path, schema: VersionSchema, split_names: list[str], *,
                 row_group_rows: int = ROW_GROUP_ROWS):
        self.folder, self.names, self.row_group_rows = folder, split_names, row_group_rows
        self.arrow = schema.arrow
        self.writers = {name: pq.ParquetWriter(folder / f"{name}.parquet", self.arrow) for name in split_names}
        self.lineage = pq.ParquetWriter(folder / LINEAGE_FILE, LINEAGE_SCHEMA)
        self.pending: dict[str, list[pa.Table]] = {name: [] for name in split_names}
        self.lineage_pending: list[pa.Table] = []
        self.counts = {name: SplitCounts() for name in split_names}

    def add(self, rows: pa.Table, lineage: dict[str, list | np.ndarray], split: np.ndarray) -> None:
        """Rows of the output schema, their lineage columns (without split and row) and split indexes."""
        lineage_split = np.empty(len(split), dtype=object)
        positions = np.empty(len(split), dtype=np.int64)
        for index, name in enumerate(self.names):
            mask = split == index
            count = int(mask.sum())
            if not count:
                continue
            counts = self.counts[name]
            positions[mask] = np.arange(counts.rows, counts.rows + count)
            lineage_split[mask] = name
            counts.rows += count
            self.pending[name].append(rows.filter(pa.array(mask)))
            if _buffered_rows(self.pending[name]) >= self.row_group_rows:
                self._flush(name)
        columns = dict(lineage, split=lineage_split.tolist(), row=positions)
        self.lineage_pending.append(pa.table({f.name: pa.array(columns[f.name], f.type) for f in LINEAGE_SCHEMA},
                                             schema=LINEAGE_SCHEMA))
        if _buffered_rows(self.lineage_pending) >= self.row_group_rows:
            self._flush_lineage()

    def count(self, split: np.ndarray, texts: list, origins: list) -> None:
        for index, text, origin in zip(split.tolist(), texts, origins):
            self.counts[self.names[index]].add(text, origin)

    def _flush(self, name: str) -> None:
        tables = self.pending[name]
        if tables:
            self.writers[name].write_table(pa.concat_tables(tables).combine_chunks(),
                                           row_group_size=self.row_group_rows)
            self.pending[name] = []

    def _flush_lineage(self) -> None:
        if self.lineage_pending:
            self.lineage.write_table(pa.concat_tables(self.lineage_pending).combine_chunks(),
                                     row_group_size=self.row_group_rows)
            self.lineage_pending = []

    def close(self) -> None:
        for name in self.names:
            self._flush(name)
            self.writers[name].close()
        self._flush_lineage()
        self.lineage.close()

    def abort(self) -> None:
        for writer in [*self.writers.values(), self.lineage]:
            try:
                writer.close()
            except Exception:  # the folder is removed next; a writer that cannot close leaves nothing to keep
                pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def file_entries(folder: Path, names: list[str], rows: dict[str, int]) -> dict:
    """{file name: {sha256, bytes, rows}} for the version's data files."""
    return {name: {"sha256": sha256_of(folder / name), "bytes": (folder / name).stat().st_size,
                   "rows": rows[name.rsplit(".", 1)[0]]} for name in sorted(names)}


def content_sha256(files: dict) -> str:
    """The SHA-256 of what `sha256sum` prints for the files, in name order: one hash proves them all."""
    text = "".join(f"{entry['sha256']}  {name}\n" for name, entry in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()
