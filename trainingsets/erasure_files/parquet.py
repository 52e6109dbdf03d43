"""Dropping an erased record's rows from a batch's Parquet copy, and finding it in a version's lineage."""
from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .replace import replacing

EXTERNAL_ID = "__external_id"  # the id column of a batch's Parquet copy (collection.columnar)
Matches = Callable[[str], bool]


@dataclass
class ParquetRewritten:
    rows: int = 0            # rows before
    rows_removed: int = 0
    row_groups: int = 0      # row groups after (a group left without rows is dropped)
    bytes_out: int = 0
    seconds: float = 0.0
    rewritten: bool = False

    def as_dict(self) -> dict:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 4)
        return out


def drop_parquet_rows(path: Path, *, external_ids: Iterable[str] | None = None, matches: Matches | None = None,
                      column: str = EXTERNAL_ID) -> ParquetRewritten:
    """Rewrite a Parquet file without the rows whose `column` is one of `external_ids` (or, when the ids are
    not known, whose value `matches`), one row group at a time; left as it is when no row matches.

    The schema (with its metadata), the compression and the row-group boundaries are kept; a group that
    loses every row is left out.
    """
    started = time.perf_counter()
    result = ParquetRewritten()
    ids = None if external_ids is None else pa.array(sorted(set(external_ids)), pa.string())
    with pq.ParquetFile(path) as source:
        meta = source.metadata
        result.rows = meta.num_rows
        doomed: dict[int, pa.Array] = {}  # row group -> which of its rows go; found reading the id column alone
        for index in range(meta.num_row_groups):
            values = source.read_row_group(index, columns=[column]).column(0)
            if ids is not None:
                hit = pc.fill_null(pc.is_in(values, value_set=ids), False)
            else:
                hit = pa.array([v is not None and matches(v) for v in values.to_pylist()], pa.bool_())
            if pc.any(hit).as_py():
                doomed[index] = hit
        if not doomed:
            result.row_groups = meta.num_row_groups
        else:
            compression = meta.row_group(0).column(0).compression.lower()
            with replacing(path) as (temp, commit):
                with pq.ParquetWriter(temp, source.schema_arrow,
                                      compression="none" if compression == "uncompressed" else compression) as writer:
                    for index in range(meta.num_row_groups):
                        table = source.read_row_group(index)
                        if index in doomed:
                            before = table.num_rows
                            table = table.filter(pc.invert(doomed[index]))
                            result.rows_removed += before - table.num_rows
                        if table.num_rows:
                            writer.write_table(table, row_group_size=table.num_rows)
                            result.row_groups += 1
                commit()
            result.rewritten = True
    result.bytes_out = path.stat().st_size
    result.seconds = time.perf_counter() - started
    return result


# --- versions' lineage


def lineage_holds_record(path: Path, *, source_id: int, external_ids: Iterable[str] | None = None,
                         matches: Matches | None = None) -> bool:
    """Whether a version's lineage.parquet has a row of this record: by its external id (two columns read,
    filtered in Arrow), or, when the id is not known, by `matches` on each external id of the source."""
    if external_ids is not None:
        ids = sorted(set(external_ids))
        if not ids:
            return False
        table = pq.read_table(path, columns=["source_id", "external_id"],
                              filters=[("source_id", "=", source_id), ("external_id", "in", ids)])
        return table.num_rows > 0
    table = pq.read_table(path, columns=["external_id"], filters=[("source_id", "=", source_id)])
    return any(v is not None and matches(v) for v in table.column(0).to_pylist())


def lineage_holds_items(path: Path, *, item_ids: Collection[int], records: Collection[tuple[int, str]] = (),
                        origin: str = "feedback") -> bool:
    """Whether a version's lineage has a row labeled through one of these queue items, or a row of one of
    `records` ((source id, external id) pairs) whose label came from `origin`."""
    clauses = []
    if item_ids:
        clauses.append([("item_id", "in", sorted(item_ids))])
    if records:
        clauses.append([("external_id", "in", sorted({e for _, e in records})), ("label_origin", "=", origin)])
    if not clauses:
        return False
    table = pq.read_table(path, columns=["source_id", "external_id", "item_id", "label_origin"], filters=clauses)
    wanted_items, wanted_records = set(item_ids), set(records)
    columns = (table.column(name).to_pylist() for name in ("source_id", "external_id", "item_id", "label_origin"))
    return any(item_id in wanted_items or (origin_ == origin and (source_id, external_id) in wanted_records)
               for source_id, external_id, item_id, origin_ in zip(*columns))


def value_counts(path: Path, wanted: dict[str, set[str]]) -> dict[tuple[str, str], int]:
    """How many rows of a batch's Parquet copy hold each (feature, text value): only those columns are read.
    A value in a column that is not text (or a list of text) counts 0."""
    counts = {(name, value): 0 for name, values in wanted.items() for value in values}
    with pq.ParquetFile(path) as source:
        present = [name for name in wanted if name in source.schema_arrow.names]
        if not present:
            return counts
        for index in range(source.num_row_groups):
            table = source.read_row_group(index, columns=present)
            for name in present:
                column = table.column(name)
                if pa.types.is_list(column.type):
                    column = pc.list_flatten(column)
                if not pa.types.is_string(column.type):
                    continue
                for value in wanted[name]:
                    counts[(name, value)] += pc.sum(pc.equal(column, value)).as_py() or 0
    return counts
