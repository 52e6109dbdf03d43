"""Every write of the collection app: sources, keys, receiving and ingesting batches, process feedback."""
import hashlib
import hmac
import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.utils import timezone

from . import signals
from .auth import credentials_changed, key_generate
from .columnar import NdjsonParquetCopy, ParquetCopy
from .errors import Refusal
from .failures import batch_step_failed, describe, is_transient
from .models import Batch, BatchTransition, FeedbackEvent, Record, Source, SourceKey
from .parsing import PayloadError, PayloadParser
from .storage import (
    IncomingPayload,
    columnar_relative_path,
    data_path,
    open_payload,
    payload_relative_path,
)
from .transitions import batch_transition
from .writers import RecordRows, chunks

log = logging.getLogger(__name__)



# --- sources and keys


def source_create(
    *, name: str, kind: str, expected_interval: timedelta | None = None, from_model: bool = False,
    description: str = "",
) -> Source:
    """Create a source; its name is its identity in URLs and commands (validation's policy for it: SourcePolicy)."""
    source = Source(name=name, kind=kind, expected_interval=expected_interval, from_model=from_model,
                    description=description)
    source.full_clean()
    source.save()
    return source


def source_key_create(*, source: Source, name: str = "", created_by=None, rate: str = "") -> tuple[SourceKey, str]:
    """Make an API key for a source; returns the stored key and the secret, which is never seen again."""
    raw, prefix, hashed = key_generate()
    key = SourceKey.objects.create(source=source, name=name, prefix=prefix, hashed=hashed, created_by=created_by,
                                   rate=rate)
    return key, raw


def source_key_revoke(*, key: SourceKey) -> SourceKey:
    """Revoke a key at once; requests with it get 401 from now on."""
    SourceKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    credentials_changed()
    key.refresh_from_db()
    return key


# --- batch lifecycle


def batch_receive(
    *, source: Source, body, fmt: str, gzipped: bool, idempotency_key: str | None = None,
    key: SourceKey | None = None, actor: str = "api",
) -> tuple[Batch, bool]:
    """Store an uploaded payload and record its batch; returns (batch, created).

    The body is checked while it streams to disk (PayloadError, BodyTooLarge, NotGzip on bad input,
    and then nothing is kept). The batch row is committed before the pipeline is told about it, so
    an accepted batch is never lost, even when the broker is down: the sweeper picks it up later.
    """
    if idempotency_key:
        earlier = Batch.objects.filter(source=source, idempotency_key=idempotency_key).first()
        if earlier is not None:
            return earlier, False
    incoming = IncomingPayload(body, gzipped=gzipped, limit=settings.SIEVE_MAX_UPLOAD_BYTES,
                               content_limit=settings.SIEVE_MAX_UNCOMPRESSED_BYTES,
                               directory=data_path(f"payloads/{source.pk}"))
    try:
        parser = PayloadParser(incoming.content, fmt, max_json_bytes=settings.SIEVE_MAX_JSON_ARRAY_BYTES,
                               max_record_bytes=settings.SIEVE_MAX_RECORD_BYTES)
        for _ in parser:
            pass
        sha256, content_bytes, body_bytes = incoming.finish()
        if content_bytes == 0 or (parser.count == 0 and fmt != "csv"):
            raise PayloadError("the body is empty: send at least one record", field="body")
        if parser.count == 0:
            raise PayloadError("the CSV has a header but no records", line=2, field="body")
    except BaseException:
        # Bad input (PayloadError, BodyTooLarge, NotGzip) or a dropped connection: keep nothing.
        incoming.discard()
        raise
    return _batch_record(source=source, incoming=incoming, fmt=fmt, gzipped=gzipped, sha256=sha256,
                         body_bytes=body_bytes, count=parser.count, columns=[[name, kind] for name, kind in parser.columns.items()],
                         idempotency_key=idempotency_key, key=key, actor=actor)


def _batch_record(*, source, incoming, fmt, gzipped, sha256, body_bytes, count, columns, idempotency_key, key,
                  actor) -> tuple[Batch, bool]:
    relative = payload_relative_path(source.pk, fmt, gzipped)
    duplicate_of = (
        Batch.objects.filter(source=source, sha256=sha256)
        .exclude(status__in=[Batch.Status.FAILED, Batch.Status.DUPLICATE])
        .order_by("pk")
        .first()
    )
    status = Batch.Status.DUPLICATE if duplicate_of else Batch.Status.RECEIVED
    incoming.keep(relative)
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                source=source, key=key, status=status, format=fmt, gzipped=gzipped, payload=relative,
                payload_bytes=body_bytes, sha256=sha256, idempotency_key=idempotency_key or None,
                duplicate_of=duplicate_of, columns=columns, record_count=count,
            )
            BatchTransition.objects.create(
                batch=batch, from_status="", to_status=status, actor=actor,
                note=f"same content as batch {duplicate_of.pk}" if duplicate_of else "",
            )
            if status == Batch.Status.RECEIVED:
                transaction.on_commit(lambda: signals.batch_received.send(sender=Batch, batch_id=batch.pk))
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race: answer with its batch.
        data_path(relative).unlink(missing_ok=True)
        earlier = Batch.objects.filter(source=source, idempotency_key=idempotency_key).first()
        if earlier is None:
            raise
        return earlier, False
    return batch, True


def batch_ingest(*, batch_id: int, actor: str = "task:ingest") -> Batch | None:
    """Parse a received batch into records and a Parquet copy: all of it, or (on a bad payload) none.

    Claims the batch (received -> ingesting) first. The records, the columnar copy's name and the
    move to `ingested` commit in one transaction whose last statement checks that this claim is
    still the live one, so a worker that was presumed dead and raced a retry cannot add records twice.
    """
    now = timezone.now()
    if not batch_transition(batch_id=batch_id, from_status=Batch.Status.RECEIVED,
                            to_status=Batch.Status.INGESTING, actor=actor, ingest_started_at=now,
                            attempts=F("attempts") + 1):
        return Batch.objects.filter(pk=batch_id).first()  # someone else has it, or it is gone
    batch = Batch.objects.get(pk=batch_id)
    relative = columnar_relative_path(batch.source_id, batch.pk)
    target = data_path(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{batch.attempts}.partial")
    try:
        with transaction.atomic():
            _hold_ingest_lock(batch.pk)
            count = _ingest_rows(batch, partial)
            partial.replace(target)
            _feedback_link_batch(batch)
            done = batch_transition(
                batch_id=batch.pk, from_status=Batch.Status.INGESTING, to_status=Batch.Status.INGESTED,
                actor=actor, note=f"{count} records", ingested_at=timezone.now(), ingested_count=count,
                columnar=relative, error="", error_line=None, where={"attempts": batch.attempts},
            )
            if not done:
                raise _ClaimLost()
    except _ClaimLost:
        log.warning("batch %s: claim %s was superseded; its work was rolled back", batch.pk, batch.attempts)
    except PayloadError as exc:
        partial.unlink(missing_ok=True)
        if batch_transition(batch_id=batch.pk, from_status=Batch.Status.INGESTING, to_status=Batch.Status.FAILED,
                            actor=actor, note=str(exc), error=str(exc), error_line=exc.line,
                            where={"attempts": batch.attempts}):
            transaction.on_commit(lambda: signals.batch_failed.send(sender=Batch, batch_id=batch.pk, step="ingest"))
    except BaseException as exc:
        # A database or broker fault gives the claim back for a retry (or the sweeper); an error that will recur
        # is counted and, at the limit, ends the batch `failed` with it (failures.py).
        partial.unlink(missing_ok=True)
        try:
            batch_step_failed(batch_id=batch.pk, working=Batch.Status.INGESTING, back=Batch.Status.RECEIVED,
                              actor=actor, step="ingest", reason=f"ingest: {describe(exc)}",
                              transient=is_transient(exc), where={"attempts": batch.attempts})
        except Exception:
            log.exception("batch %s: could not release its claim; the sweeper will", batch.pk)
        raise
    return Batch.objects.get(pk=batch.pk)


class _ClaimLost(Exception):
    pass


# Advisory lock namespaces (first key of PostgreSQL's two-key advisory locks).
INGEST_LOCK = 7042


def _hold_ingest_lock(batch_id: int) -> None:
    """Hold a lock for as long as this ingest's transaction lives; a dead worker's lock dies with it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [INGEST_LOCK, batch_id])


def _ingest_is_alive(batch_id: int) -> bool:
    """Is a worker still ingesting this batch? On PostgreSQL its lock says so exactly; elsewhere assume not."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [INGEST_LOCK, batch_id])
        return not cursor.fetchone()[0]


def _ingest_rows(batch: Batch, partial: Path) -> int:
    """COPY the records and write the columnar copy; returns how many records were written."""
    chunk_rows = settings.SIEVE_INGEST_CHUNK_ROWS
    columns = dict(batch.columns)
    background = None
    if batch.format == Batch.Format.NDJSON and NdjsonParquetCopy.supports(columns):
        background = NdjsonParquetCopy(data_path(batch.payload), gzipped=batch.gzipped, target=partial,
                                       columns=columns, chunk_rows=chunk_rows)
        background.start()
    rows = RecordRows(batch_id=batch.pk, source_id=batch.source_id)
    copy = None if background else ParquetCopy(partial, columns)
    try:
        if copy:
            for chunk in chunks(_payload_records(batch), chunk_rows):
                rows.write(chunk)
                copy.write(chunk)
        else:
            rows.write_all(_payload_records(batch), chunk_rows=chunk_rows)
    finally:
        if copy:
            copy.close()
        if background:
            if sys.exc_info()[0] is not None:
                background.stopping.set()
            background.join()
    if background and (background.error or background.rows != rows.count):
        log.warning("batch %s: Arrow could not convert the payload (%s); building the copy from records",
                    batch.pk, background.error or f"{background.rows} rows, not {rows.count}")
        copy = ParquetCopy(partial, columns)
        try:
            for chunk in chunks(_payload_records(batch), chunk_rows):
                copy.write(chunk)
        finally:
            copy.close()
    return rows.count


def _payload_records(batch: Batch):
    """The stored payload's records. It was checked in full at upload; this re-checks only what
    protects the database."""
    with open_payload(batch.payload, gzipped=batch.gzipped) as stream:
        yield from PayloadParser(stream, batch.format, max_json_bytes=settings.SIEVE_MAX_JSON_ARRAY_BYTES,
                                 trusted=True)


def batch_requeue_stalled(*, batch_id: int, actor: str = "task:sweeper") -> str:
    """Hand a batch whose worker vanished mid-ingest back to the queue (ingesting -> received), counted as a
    failure (failures.py): returns its new status, "" when it was left alone.

    A slow but living worker keeps its batch: it holds the ingest lock, which a killed worker's
    connection gives up when it drops.
    """
    with transaction.atomic():
        if _ingest_is_alive(batch_id):
            return ""
        # A worker lost on a batch counts as a failure: a batch that kills its worker every time must end.
        return batch_step_failed(batch_id=batch_id, working=Batch.Status.INGESTING, back=Batch.Status.RECEIVED,
                                 actor=actor, step="ingest", reason="ingest: its worker is gone", transient=False)


def batch_retry(*, batch_id: int, actor: str) -> str:
    """Give a failed batch back to the pipeline after a fix: to `ingested` when its Parquet copy was written (it
    failed in validation), else to `received`; its failures are forgotten. Returns where it starts again;
    BatchNotFailed when it is not `failed`. The pipeline is enqueued after the commit (batch_retried)."""
    batch = Batch.objects.filter(pk=batch_id).only("status", "columnar").first()
    if batch is None or batch.status != Batch.Status.FAILED:
        raise BatchNotFailed(f"batch {batch_id} is {batch.status if batch else 'unknown'}, not failed",
                             field="status", value=batch.status if batch else None)
    back = Batch.Status.INGESTED if batch.columnar else Batch.Status.RECEIVED
    with transaction.atomic():
        if not batch_transition(batch_id=batch_id, from_status=Batch.Status.FAILED, to_status=back, actor=actor,
                                note="retried", failures=0, error="", error_line=None):
            raise BatchNotFailed(f"batch {batch_id} is no longer failed", field="status")
        transaction.on_commit(lambda: signals.batch_retried.send(sender=Batch, batch_id=batch_id, from_status=back))
    return back


class BatchNotFailed(Refusal):
    """Only a failed batch can be retried."""

    code = "not_failed"
    status = 409


# --- process feedback


def actor_pseudonym(actor: str) -> str:
    """A keyed hash of an actor id: stable per actor, not reversible without the server's secret."""
    if not actor:
        return ""
    return hmac.digest(settings.SIEVE_PSEUDONYM_SECRET.encode(), actor.encode(), "sha256").hex()


def feedback_receive(*, source: Source, events: list[dict]) -> dict:
    """Store checked feedback events, each once per idempotency key; link those whose record is known.

    `events` are dicts with external_id, signal, value, actor (raw), occurred_at (aware datetime) and
    idempotency_key (None: identical events are then one event). The raw actor id is replaced by its
    pseudonym here and is never stored.
    """
    for event in events:
        if not event.get("idempotency_key"):
            event["idempotency_key"] = feedback_idempotency_key(event)
    if connection.vendor == "postgresql":
        inserted = _feedback_insert_returning(source, events)
    else:
        inserted = _feedback_insert_orm(source, events)
    return {"accepted": len(inserted), "duplicates": len(events) - len(inserted),
            "linked": sum(1 for record_id in inserted if record_id is not None)}


# The events travel as one JSON document (a parameter PostgreSQL parses in C) rather than as one
# array per column, which psycopg would build in Python element by element.
_FEEDBACK_SQL = f"""
INSERT INTO {FeedbackEvent._meta.db_table}
    (source_id, idempotency_key, external_id, record_id, signal, value, actor, occurred_at, received_at)
SELECT %(source)s, e.idempotency_key, e.external_id,
       (SELECT r.id FROM {Record._meta.db_table} r
         WHERE r.source_id = %(source)s AND r.external_id = e.external_id AND r.is_current),
       e.signal, e.value, e.actor, e.occurred_at, now()
  FROM jsonb_to_recordset(%(events)s::jsonb)
       AS e(idempotency_key text, external_id text, signal text, value jsonb, actor text, occurred_at timestamptz)
ON CONFLICT (source_id, idempotency_key) DO NOTHING
RETURNING record_id
"""


def _feedback_insert_returning(source: Source, events: list[dict]) -> list:
    """One statement for a whole list: insert what is new, link it, and say which rows went in."""
    pseudonyms: dict[str, str] = {}  # an actor named twice in one list is hashed once
    rows = []
    for e in events:
        actor = e.get("actor") or ""
        if actor not in pseudonyms:
            pseudonyms[actor] = actor_pseudonym(actor)
        # A JSON null value is stored as SQL NULL, as jsonb_to_recordset reads it.
        rows.append({"idempotency_key": e["idempotency_key"], "external_id": e["external_id"], "signal": e["signal"],
                     "value": e.get("value"), "actor": pseudonyms[actor], "occurred_at": e["occurred_at"]})
    with connection.cursor() as cursor:
        cursor.execute(_FEEDBACK_SQL, {"source": source.pk, "events": orjson.dumps(rows).decode()})
        return [row[0] for row in cursor.fetchall()]


def _feedback_insert_orm(source: Source, events: list[dict]) -> list:
    """The same for databases without INSERT ... RETURNING on conflict (SQLite in the demo)."""
    keys = [e["idempotency_key"] for e in events]
    seen = set(FeedbackEvent.objects.filter(source=source, idempotency_key__in=keys)
               .values_list("idempotency_key", flat=True))
    fresh = list({e["idempotency_key"]: e for e in events if e["idempotency_key"] not in seen}.values())
    ids = {e["external_id"] for e in fresh}
    current = dict(Record.objects.current().filter(source=source, external_id__in=ids)
                   .values_list("external_id", "id")) if ids else {}
    now = timezone.now()
    FeedbackEvent.objects.bulk_create(
        [
            FeedbackEvent(
                source=source, idempotency_key=e["idempotency_key"], external_id=e["external_id"],
                record_id=current.get(e["external_id"]), signal=e["signal"], value=e.get("value"),
                actor=actor_pseudonym(e.get("actor") or ""), occurred_at=e["occurred_at"], received_at=now,
            )
            for e in fresh
        ],
        ignore_conflicts=True,  # a concurrent retry of the same events: the first insert wins
    )
    return [current.get(e["external_id"]) for e in fresh]


def feedback_idempotency_key(event: dict) -> str:
    """The key of an event sent without one: identical events are then the same event."""
    parts = [event["external_id"], event["signal"], repr(event.get("value")), event.get("actor") or "",
             event["occurred_at"].isoformat() if isinstance(event["occurred_at"], datetime) else ""]
    return "sha256:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _feedback_link_batch(batch: Batch) -> int:
    """Link feedback that arrived before its record to this batch's (current) rows.

    Driven from the (few) unlinked events, each probing the current-revision index, rather than
    from the batch's (many) records.
    """
    match = Record.objects.filter(source_id=batch.source_id, external_id=OuterRef("external_id"), is_current=True,
                                  batch=batch)
    return FeedbackEvent.objects.filter(source_id=batch.source_id, record__isnull=True).filter(
        Exists(match)).update(record=Subquery(match.values("pk")[:1]))
