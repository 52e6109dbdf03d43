"""Settling items: the majority rule that closes an item, asks one more rater, or sends it to adjudication;
re-settling a project's open items after its overlap or extra raters change; making an item gold and regular again.

The rule, applied whenever an open item has as many counted labels as it needs (`needed`, the project's
overlap to begin with):

- Counted labels are the human and imported ones, and process feedback when the project counts it;
  never a gold answer (`Annotation.is_gold`, even after the item stops being gold), never a withdrawn one.
- The majority (labels.consensus) wins when it is not a tie and its share reaches the project's
  `min_confidence`: the item completes with it (agreement = confidence = the share, decided by "majority").
- Otherwise one more rater is asked (`needed` + 1) while `needed` is under overlap + `max_extra_raters`.
- Otherwise the item goes to adjudication (consensus null, agreement = confidence = the top share): an
  expert or staff decide it. So does an open item that no eligible rater is left to label
  (`items_escalate_stuck`, run by beat).

A complete item that gets more labels later (process feedback, an import, a late lease) is decided again
by the majority without asking for raters: a confident majority updates its consensus, anything else sends
it to adjudication. Adjudicated, unlabelable and gold items are never touched, and an item that a
Dawid-Skene run decided (complete or in adjudication) waits for the next run. The majority is what settles
an item as labels arrive, whatever the project's consensus method; a Dawid-Skene run then re-decides.
"""
import json
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..labels import Consensus, InvalidLabel, LabelSpec, consensus
from ..models import Annotation, Assignment, LabelingProject, Membership, QueueItem, Rater
from ..selectors.consensus import counted_provenances

# Items re-settled per transaction: each batch holds its rows' locks only briefly (claims skip locked rows).
RESETTLE_BATCH = 200

State, Decided = QueueItem.State, QueueItem.Decided


@dataclass(frozen=True)
class Decision:
    state: str
    needed: int
    result: Consensus | None


def settle_decision(counted: list, *, needed: int, project: LabelingProject) -> Decision:
    """What the rule makes of an open item with these counted labels and this `needed`: complete, open
    (needing more, one extra rater per unconfident round), or adjudication."""
    result = consensus(counted)
    while len(counted) >= needed:
        if result is not None and not result.tie and result.agreement >= project.min_confidence:
            return Decision(State.COMPLETE, needed, result)
        if needed < project.max_needed:
            needed += 1
            continue
        return Decision(State.ADJUDICATION, needed, result)
    return Decision(State.OPEN, needed, result)


def _is_final(item: QueueItem) -> bool:
    """Items settling never touches: gold, closed by staff, adjudicated."""
    return item.is_gold or item.state == State.UNLABELABLE or item.decided_by == Decided.ADJUDICATED


def _fields(item: QueueItem, decision: Decision, now: datetime) -> dict:
    """The columns that change when `decision` is applied to `item`."""
    result = decision.result
    share = result.agreement if result is not None else None
    if decision.state == State.COMPLETE:
        fields = {"state": State.COMPLETE, "needed": decision.needed, "consensus": result.label, "agreement": share,
                  "confidence": share, "decided_by": Decided.MAJORITY,
                  "completed_at": item.completed_at if item.state == State.COMPLETE and item.completed_at else now}
    elif decision.state == State.ADJUDICATION:
        fields = {"state": State.ADJUDICATION, "needed": decision.needed, "consensus": None, "agreement": share,
                  "confidence": share, "decided_by": "", "completed_at": None}
    else:
        fields = {"state": State.OPEN, "needed": decision.needed}
        if item.state != State.OPEN:  # reopened: what adjudication showed no longer holds
            fields.update(consensus=None, agreement=None, confidence=None, decided_by="", completed_at=None)
    return {name: value for name, value in fields.items() if getattr(item, name, None) != value}


def item_settle(*, item: QueueItem, project: LabelingProject, now: datetime | None = None,
                counted: list | None = None) -> QueueItem:
    """Apply the settling rule (module docstring) to a locked item; returns it with the changed fields set.

    An open item is settled once its counted labels reach `needed`; a complete or adjudication item
    that got a label after it settled is decided again without asking for raters. `counted` are the
    item's counted label values when the caller has them (the hot submit does), else they are read.
    """
    decision = _decision(item, project, counted)
    return item if decision is None else _apply(item, decision, now or timezone.now())


def items_settle(*, items: list[QueueItem], project: LabelingProject, now: datetime | None = None,
                 counted: dict[int, list] | None = None) -> int:
    """`item_settle` for many locked items, written back in one statement (a bulk import settles thousands:
    one UPDATE each took most of its time); `counted` maps item ids to their counted values, read when
    missing. Returns how many items changed."""
    now = now or timezone.now()
    read = counted is None
    if read:
        counted = _counted_values([i.pk for i in items], project=project)
    changed, columns = [], set()
    for item in items:
        decision = _decision(item, project, counted.get(item.pk, [] if read else None))
        fields = _fields(item, decision, now) if decision is not None else {}
        if fields:
            for name, value in fields.items():
                setattr(item, name, value)
            changed.append(item)
            columns.update(fields)
    if changed and connection.vendor == "postgresql":
        _write_settled(changed)
    elif changed:
        QueueItem.objects.bulk_update(changed, sorted(columns))
    return len(changed)


# Every column settling sets, for many items in one statement: Django's bulk_update builds a CASE per column
# and row, which took 0.4 s of Python per 200 items (most of a 50,000-label import); PostgreSQL parses the
# rows as one JSON document in C instead (as the import's insert does). A JSON null becomes SQL NULL.
_SETTLED_SQL = f"""
UPDATE {QueueItem._meta.db_table} q
   SET state = e.state, needed = e.needed, consensus = e.consensus, agreement = e.agreement,
       confidence = e.confidence, decided_by = e.decided_by, completed_at = e.completed_at
  FROM jsonb_to_recordset(%s::jsonb) AS e(id bigint, state text, needed int, consensus jsonb, agreement float8,
                                          confidence float8, decided_by text, completed_at timestamptz)
 WHERE q.id = e.id
"""


def _write_settled(items: list[QueueItem]) -> None:
    rows = [{"id": i.pk, "state": i.state, "needed": i.needed, "consensus": i.consensus, "agreement": i.agreement,
             "confidence": i.confidence, "decided_by": i.decided_by, "completed_at": i.completed_at} for i in items]
    with connection.cursor() as cursor:
        cursor.execute(_SETTLED_SQL, [orjson.dumps(rows).decode()])


def _decision(item: QueueItem, project: LabelingProject, counted: list | None) -> Decision | None:
    """What the rule decides for this item, or None when it leaves the item as it is."""
    if _is_final(item) or (item.state != State.OPEN and item.decided_by == Decided.DAWID_SKENE):
        return None  # a Dawid-Skene run decided it: the next run (new labels trigger one) decides again
    if item.state == State.OPEN and item.submitted_count < item.needed and counted is None and \
            not project.feedback_counts:
        return None  # fewer counted labels than needed (human and imported ones fill slots): nothing to read
    if counted is None:
        counted = _counted_values([item.pk], project=project).get(item.pk, [])
    if item.state == State.OPEN:
        if len(counted) < item.needed:
            return None
        return settle_decision(counted, needed=item.needed, project=project)
    return _decide_again(item, counted, project)


def _decide_again(item: QueueItem, counted: list, project: LabelingProject) -> Decision:
    """A complete or adjudication item with new labels: a confident majority (with enough labels) completes it,
    anything else leaves it for adjudication; no more raters are asked."""
    result = consensus(counted)
    confident = result is not None and not result.tie and result.agreement >= project.min_confidence
    if confident and len(counted) >= item.needed:
        return Decision(State.COMPLETE, item.needed, result)
    return Decision(State.ADJUDICATION, item.needed, result)


def _apply(item: QueueItem, decision: Decision, now: datetime) -> QueueItem:
    fields = _fields(item, decision, now)
    if fields:
        QueueItem.objects.filter(pk=item.pk).update(**fields)
        for name, value in fields.items():
            setattr(item, name, value)
    return item


_VALUES_SQL = (f"SELECT item_id, value FROM {Annotation._meta.db_table} WHERE item_id = ANY(%s) "
               "AND undone_at IS NULL AND NOT is_gold AND provenance = ANY(%s) ORDER BY id")


def _counted_values(item_ids: list[int], *, project: LabelingProject) -> dict[int, list]:
    """{item id: its counted label values, oldest first} (plain SQL: settling runs on every few submits)."""
    found: dict[int, list] = {}
    if connection.vendor != "postgresql":  # SQLite (the embedded demo): the same read through the ORM
        for item_id, value in (Annotation.objects.filter(item_id__in=list(item_ids), undone_at__isnull=True,
                                                         is_gold=False, provenance__in=counted_provenances(project))
                               .order_by("id").values_list("item_id", "value")):
            found.setdefault(item_id, []).append(value)
        return found
    with connection.cursor() as cursor:
        cursor.execute(_VALUES_SQL, [list(item_ids), counted_provenances(project)])
        for item_id, value in cursor.fetchall():
            found.setdefault(item_id, []).append(json.loads(value) if isinstance(value, str) else value)
    return found


def items_resettle(*, items: list[QueueItem], project: LabelingProject, now: datetime | None = None) -> dict:
    """Re-settle locked open or adjudication items under the project's current settings; returns counts.

    Each item's `needed` becomes the project's overlap, but never less than its labels and live leases
    (`submitted_count + leased_count`: nobody's slot is taken away), and the rule is applied from there:
    a tie or a doubt at the new overlap asks for extra raters again, so an extra already granted stays
    while the labels still call for it. An adjudication item that may now get more raters reopens (one
    that went there because no eligible rater was left goes back at the next sweep if that still holds).
    """
    now = now or timezone.now()
    counts = {"items": 0, "complete": 0, "adjudication": 0, "reopened": 0}
    targets = [i for i in items if not _is_final(i) and i.state in (State.OPEN, State.ADJUDICATION)]
    values = _counted_values([i.pk for i in targets], project=project) if targets else {}
    for item in targets:
        counts["items"] += 1
        before = item.state
        needed = max(project.overlap, item.submitted_count + item.leased_count)
        decision = settle_decision(values.get(item.pk, []), needed=needed, project=project)
        if item.decided_by == Decided.DAWID_SKENE and before != State.OPEN and decision.state != State.OPEN:
            continue  # the model's verdict stands until its next run, unless more raters may now be asked
        _apply(item, decision, now)
        if item.state != before:
            key = {State.COMPLETE: "complete", State.ADJUDICATION: "adjudication", State.OPEN: "reopened"}
            counts[key[item.state]] += 1
    return counts


def project_resettle(*, project: LabelingProject, now: datetime | None = None,
                     batch: int = RESETTLE_BATCH) -> dict:
    """Re-settle every open and adjudication item of the project (gold aside) under its current overlap,
    extra raters and minimum confidence, in batches in id order, each row-locked; then send what no
    eligible rater can take to adjudication. Returns {"items" (re-settled), "complete", "adjudication",
    "reopened" (the state each reached), "stuck" (then sent to adjudication: nobody left to label them)}.
    """
    now = now or timezone.now()
    totals = {"items": 0, "complete": 0, "adjudication": 0, "reopened": 0}
    waiting = QueueItem.objects.filter(project=project, is_gold=False,
                                       state__in=[State.OPEN, State.ADJUDICATION]).order_by("id")
    last = 0
    while True:
        with transaction.atomic():
            # Items only, in id order: a submit locks its lease and then its item, so it waits for
            # this batch at most, never in a cycle.
            items = list(waiting.filter(pk__gt=last).select_for_update()[:batch])
            if not items:
                break
            last = items[-1].pk
            for name, value in items_resettle(items=items, project=project, now=now).items():
                totals[name] += value
    totals["stuck"] = items_escalate_stuck(project=project)
    return totals


def project_update_overlap(*, project: LabelingProject, overlap: int | None = None,
                           max_extra_raters: int | None = None, min_confidence: float | None = None) -> dict:
    """Change how many raters a project's items need (and its extras, its minimum confidence) and apply it to
    the items already waiting: open ones and those in adjudication (see project_resettle). Returns its counts."""
    changes = {name: value for name, value in (("overlap", overlap), ("max_extra_raters", max_extra_raters),
                                               ("min_confidence", min_confidence)) if value is not None}
    for name, value in changes.items():
        setattr(project, name, value)
    project.full_clean()
    if changes:
        project.save(update_fields=list(changes))
    return project_resettle(project=project)


def _eligible_members_sql(project: LabelingProject) -> tuple[str, list]:
    """SQL for "a member who may still label item q" (active, unpaused, of an allowed kind and domain, and who
    has not leased, labeled, skipped or imported a label for it), correlated on `q.id`."""
    from django.contrib.auth import get_user_model

    user_table = get_user_model()._meta.db_table
    sql = (f"SELECT 1 FROM {Membership._meta.db_table} m JOIN {Rater._meta.db_table} r ON r.id = m.rater_id "
           f"JOIN {user_table} u ON u.id = r.user_id "
           "WHERE m.project_id = %s AND m.paused_at IS NULL AND r.is_active AND u.is_active")
    params: list = [project.pk]
    if project.allowed_kinds:
        sql += " AND r.kind = ANY(%s)"
        params.append(list(project.allowed_kinds))
    if project.domains:
        sql += " AND r.domains ?| %s"
        params.append(list(project.domains))
    sql += (f" AND NOT EXISTS (SELECT 1 FROM {Assignment._meta.db_table} a WHERE a.item_id = q.id "
            "AND a.rater_id = m.rater_id AND a.state = ANY(%s))"
            f" AND NOT EXISTS (SELECT 1 FROM {Annotation._meta.db_table} x WHERE x.item_id = q.id "
            "AND x.rater_id = m.rater_id AND x.provenance = %s AND x.undone_at IS NULL)")
    params += [list(Assignment.HELD), Annotation.Provenance.IMPORTED]
    return sql, params


def items_escalate_stuck(*, project: LabelingProject | None = None) -> int:
    """Send to adjudication the open items that still need labels but that no eligible member of the project
    can take (every active, unpaused, fitting member has labeled, skipped or holds it); returns how many.

    Only items someone has worked on (a label or a skip) and that nobody holds right now: a fresh item in a
    project whose raters have not been added yet is waiting, not stuck. One UPDATE per project (PostgreSQL);
    the share of the top label is then written for the few items that moved. Without a project: every
    active project.
    """
    if project is None:
        return sum(items_escalate_stuck(project=p) for p in LabelingProject.objects.filter(is_active=True))
    if not project.is_active:
        return 0
    with transaction.atomic():
        moved = _escalate_stuck_sql(project) if connection.vendor == "postgresql" else _escalate_stuck_orm(project)
        if moved:
            values = _counted_values(moved, project=project)
            for item_id in moved:
                result = consensus(values.get(item_id, []))
                share = result.agreement if result is not None else None
                QueueItem.objects.filter(pk=item_id).update(agreement=share, confidence=share)
    return len(moved)


def _escalate_stuck_sql(project: LabelingProject) -> list[int]:
    eligible, params = _eligible_members_sql(project)
    table = QueueItem._meta.db_table
    # Locked in id order, like every writer of several items; an item locked right now is being worked on.
    sql = (f"WITH stuck AS (SELECT q.id FROM {table} q "
           "WHERE q.project_id = %s AND q.state = %s AND NOT q.is_gold AND q.leased_count = 0 "
           "AND q.submitted_count < q.needed AND (q.submitted_count > 0 OR q.skipped_count > 0) "
           f"AND NOT EXISTS ({eligible}) ORDER BY q.id FOR UPDATE SKIP LOCKED) "
           f"UPDATE {table} SET state = %s, consensus = NULL, decided_by = '', completed_at = NULL "
           f"FROM stuck WHERE {table}.id = stuck.id RETURNING {table}.id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, State.OPEN, *params, State.ADJUDICATION])
        return sorted(row[0] for row in cursor.fetchall())


def _escalate_stuck_orm(project: LabelingProject) -> list[int]:
    """`_escalate_stuck_sql` without PostgreSQL's arrays, JSON operators and row locks (SQLite, the embedded
    demo, whose writers take turns): the same rule, the eligible members worked out in Python."""
    waiting = QueueItem.objects.filter(project=project, state=State.OPEN, is_gold=False, leased_count=0,
                                       submitted_count__lt=F("needed"))
    candidates = list(waiting.filter(Q(submitted_count__gt=0) | Q(skipped_count__gt=0)).order_by("id")
                      .values_list("id", flat=True))
    if not candidates:
        return []
    members = Membership.objects.filter(project=project, paused_at__isnull=True, rater__is_active=True,
                                        rater__user__is_active=True)
    if project.allowed_kinds:
        members = members.filter(rater__kind__in=list(project.allowed_kinds))
    eligible = [rater_id for rater_id, domains in members.values_list("rater_id", "rater__domains")
                if not project.domains or set(domains or []) & set(project.domains)]
    taken = set(Assignment.objects.filter(item_id__in=candidates, rater_id__in=eligible,
                                          state__in=list(Assignment.HELD)).values_list("item_id", "rater_id"))
    taken |= set(Annotation.objects.filter(item_id__in=candidates, rater_id__in=eligible, undone_at__isnull=True,
                                           provenance=Annotation.Provenance.IMPORTED)
                 .values_list("item_id", "rater_id"))
    stuck = [item_id for item_id in candidates if all((item_id, r) in taken for r in eligible)]
    if not stuck:
        return []
    waiting.filter(pk__in=stuck).update(state=State.ADJUDICATION, consensus=None, decided_by="", completed_at=None)
    return sorted(QueueItem.objects.filter(pk__in=stuck, state=State.ADJUDICATION).values_list("id", flat=True))


def item_set_gold(*, item: QueueItem, answer, now: datetime | None = None) -> QueueItem:
    """Make an item gold with its known answer (checked against the project): it leaves the regular queue.

    Labels it already has stay as they are (they counted when given); its live regular leases go back
    (their slots with them, and a late submit on one is refused), since a gold item takes no regular
    labels. Changing a gold item's answer leaves the answers already given scored as they were.
    """
    project = item.project
    try:
        answer = LabelSpec.of(project).check(answer)
    except InvalidLabel as exc:
        exc.field = "gold_answer"
        raise
    now = now or timezone.now()
    with transaction.atomic():
        # The queue's lock order: the leases first, then the item.
        leases = list(Assignment.objects.select_for_update().filter(item_id=item.pk, state=Assignment.State.LEASED,
                                                                    is_gold=False).order_by("id"))
        QueueItem.objects.select_for_update().filter(pk=item.pk).only("id").first()
        _leases_hand_back(leases, now=now)
        QueueItem.objects.filter(pk=item.pk).update(is_gold=True, gold_answer=answer)
    item.refresh_from_db()
    return item


def item_unset_gold(*, item: QueueItem, now: datetime | None = None) -> QueueItem:
    """Make a gold item regular again, and settle it by its regular labels alone.

    Its gold answers stay gold answers: their `correct` is frozen (they scored their raters when given)
    and they never count toward consensus. Live gold leases on it go back (a late submit on one is
    refused). The item returns to the regular queue and is re-settled under the project's current
    overlap, extra raters and minimum confidence (items_resettle). Its gold answer is kept on
    the row, for the record; a rater who answered it as gold is not served it again.
    """
    project = item.project
    now = now or timezone.now()
    with transaction.atomic():
        leases = list(Assignment.objects.select_for_update().filter(item_id=item.pk, state=Assignment.State.LEASED)
                      .order_by("id"))
        locked = QueueItem.objects.select_for_update().get(pk=item.pk)
        if locked.is_gold:
            _leases_hand_back([lease for lease in leases if lease.is_gold], now=now)
            # Answers given as gold before answers were marked so (older data) are marked now, by their lease.
            Annotation.objects.filter(item_id=item.pk, assignment__is_gold=True, is_gold=False).update(is_gold=True)
            QueueItem.objects.filter(pk=item.pk).update(is_gold=False)
            locked.is_gold = False
            locked.refresh_from_db(fields=["leased_count"])
            items_resettle(items=[locked], project=project, now=now)
    item.refresh_from_db()
    return item


def _leases_hand_back(leases: list[Assignment], *, now: datetime) -> None:
    """Expire locked live leases of one item, giving the slots they hold back (the item is locked too)."""
    if not leases:
        return
    Assignment.objects.filter(pk__in=[lease.pk for lease in leases]).update(
        state=Assignment.State.EXPIRED, holds_slot=False, finished_at=now)
    slots = sum(lease.holds_slot for lease in leases)
    if slots:
        QueueItem.objects.filter(pk=leases[0].item_id).update(leased_count=F("leased_count") - slots)
