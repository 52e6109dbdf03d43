"""The queue's hot path on PostgreSQL: a claim and a submit, each one statement.

The ORM versions in queue.py do the same in several round trips (and are what SQLite runs); these
exist because `next` and `submit` are what 50 raters call hundreds of times a second. The
statements keep the same invariants: the claim locks the oldest claimable item with FOR UPDATE
SKIP LOCKED and takes a slot in the same statement; the submit locks the lease, then the item.
"""
import json

import orjson
import psycopg
from django.db import connection

from collection.models import Record

from ..models import Annotation, Assignment, Membership, QueueItem

A, Q, M, N, R = (Assignment._meta.db_table, QueueItem._meta.db_table, Membership._meta.db_table,
                 Annotation._meta.db_table, Record._meta.db_table)
_COLUMNS = [f.column for f in Assignment._meta.concrete_fields]
_ATTNAMES = [f.attname for f in Assignment._meta.concrete_fields]
_SELECT = ", ".join(_COLUMNS)

# What makes item q claimable by the rater: they are an unpaused member, the item is open, regular, has a
# free slot, and they have not leased, labeled, skipped it or brought a label for it (an import: one
# probe of the small partial index annotation_one_import_per_rater_and_item). Shared by the claim and the probe.
_CLAIMABLE = f"""EXISTS (SELECT 1 FROM {M} m WHERE m.project_id = %(project)s AND m.rater_id = %(rater)s
                                         AND m.paused_at IS NULL)
       AND q.project_id = %(project)s AND NOT q.is_gold AND q.state = 'open'
       AND q.submitted_count < (q.needed - q.leased_count)
       AND NOT EXISTS (SELECT 1 FROM {A} a WHERE a.item_id = q.id AND a.rater_id = %(rater)s
                                             AND a.state IN ('leased', 'submitted', 'skipped') OFFSET 0)
       AND NOT EXISTS (SELECT 1 FROM {N} x WHERE x.item_id = q.id AND x.rater_id = %(rater)s
                                             AND x.provenance = 'imported' AND x.undone_at IS NULL OFFSET 0)"""

# The item predicate includes OPEN_REGULAR (models.py), so PostgreSQL reads the partial index queueitem_open.
# "OFFSET 0" keeps the rater check a probe per candidate (index assignment_item_once_per_rater):
# as an anti-join PostgreSQL would read all of the rater's assignments, which grow with their work.
# A lease is ephemeral, so its commit does not wait for the disk (synchronous_commit off for this one
# statement's transaction): a server crash can at most forget the newest leases, together with their
# slot counts, since WAL stays atomic and in order; the next submit's durable commit flushes them anyway.
CLAIM = f"""
WITH quick AS (
    SELECT set_config('synchronous_commit', 'off', true)
), own AS (
    SELECT {_SELECT} FROM {A} WHERE rater_id = %(rater)s AND project_id = %(project)s AND state = 'leased'
), candidate AS (
    SELECT q.id FROM {Q} q
     WHERE NOT EXISTS (SELECT 1 FROM own) AND EXISTS (SELECT 1 FROM quick)
       AND {_CLAIMABLE}
     ORDER BY q.id
     LIMIT 1
     FOR UPDATE OF q SKIP LOCKED
), taken AS (
    UPDATE {Q} q SET leased_count = q.leased_count + 1 FROM candidate WHERE q.id = candidate.id RETURNING q.id
), leased AS (
    INSERT INTO {A} (item_id, project_id, rater_id, state, is_gold, holds_slot, leased_at, expires_at, skip_reason)
    SELECT taken.id, %(project)s, %(rater)s, 'leased', false, true, %(now)s, %(until)s, '' FROM taken
    RETURNING {_SELECT}
)
SELECT mine.*, q.submitted_count, q.needed, q.state{{record_columns}}
  FROM (SELECT true AS own, {_SELECT} FROM own UNION ALL SELECT false, {_SELECT} FROM leased) mine
  JOIN {Q} q ON q.id = mine.item_id{{record_join}}
"""
# With the record the lease is about, for callers that show it (the API), in the same statement.
CLAIM_WITH_RECORD = CLAIM.format(record_columns=", r.external_id, r.features, r.observed_at",
                                 record_join=f"\n  JOIN {R} r ON r.id = q.record_id")
CLAIM = CLAIM.format(record_columns="", record_join="")


def _run(sql: str, params: dict):
    """Execute as a server-side prepared statement on Django's connection (and in its transaction):
    planning these statements costs more than running them, so each connection plans them once."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()


def claim(*, rater_id: int, project_id: int, now, until, with_record: bool = False) -> tuple[Assignment | None, bool]:
    """(assignment, is_own): the rater's leased assignment in the project (live or not) if there is one,
    else a new lease on the oldest claimable item, else (None, False) (no work, or not a member)."""
    row = _run(CLAIM_WITH_RECORD if with_record else CLAIM,
               {"rater": rater_id, "project": project_id, "now": now, "until": until})
    if row is None:
        return None, False
    width = len(_ATTNAMES)
    assignment = Assignment.from_db(connection.alias, _ATTNAMES, row[1:1 + width])
    submitted, needed, state = row[1 + width:4 + width]
    # Read in the same statement (as of its start): whether this lease's label will likely complete
    # the item (submit then settles at once), and the record, if asked for.
    assignment.completes_item = state != "open" or submitted + 1 >= needed
    if with_record:
        external_id, features, observed_at = row[4 + width:]
        assignment.record = Record(id=assignment.item_id, external_id=external_id, observed_at=observed_at,
                                   features=json.loads(features) if isinstance(features, str) else features)
    return assignment, row[0]


# The probe `next` runs when the claim found nothing: the same predicate without FOR UPDATE, so rows that
# other transactions hold count too (a plain read never waits for a row lock). True means the claim only
# skipped held rows: the caller retries rather than answer "no work". The mark names it in pg_stat_activity.
PROBE_MARK = "sieve:claimable-probe"
CLAIMABLE = f"""/* {PROBE_MARK} */ SELECT EXISTS (SELECT 1 FROM {Q} q WHERE {_CLAIMABLE})"""


def claimable(*, rater_id: int, project_id: int) -> bool:
    """Whether an item is claimable by the rater, held by another transaction or not (one index probe)."""
    return _run(CLAIMABLE, {"rater": rater_id, "project": project_id})[0]


SUBMIT = f"""
WITH lease AS (
    SELECT id, item_id, rater_id, project_id FROM {A}
     WHERE id = %(assignment)s AND state = 'leased' AND holds_slot AND NOT is_gold
     FOR UPDATE
), item AS (
    UPDATE {Q} q SET leased_count = q.leased_count - 1, submitted_count = q.submitted_count + 1
      FROM lease WHERE q.id = lease.item_id
       AND (%(settles)s OR (q.state = 'open' AND q.submitted_count + 1 < q.needed))
    RETURNING q.id, q.needed, q.submitted_count, q.state, q.decided_by
), annotation AS (
    INSERT INTO {N} (item_id, project_id, assignment_id, rater_id, actor, provenance, value, created_at)
    SELECT lease.item_id, lease.project_id, lease.id, lease.rater_id, '', 'human', %(value)s::jsonb, %(now)s
      FROM lease, item
    RETURNING id
), finished AS (
    UPDATE {A} SET state = 'submitted', holds_slot = false, finished_at = %(now)s
     WHERE id = (SELECT lease.id FROM lease) AND EXISTS (SELECT 1 FROM annotation)
    RETURNING id
)
SELECT annotation.id, item.id, item.needed, item.submitted_count, item.state, item.decided_by,
       CASE WHEN %(settles)s THEN
           (SELECT coalesce(jsonb_agg(x.value ORDER BY x.id), '[]'::jsonb) FROM {N} x
             WHERE x.item_id = item.id AND x.undone_at IS NULL AND NOT x.is_gold
               AND (%(with_feedback)s OR x.provenance IN ('human', 'imported')))
       END
  FROM annotation, item, finished
"""


def submit(*, assignment_id: int, value, now, settles: bool, with_feedback: bool = False) -> tuple | None:
    """Turn a live, slot-holding, non-gold lease into an annotation: (annotation id, item id, needed,
    submitted, item state, item decided_by, the item's other counted labels or None), or None when the
    lease is in any other state (the caller's slow path decides). Counted labels: human and imported ones
    (and process feedback with `with_feedback`), never gold answers, never withdrawn ones.

    `settles=False`: only if this label does not make the item due for settling (most labels), so the
    statement can commit on its own; None otherwise. `settles=True`: always, inside the transaction
    that then settles the item, and with the item's other counted labels (the new one is not among
    them: a statement does not see its own insert)."""
    row = _run(SUBMIT, {"assignment": assignment_id, "value": orjson.dumps(value).decode(), "now": now,
                        "settles": settles, "with_feedback": with_feedback})
    if row is None:
        return None
    others = row[6]
    return (*row[:6], json.loads(others) if isinstance(others, str) else others)
