"""The queue's hot path on PostgreSQL: a claim and a submit, each one statement.

The ORM versions in queue.py do the same in several round trips (and are what SQLite runs); these
exist because `next` and `submit` are what 50 raters call hundreds of times a second. The
statements keep the same invariants: the claim locks the oldest claimable item with FOR UPDATE
SKIP LOCKED and takes a slot in the same statement; the submit locks the lease, then the item.

They run on Django's cursor (client-side binding, no server-side prepared statements, so they work
behind PgBouncer in transaction mode), and every state they name is a parameter taken from the models'
TextChoices. The parameters are merged into the statement's text before it is sent, so PostgreSQL
still sees the states as constants and matches the partial indexes whose predicates name them.
"""
import json
from contextlib import nullcontext

import orjson
from django.conf import settings
from django.db import connection, transaction

from collection.models import Record

from ..models import Annotation, Assignment, Membership, QueueItem

A, Q, M, N, R = (Assignment._meta.db_table, QueueItem._meta.db_table, Membership._meta.db_table,
                 Annotation._meta.db_table, Record._meta.db_table)
_SELECT = ", ".join(f.column for f in Assignment._meta.concrete_fields)

# The states and provenances the statements below name, passed as parameters from the choices.
STATES = {"open": QueueItem.State.OPEN, "leased": Assignment.State.LEASED,
          "submitted": Assignment.State.SUBMITTED, "skipped": Assignment.State.SKIPPED,
          "human": Annotation.Provenance.HUMAN, "imported": Annotation.Provenance.IMPORTED}

# What makes item q claimable by the rater: they are an unpaused member, the item is open, regular, has a
# free slot, and they have not leased, labeled, skipped it or brought a label for it (an import: one
# probe of the small partial index annotation_one_import_per_rater_and_item). Shared by the claim and the probe.
_CLAIMABLE = f"""EXISTS (SELECT 1 FROM {M} m WHERE m.project_id = %(project)s AND m.rater_id = %(rater)s
                                         AND m.paused_at IS NULL)
       AND q.project_id = %(project)s AND NOT q.is_gold AND q.state = %(open)s
       AND q.submitted_count < (q.needed - q.leased_count)
       AND NOT EXISTS (SELECT 1 FROM {A} a WHERE a.item_id = q.id AND a.rater_id = %(rater)s
                                             AND a.state IN (%(leased)s, %(submitted)s, %(skipped)s) OFFSET 0)
       AND NOT EXISTS (SELECT 1 FROM {N} x WHERE x.item_id = q.id AND x.rater_id = %(rater)s
                                             AND x.provenance = %(imported)s AND x.undone_at IS NULL OFFSET 0)"""

# The item predicate includes OPEN_REGULAR (models.py), so PostgreSQL reads the partial index queueitem_open.
# "OFFSET 0" keeps the rater check a probe per candidate (index assignment_item_once_per_rater):
# as an anti-join PostgreSQL would read all of the rater's assignments, which grow with their work.
# The statement's columns are named for Assignment.objects.raw(): the assignment's own, then `own`,
# the item's counters and state (`item_state`) and, with the record, its fields under `record_*`.
CLAIM = f"""
WITH own AS (
    SELECT {_SELECT} FROM {A} WHERE rater_id = %(rater)s AND project_id = %(project)s AND state = %(leased)s
), candidate AS (
    SELECT q.id FROM {Q} q
     WHERE NOT EXISTS (SELECT 1 FROM own)
       AND {_CLAIMABLE}
     ORDER BY q.id
     LIMIT 1
     FOR UPDATE OF q SKIP LOCKED
), taken AS (
    UPDATE {Q} q SET leased_count = q.leased_count + 1 FROM candidate WHERE q.id = candidate.id RETURNING q.id
), leased AS (
    INSERT INTO {A} (item_id, project_id, rater_id, state, is_gold, holds_slot, leased_at, expires_at, skip_reason)
    SELECT taken.id, %(project)s, %(rater)s, %(leased)s, false, true, %(now)s, %(until)s, '' FROM taken
    RETURNING {_SELECT}
)
SELECT mine.*, q.submitted_count, q.needed, q.state AS item_state{{record_columns}}
  FROM (SELECT true AS own, {_SELECT} FROM own UNION ALL SELECT false, {_SELECT} FROM leased) mine
  JOIN {Q} q ON q.id = mine.item_id{{record_join}}
"""
# With the record the lease is about, for callers that show it (the API), in the same statement.
CLAIM_WITH_RECORD = CLAIM.format(record_columns=(", r.external_id AS record_external_id, r.features AS record_features,"
                                                 " r.observed_at AS record_observed_at"),
                                 record_join=f"\n  JOIN {R} r ON r.id = q.record_id")
CLAIM = CLAIM.format(record_columns="", record_join="")


def _run(sql: str, params: dict):
    """One row of a statement run on Django's connection (and in its transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, {**STATES, **params})
        return cursor.fetchone()


def claim(*, rater_id: int, project_id: int, now, until, with_record: bool = False) -> tuple[Assignment | None, bool]:
    """(assignment, is_own): the rater's leased assignment in the project (live or not) if there is one,
    else a new lease on the oldest claimable item, else (None, False) (no work, or not a member)."""
    params = {**STATES, "rater": rater_id, "project": project_id, "now": now, "until": until}
    quick = settings.SIEVE_LEASE_ASYNC_COMMIT
    with transaction.atomic() if quick else nullcontext():
        if quick:
            # A lease is ephemeral: with this setting its commit does not wait for the disk. A server crash
            # can forget the newest leases together with their slot counts (WAL stays atomic and in order);
            # labels and everything else commit durably. Inside a caller's transaction it lasts to its end.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        found = list(Assignment.objects.raw(CLAIM_WITH_RECORD if with_record else CLAIM, params))
    if not found:
        return None, False
    assignment = found[0]
    # Read in the same statement (as of its start): whether this lease's label will likely complete
    # the item (submit then settles at once), and the record, if asked for.
    assignment.completes_item = (assignment.item_state != QueueItem.State.OPEN
                                 or assignment.submitted_count + 1 >= assignment.needed)
    if with_record:
        features = assignment.record_features
        assignment.record = Record(id=assignment.item_id, external_id=assignment.record_external_id,
                                   observed_at=assignment.record_observed_at,
                                   features=json.loads(features) if isinstance(features, str) else features)
    return assignment, assignment.own


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
     WHERE id = %(assignment)s AND state = %(leased)s AND holds_slot AND NOT is_gold
     FOR UPDATE
), item AS (
    UPDATE {Q} q SET leased_count = q.leased_count - 1, submitted_count = q.submitted_count + 1
      FROM lease WHERE q.id = lease.item_id
       AND (%(settles)s OR (q.state = %(open)s AND q.submitted_count + 1 < q.needed))
    RETURNING q.id, q.needed, q.submitted_count, q.state, q.decided_by
), annotation AS (
    INSERT INTO {N} (item_id, project_id, assignment_id, rater_id, actor, provenance, value, created_at)
    SELECT lease.item_id, lease.project_id, lease.id, lease.rater_id, '', %(human)s, %(value)s::jsonb, %(now)s
      FROM lease, item
    RETURNING id
), finished AS (
    UPDATE {A} SET state = %(submitted)s, holds_slot = false, finished_at = %(now)s
     WHERE id = (SELECT lease.id FROM lease) AND EXISTS (SELECT 1 FROM annotation)
    RETURNING id
)
SELECT annotation.id, item.id, item.needed, item.submitted_count, item.state, item.decided_by,
       CASE WHEN %(settles)s THEN
           (SELECT coalesce(jsonb_agg(x.value ORDER BY x.id), '[]'::jsonb) FROM {N} x
             WHERE x.item_id = item.id AND x.undone_at IS NULL AND NOT x.is_gold
               AND (%(with_feedback)s OR x.provenance IN (%(human)s, %(imported)s)))
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
