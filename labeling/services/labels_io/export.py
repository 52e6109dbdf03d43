"""Every individual label of a project out, as CSV (streamed) or Parquet (row groups), read in chunks of annotation ids
so that memory stays bounded whatever the size of the project."""
import csv
import io
from collections.abc import Callable, Iterator
from datetime import datetime
from datetime import timezone as dt_timezone
from typing import BinaryIO, TextIO

import orjson

from ...labels import MULTIPLE, RATING, SINGLE, TEXT
from ...models import LabelingProject
from ...selectors.labels import LABEL_COLUMNS, labels_chunks

CSV_CHUNK = 5_000  # rows per query (and per streamed piece) of a CSV export
PARQUET_ROW_GROUP = 50_000  # rows per query and per row group of a Parquet export


def label_cell(value) -> str:
    """A value as a CSV cell: texts as they are, numbers as numbers, true/false, lists (multiple choice) as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode()


def iso(moment: datetime | None) -> str | None:
    """ISO 8601, UTC as Z (as the API writes times)."""
    if moment is None:
        return None
    text = moment.astimezone(dt_timezone.utc).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def labels_csv_pieces(*, project: LabelingProject, chunk: int = CSV_CHUNK) -> Iterator[str]:
    """The project's labels as CSV text, a header and then one piece per `chunk` labels (for a streamed answer)."""
    for text, _ in _csv_pieces(project, chunk):
        yield text


def _csv_pieces(project: LabelingProject, chunk: int) -> Iterator[tuple[str, int]]:
    """(CSV text, labels in it): the header comes with the first chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for rows in labels_chunks(project=project, chunk=chunk):
        for row in rows:
            writer.writerow([label_cell(row[name]) for name in LABEL_COLUMNS])
        yield buffer.getvalue(), len(rows)
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue(), 0


def labels_write_csv(*, project: LabelingProject, out: TextIO, progress: Callable[[int], None] | None = None) -> int:
    """Write the project's labels to a text file as CSV; returns how many."""
    count = 0
    for text, rows in _csv_pieces(project, CSV_CHUNK):
        out.write(text)
        count += rows
        if progress:
            progress(rows)
    return count


class _Untyped(Exception):
    """A stored value that does not fit the project's label kind (the kind was changed after labeling)."""


def _parquet_schema(kind: str, typed: bool):
    import pyarrow as pa

    value = {SINGLE: pa.string(), TEXT: pa.string(), RATING: pa.int64(),
             MULTIPLE: pa.list_(pa.string())}.get(kind, pa.string()) if typed else pa.string()
    moment = pa.timestamp("us", tz="UTC")
    types = {"annotation_id": pa.int64(), "item_id": pa.int64(), "rater_id": pa.int64(), "rule_id": pa.int64(),
             "value": value, "consensus": value, "created_at": moment, "undone_at": moment,
             "is_gold": pa.bool_(), "correct": pa.bool_()}
    return pa.schema([(name, types.get(name, pa.string())) for name in LABEL_COLUMNS])


def _fits(kind: str, value) -> bool:
    if kind in (SINGLE, TEXT):
        return isinstance(value, str)
    if kind == RATING:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == MULTIPLE:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return False


def _label_column(values: list, kind: str, typed: bool) -> list:
    if not typed:
        return [None if v is None else orjson.dumps(v).decode() for v in values]
    for v in values:
        if v is not None and not _fits(kind, v):
            raise _Untyped(v)
    return values


def labels_write_parquet(*, project: LabelingProject, out: BinaryIO,
                         progress: Callable[[int], None] | None = None) -> int:
    """Write the project's labels to a binary file as Parquet, a row group per 50,000 labels; returns how many.

    `value` and `consensus` are typed by the project's label kind (text, whole number, list of texts).
    Should a stored value not fit the kind (it was changed after labeling), the file is written again
    with both columns as JSON text, so that nothing is lost or coerced.
    """
    start = out.tell()
    try:
        return _write_parquet(project, out, typed=True, progress=progress)
    except _Untyped:
        out.seek(start)
        out.truncate()
        return _write_parquet(project, out, typed=False, progress=progress)


def _write_parquet(project, out, *, typed: bool, progress) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = project.label_kind
    schema = _parquet_schema(kind, typed)
    metadata = {b"sieve.project": str(project.pk).encode(), b"sieve.label_kind": kind.encode(),
                b"sieve.values": b"typed" if typed else b"json"}
    schema = schema.with_metadata(metadata)
    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for rows in labels_chunks(project=project, chunk=PARQUET_ROW_GROUP):
            columns = {name: [row[name] for row in rows] for name in LABEL_COLUMNS}
            for name in ("value", "consensus"):
                columns[name] = _label_column(columns[name], kind, typed)
            writer.write_table(pa.Table.from_pydict(columns, schema=schema), row_group_size=PARQUET_ROW_GROUP)
            count += len(rows)
            if progress:
                progress(len(rows))
        if count == 0:
            writer.write_table(schema.empty_table())
    return count
