"""Write parsed records of one batch into the record table (COPY on PostgreSQL), in chunks.

A batch of any size is written in bounded memory. The revision rule (docs/api.md, "Rules for data sent twice") is applied per chunk: the newest batch's row is the
current revision of an external id; older current rows of the same source are marked superseded.
"""
from collections.abc import Iterable, Iterator, Sequence

import orjson
from django.db import connection

from .models import Record
from .parsing import ParsedRecord

RECORD_TABLE = Record._meta.db_table
_dumps = orjson.dumps


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

    def write_all(self, records: Iterable[ParsedRecord], *, chunk_rows: int) -> int:
        """Write every record; returns how many.

        With no earlier revisions to look up (and on PostgreSQL), the records stream into one COPY
        as they are parsed, so the database works on one row while Python parses the next.
        """
        if connection.vendor == "postgresql" and not self.revisions_possible:
            self._copy(_counted(records, self), set())
        else:
            for chunk in chunks(records, chunk_rows):
                self.write(chunk)
        return self.count

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
            self.count += len(chunk)
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

    def _copy(self, chunk: Iterable[ParsedRecord], newer: set) -> None:
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


def _counted(records: Iterable[ParsedRecord], rows: RecordRows) -> Iterator[ParsedRecord]:
    for record in records:
        rows.count += 1
        yield record


def chunks(records: Iterable, size: int) -> Iterator[list]:
    """Lists of at most `size` items, in order."""
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
