"""The columnar (Parquet) copy of a batch, which validation and exports read instead of the payload.

Columns: `__external_id`, `__observed_at`, `__label`, then one per feature, typed from the column
types seen at upload. An NDJSON payload is converted by Arrow's own JSON reader on a thread of its
own, which runs in C++ without Python's lock, beside the record COPY; other payloads, and columns
whose values mix types (kept as text), are built from the parsed records.
"""
import logging
import threading
from collections.abc import Sequence

import orjson
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from .parsing import LABEL_COLUMN, ParsedRecord

log = logging.getLogger(__name__)

ARROW_TYPES = {
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "null": pa.null(),
    "list": pa.list_(pa.string()),
    "mixed": pa.string(),
}
TIMESTAMP = pa.timestamp("us", tz="UTC")
_dumps = orjson.dumps


def _as_text(value):
    """How a value of a column with mixed types is kept: strings as they are, the rest as JSON."""
    if value is None or isinstance(value, str):
        return value
    return _dumps(value).decode()


def _schemas(columns: dict[str, str]) -> tuple[pa.Schema, pa.Schema]:
    """(the Parquet file's schema, the features' schema) for a batch's column types."""
    features = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in columns.items() if name != LABEL_COLUMN])
    label = ARROW_TYPES[columns.get(LABEL_COLUMN, "null")]
    meta = [("__external_id", pa.string()), ("__observed_at", TIMESTAMP), (LABEL_COLUMN, label)]
    return pa.schema(meta + list(features)), features


class ParquetCopy:
    """Built from parsed records, one row group per chunk."""

    def __init__(self, path, columns: dict[str, str]):
        schema, self.feature_schema = _schemas(columns)
        self.mixed = {name for name, kind in columns.items() if kind == "mixed"}
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
        label_type = self.writer.schema.field(LABEL_COLUMN).type
        label = [r.label for r in chunk]
        if pa.types.is_string(label_type):
            label = [_as_text(v) for v in label]
        meta = [
            pa.array([r.external_id for r in chunk], pa.string()),
            pa.array([r.observed_at for r in chunk], TIMESTAMP),
            pa.array(label, label_type),
        ]
        self.writer.write_table(pa.Table.from_arrays(meta + features, schema=self.writer.schema))

    def close(self) -> None:
        self.writer.close()


class NdjsonParquetCopy(threading.Thread):
    """Converts an NDJSON payload with Arrow's JSON reader, in the background; check `error` after join()."""

    def __init__(self, payload_path, *, gzipped: bool, target, columns: dict[str, str], chunk_rows: int):
        super().__init__(name="parquet-copy", daemon=True)
        self.payload_path, self.gzipped, self.target = payload_path, gzipped, target
        self.schema, features = _schemas(columns)
        self.read_schema = pa.schema([("external_id", pa.string()), ("features", pa.struct(features)),
                                      ("observed_at", TIMESTAMP), ("label", self.schema.field(LABEL_COLUMN).type)])
        self.chunk_rows = chunk_rows
        self.rows = 0
        self.error: Exception | None = None
        self.stopping = threading.Event()

    @classmethod
    def supports(cls, columns: dict[str, str]) -> bool:
        """Arrow's reader cannot turn numbers into text, so mixed columns go the other way."""
        return "mixed" not in columns.values()

    def run(self) -> None:
        try:
            self._convert()
        except Exception as exc:  # reported to the ingest, which then builds the copy from the records
            self.error = exc

    def _convert(self) -> None:
        source = pa.input_stream(str(self.payload_path), compression="gzip" if self.gzipped else None)
        reader = pa_json.open_json(
            source, read_options=pa_json.ReadOptions(block_size=8 << 20),
            parse_options=pa_json.ParseOptions(explicit_schema=self.read_schema, unexpected_field_behavior="error"))
        pending = []
        with pq.ParquetWriter(self.target, self.schema, compression="zstd") as writer:
            for block in reader:
                if self.stopping.is_set():
                    return
                meta = [block.column("external_id"), block.column("observed_at"), block.column("label")]
                pending.append(pa.RecordBatch.from_arrays(meta + block.column("features").flatten(),
                                                          schema=self.schema))
                self.rows += block.num_rows
                if sum(b.num_rows for b in pending) >= self.chunk_rows:
                    writer.write_table(pa.Table.from_batches(pending))
                    pending = []
            if pending:
                writer.write_table(pa.Table.from_batches(pending))
