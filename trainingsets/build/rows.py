"""The eligible records, streamed from the database as Arrow tables of about CHUNK_ROWS rows.

Eligible: the current revision of a record of one of the set's sources whose batch is admitted (an
approved batch is admitted too). A record whose current revision sits in a quarantined, rejected or
failed batch is out, whatever its older revisions were.

On PostgreSQL the database builds each row's JSON text (its features with the record's own columns
added) in record-id order, and Arrow's JSON reader turns each chunk of lines into typed columns in
C++. A build in autocommit (a worker's) streams the text with COPY on a connection of its own, read
and parsed on a thread while the caller resolves labels and writes files on its own connection, so
PostgreSQL and Python work at the same time (docs/benchmarks.md, "Training sets"). A build inside a
transaction (a test, a caller's atomic block) must see that transaction's rows: it reads through a
server-side cursor on the caller's connection instead. Elsewhere (SQLite, the embedded default)
Python builds the same lines. Every way gives the same lines, so the same table and the same files.
"""
from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator

import orjson
import pyarrow as pa
import pyarrow.json as pa_json
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from collection.columnar import TIMESTAMP
from collection.models import Batch, Record

from .columns import VersionSchema

CHUNK_ROWS = 50_000
# Columns whose JSON values are kept as text by the database and converted afterwards.
TEXT_KINDS = ("mixed", "list")
# jsonb_build_object takes at most 100 arguments: 50 pairs.
PAIRS_PER_CALL = 50


def eligible(source_ids: list[int]):
    return Record.objects.filter(is_current=True, source_id__in=source_ids, batch__status=Batch.Status.ADMITTED)


def raw_schema(schema: VersionSchema) -> pa.Schema:
    """What the JSON reader reads: the record's columns under reserved names, then the features."""
    fields = [("__r", pa.int64()), ("__b", pa.int64()), ("__s", pa.int64()), ("__e", pa.string()),
              ("__o", TIMESTAMP), ("__l", pa.string())]
    for column in schema.features:
        fields.append((column.feature, pa.string() if column.kind in TEXT_KINDS else column.arrow))
    return pa.schema(fields)


def _parse(lines: bytes, schema: pa.Schema) -> pa.Table:
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    # A block must hold the longest line; one block per chunk keeps that true whatever a record's size.
    read = pa_json.ReadOptions(block_size=max(1 << 20, len(lines) // 2 + 1))
    try:
        return pa_json.read_json(io.BytesIO(lines), read_options=read, parse_options=options)
    except pa.ArrowInvalid as exc:
        if "straddling" not in str(exc):
            raise
        return pa_json.read_json(io.BytesIO(lines), read_options=pa_json.ReadOptions(block_size=len(lines) + 1),
                                 parse_options=options)


def _postgres_sql(schema: VersionSchema, source_ids: list[int]) -> tuple[str, list]:
    texts = [c.feature for c in schema.features if c.kind in TEXT_KINDS]
    extra = ""
    for start in range(0, len(texts), PAIRS_PER_CALL):
        group = texts[start:start + PAIRS_PER_CALL]
        # Feature names are data: they go in as parameters, never into the statement's text.
        extra += " || jsonb_build_object(" + ", ".join(["%s::text, r.features->>%s::text"] * len(group)) + ")"
    sql = (
        "SELECT (r.features || jsonb_build_object('__r', r.id, '__b', r.batch_id, '__s', r.source_id, "
        "'__e', r.external_id, '__o', r.observed_at, '__l', r.label::text)" + extra + ")::text "
        "FROM collection_record r JOIN collection_batch b ON b.id = r.batch_id "
        "WHERE r.is_current AND r.source_id = ANY(%s) AND b.status = %s ORDER BY r.id"
    )
    return sql, [p for name in texts for p in (name, name)] + [list(source_ids), Batch.Status.ADMITTED.value]


def _postgres_chunks(schema: VersionSchema, source_ids: list[int], rows: int) -> Iterator[bytes]:
    sql, params = _postgres_sql(schema, source_ids)
    # A server-side cursor lives in a transaction; the caller's reads between fetches share the connection.
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while fetched := cursor.fetchmany(rows):
            yield "\n".join(row[0] for row in fetched).encode()


def _copy_chunks(schema: VersionSchema, source_ids: list[int], rows: int) -> Iterator[pa.Table]:
    """COPY's text on a thread with its own connection, parsed there, handed over through a short queue
    (two chunks at most wait: memory stays bounded however many rows there are)."""
    sql, params = _postgres_sql(schema, source_ids)
    arrow = raw_schema(schema)
    handoff: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        own = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with own.cursor() as cursor:
                with cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
                    pending, count = [], 0
                    for block in copy:
                        block = bytes(block)
                        pending.append(block)
                        count += block.count(b"\n")
                        if count >= rows:
                            data = b"".join(pending)
                            cut = data.rfind(b"\n")
                            # COPY's text format doubles backslashes; JSON text has no raw control characters.
                            if not put(_parse(data[:cut].replace(b"\\\\", b"\\"), arrow)):
                                return
                            pending, count = [data[cut + 1:]], 0
                    rest = b"".join(pending).rstrip(b"\n")
                    if rest and not put(_parse(rest.replace(b"\\\\", b"\\"), arrow)):
                        return
            put(None)
        except BaseException as exc:  # the caller re-raises it
            put(exc)
        finally:
            own.close()

    reader = threading.Thread(target=read, name="version-rows", daemon=True)
    reader.start()
    try:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=30)


def _python_chunks(schema: VersionSchema, source_ids: list[int], rows: int) -> Iterator[bytes]:
    texts = [c.feature for c in schema.features if c.kind in TEXT_KINDS]
    query = eligible(source_ids).order_by("id").values_list(
        "id", "batch_id", "source_id", "external_id", "observed_at", "label", "features")
    lines: list[bytes] = []
    for rid, bid, sid, ext, observed, label, features in query.iterator(chunk_size=rows):
        row = dict(features)
        for name in texts:
            value = row.get(name)
            if value is not None and not isinstance(value, str):
                row[name] = orjson.dumps(value).decode()
        row.update({"__r": rid, "__b": bid, "__s": sid, "__e": ext, "__o": observed,
                    "__l": None if label is None else orjson.dumps(label).decode()})
        lines.append(orjson.dumps(row))
        if len(lines) >= rows:
            yield b"\n".join(lines)
            lines = []
    if lines:
        yield b"\n".join(lines)


def record_chunks(schema: VersionSchema, source_ids: list[int], *, rows: int | None = None) -> Iterator[pa.Table]:
    """The eligible records in record-id order, as tables of `raw_schema(schema)` of about CHUNK_ROWS rows."""
    rows = rows or CHUNK_ROWS
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        yield from _copy_chunks(schema, source_ids, rows)
        return
    arrow = raw_schema(schema)
    chunks = _postgres_chunks if connection.vendor == "postgresql" else _python_chunks
    for lines in chunks(schema, source_ids, rows):
        yield _parse(lines, arrow)
