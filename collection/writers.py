"""Write parsed records of one batch: rows into the database (COPY on PostgreSQL) and a Parquet copy.

Both writers take the records in chunks, so a batch of any size is written in bounded memory. The
revision rule (README, "A record sent again") is applied per chunk: the newest batch's row is the
current revision of an external id; older current rows of the same source are marked superseded.
"""
from collections.abc import Sequence

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from django.db import connection

from .models import Record
from .parsing import LABEL_COLUMN, ParsedRecord

ARROW_TYPES = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "null": pa.null(),
    "list": pa.list_(pa.string()),
    "mixed": pa.string(),
}
META_COLUMNS = [
    ("__line", pa.int32()),
    ("__external_id", pa.string()),
    ("__observed_at", pa.timestamp("us", tz="UTC")),
]
RECORD_TABLE = Record._meta.db_table
_dumps = orjson.dumps


def _as_text(value):
    """How a value of a column with mixed types is kept: strings as they are, the rest as JSON."""
    if value is None or isinstance(value, str):
        return value
    return _dumps(value).decode()


class ParquetCopy:
    """The columnar copy of a batch, one row group per chunk, with a schema fixed from the column types."""

    def __init__(self, path, columns: dict[str, str]):
        self.label_type = ARROW_TYPES[columns.get(LABEL_COLUMN, "null")]
        features = {name: kind for name, kind in columns.items() if name != LABEL_COLUMN}
        self.mixed = [name for name, kind in features.items() if kind == "mixed"]
        self.feature_schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in features.items()])
        schema = pa.schema(META_COLUMNS + [(LABEL_COLUMN, self.label_type)] + list(self.feature_schema))
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")

    def write(self, chunk: Sequence[ParsedRecord]) -> None:
        rows = [r.features for r in chunk]
        # Column by column: one list per feature converts far faster than a table from row dicts.
        features = []
        for field in self.feature_schema:
            values = [row.get(field.name) for row in rows]
            if field.name in self.mixed:
                values = [_as_text(v) for v in values]
            features.append(pa.array(values, field.type))
        label = [r.label for r in chunk]
        if pa.types.is_string(self.label_type):
            label = [_as_text(v) for v in label]
        meta = [
            pa.array([r.line for r in chunk], pa.int32()),
            pa.array([r.external_id for r in chunk], pa.string()),
            pa.array([r.observed_at for r in chunk], pa.timestamp("us", tz="UTC")),
            pa.array(label, self.label_type),
        ]
        table = pa.Table.from_arrays(meta + features, schema=self.writer.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()


def _current_revisions(source_id: int, ids: list[str]) -> list[tuple[str, int]]:
    """(external id, batch id) of the current rows among `ids`, for one source."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT external_id, batch_id FROM {RECORD_TABLE} "
                "WHERE source_id = %s AND is_current AND external_id = ANY(%s)",
                [source_id, ids],
            )
            return cursor.fetchall()
    found = []
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        found += Record.objects.current().filter(source_id=source_id, external_id__in=part).values_list(
            "external_id", "batch_id"
        )
    return found


class RecordRows:
    """Writes a batch's rows to the record table, keeping one current revision per external id."""

    def __init__(self, *, batch_id: int, source_id: int):
        self.batch_id = batch_id
        self.source_id = source_id
        self.count = 0
        if connection.vendor == "postgresql":
            # Two batches of one source ingesting at once would race to mark the current revision.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [7041, source_id])
        # Under that lock nobody else adds current rows: a source with none needs no revision lookups
        # (ids are unique within the batch, so this batch's own rows never collide).
        self.revisions_possible = Record.objects.current().filter(source_id=source_id).exists()

    def write(self, chunk: Sequence[ParsedRecord]) -> None:
        newer, older = set(), []
        revisions = _current_revisions(self.source_id, [r.external_id for r in chunk]) if self.revisions_possible else ()
        for external_id, batch_id in revisions:
            if batch_id > self.batch_id:
                newer.add(external_id)  # a later batch already ingested: it stays current
            else:
                older.append(external_id)
        if older:
            Record.objects.filter(
                source_id=self.source_id, is_current=True, batch_id__lt=self.batch_id, external_id__in=older
            ).update(is_current=False)
        if connection.vendor == "postgresql":
            self._copy(chunk, newer)
        else:
            Record.objects.bulk_create(
                [
                    Record(
                        batch_id=self.batch_id, source_id=self.source_id, line=r.line, external_id=r.external_id,
                        features=r.features, observed_at=r.observed_at, label=r.label,
                        is_current=r.external_id not in newer,
                    )
                    for r in chunk
                ],
                batch_size=2000,
            )
        self.count += len(chunk)

    def _copy(self, chunk: Sequence[ParsedRecord], newer: set) -> None:
        batch_id, source_id = self.batch_id, self.source_id
        columns = "batch_id, source_id, line, external_id, features, observed_at, label, is_current"
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {RECORD_TABLE} ({columns}) FROM STDIN") as copy:
                write_row = copy.write_row
                for r in chunk:
                    label = r.label
                    write_row((
                        batch_id, source_id, r.line, r.external_id, _dumps(r.features).decode(), r.observed_at,
                        None if label is None else _dumps(label).decode(), r.external_id not in newer,
                    ))
