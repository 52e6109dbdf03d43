"""The record writer's SQLite copy (what `make run` runs: bulk inserts, ORM revision lookups) against its
PostgreSQL path (COPY, `= ANY` lookups): the same batches written on both keep the same rows and revisions."""
import datetime as dt
import json

import pytest

from tests.conftest import run_on_sqlite

pytestmark = pytest.mark.slow

T0 = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.timezone.utc)


def writer_story() -> dict:
    """Three batches of one source written out of order; the current revision of each id, and a row read back."""
    from collection.models import Record
    from collection.parsing import ParsedRecord
    from collection.writers import RecordRows
    from tests import factories

    source = factories.source_make()
    first, middle, last = (factories.batch_of_records(source, 0) for _ in range(3))  # ids in this order
    names = {first.pk: "first", middle.pk: "middle", last.pk: "last"}

    def write(batch, ids: list[str], *, chunk_rows: int = 2) -> list:
        rows = RecordRows(batch_id=batch.pk, source_id=source.pk)
        records = [ParsedRecord(line=n + 1, external_id=i, features={"n": n, "name": f"é {i}", "tags": [i]},
                                observed_at=T0 + dt.timedelta(minutes=n), label=None if n else {"is": names[batch.pk]})
                   for n, i in enumerate(ids)]
        return [rows.revisions_possible, rows.write_all(records, chunk_rows=chunk_rows)]

    seen = {"first": write(first, ["a", "b", "c"]), "last": write(last, ["b", "d"]),
            # Older than `last`: its b stays superseded, its a supersedes the first batch's.
            "middle": write(middle, ["a", "b"], chunk_rows=1)}
    rows = Record.objects.filter(source=source)
    seen["current"] = sorted([r.external_id, names[r.batch_id]] for r in rows.filter(is_current=True))
    seen["superseded"] = sorted([r.external_id, names[r.batch_id]] for r in rows.filter(is_current=False))
    stored = rows.get(batch=middle, external_id="a")
    seen["stored"] = [stored.line, stored.features, stored.observed_at.isoformat(), stored.label]
    return seen


def test_the_sqlite_writer_keeps_the_same_rows_and_revisions_as_copy_on_postgresql(db, tmp_path):
    from django.db import connection

    assert connection.vendor == "postgresql"
    copied = json.loads(json.dumps(writer_story()))  # as the subprocess reports it
    sqlite = run_on_sqlite(tmp_path, __name__, "writer_story", apps=("collection",))
    assert sqlite == copied
    assert sqlite["first"] == [False, 3]  # no current rows yet: no revision lookups (one COPY on PostgreSQL)
    assert sqlite["last"] == [True, 2]
    assert sqlite["middle"] == [True, 2]
    assert sqlite["current"] == [["a", "middle"], ["b", "last"], ["c", "first"], ["d", "last"]]
    assert sqlite["superseded"] == [["a", "first"], ["b", "first"], ["b", "middle"]]
    assert sqlite["stored"] == [1, {"n": 0, "name": "é a", "tags": ["a"]}, "2026-03-01T12:30:00+00:00",
                                {"is": "middle"}]
