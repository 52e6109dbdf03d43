"""CSV and JSON-lines copies of a split's Parquet file, row group by row group (bounded memory).

Both are derived from the Parquet file alone, so the same file always gives the same bytes. CSV has
no lists: a list column is written as its JSON text; timestamps are ISO 8601 in UTC.
"""
from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv", "jsonl")


def _csv_ready(table: pa.Table) -> pa.Table:
    columns = []
    for column, field in zip(table.columns, table.schema):
        if pa.types.is_list(field.type):
            column = pa.array([None if v is None else orjson.dumps(v).decode() for v in column.to_pylist()],
                              pa.string())
        elif pa.types.is_timestamp(field.type):
            column = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def write_csv(parquet: Path, target: Path) -> None:
    source = pq.ParquetFile(parquet)
    schema = _csv_ready(source.schema_arrow.empty_table()).schema
    with pa_csv.CSVWriter(target, schema) as writer:
        for group in range(source.num_row_groups):
            writer.write_table(_csv_ready(source.read_row_group(group)))


def write_jsonl(parquet: Path, target: Path) -> None:
    source = pq.ParquetFile(parquet)
    with open(target, "wb") as out:
        for group in range(source.num_row_groups):
            for row in source.read_row_group(group).to_pylist():
                out.write(orjson.dumps(row, option=orjson.OPT_UTC_Z))
                out.write(b"\n")


WRITERS = {"csv": write_csv, "jsonl": write_jsonl}
