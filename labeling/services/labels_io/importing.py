"""Labels from another tool into a project: every line checked and located, written all or nothing, idempotent
by content, counted in the items' slots, and the items they touch settled."""
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.db import connection, transaction
from django.utils import timezone

from collection.models import Record
from collection.timestamps import TimestampInvalid, timestamp_parse

from ...labels import InvalidLabel, LabelSpec, same_label
from ...models import Annotation, Assignment, LabelingProject, Membership, QueueItem, Rater
from ...selectors.consensus import counted_labels_query
from .parsing import IMPORT_FIELDS, ImportLine, LabelsRejected, csv_value, line_error

# A label may be dated a little ahead of this server's clock (another machine's), not more.
FUTURE_SKEW = timedelta(minutes=5)
LOOKUP_CHUNK = 5_000


@dataclass
class _Planned:
    line: int
    source_id: int | None
    external_id: str | None
    username: str | None
    value: object
    created_at: datetime | None
    item_id: int | None = None
    rater_id: int | None = None
    bad: bool = False  # a problem of its own: still looked up, to report every problem at once, never written


@dataclass
class _Check:
    errors: list = field(default_factory=list)

    def add(self, line: int, field_name: str | None, value, code: str, detail: str) -> None:
        self.errors.append(line_error(line, field_name, value, code, detail))


def labels_import(*, project: LabelingProject, lines: Iterable[ImportLine], now: datetime | None = None,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Import labels into a project as `imported` annotations and re-settle the items they touch.

    Each line names a record by `external_id` (its current revision, which must be an item of the
    project, and not a gold one), the `source` (optional when the project has one), a `rater` by
    username (a member of the project), a `value` that fits the project's label kind, and an optional
    ISO 8601 `created_at` (default: now). Every line is checked first; any problem raises
    LabelsRejected listing all of them, and nothing is written. Returns {"created", "unchanged", "items"}.

    Imported labels take slots like human ones: each raises the item's `submitted_count`, and `needed`
    grows to cover it if the slots were full (an item with `needed` imported labels is not served
    to anyone), so live leases are never taken away. The labels and the slot counters commit together;
    the items are then settled in batches (a run stopped in between is completed by running it again).
    """
    now = now or timezone.now()
    check = _Check()
    planned = _check_lines(project, list(lines), now, check)
    _resolve(project, planned, check)
    planned = [p for p in planned if not p.bad and p.item_id is not None and p.rater_id is not None]
    planned = _without_duplicates(planned, check)
    if check.errors:
        _against_existing(planned, check)  # to report conflicts together with the rest
        raise LabelsRejected(check.errors)
    with transaction.atomic():
        # Items first, in id order, as every writer of the queue locks them: a concurrent submit or
        # import on the same item waits, so what is checked below stays true until the commit.
        items = list(QueueItem.objects.select_for_update().filter(pk__in={p.item_id for p in planned})
                     .order_by("id"))
        gold = {i.pk for i in items if i.is_gold}
        for p in planned:
            if p.item_id in gold:
                check.add(p.line, "external_id", p.external_id, "gold_item", _GOLD)
        new, unchanged = _against_existing(planned, check)
        if check.errors:
            raise LabelsRejected(check.errors)
        _annotations_write(project, new)
        added: dict[int, int] = {}
        for p in new:
            added[p.item_id] = added.get(p.item_id, 0) + 1
        touched = [i for i in items if i.pk in added]
        for item in touched:
            item.submitted_count += added[item.pk]
            # Full slots are not refused: `needed` grows so that the check constraint holds and the
            # live leases on the item keep theirs.
            item.needed = max(item.needed, item.submitted_count + item.leased_count)
        _counters_write(touched)
        # Items whose labels reach `needed` but are not settled: those just touched, and any that an
        # earlier run of this import left so (it stopped between its commit and its settling).
        due = [i.pk for i in items if i.pk in added or (i.state == QueueItem.State.OPEN
                                                        and i.submitted_count >= i.needed)]
    _settle(project, due, now, progress)
    return {"created": len(new), "unchanged": unchanged, "items": len(touched)}


SETTLE_BATCH = 200


def _settle(project: LabelingProject, item_ids: list[int], now: datetime,
            progress: Callable[[int], None] | None) -> None:
    """Settle the items, `SETTLE_BATCH` per transaction, each batch locked in id order: a rater's submit on
    one of them waits for one batch at most, and `next` skips only that batch's rows."""
    from ..settling import items_settle

    for chunk in _chunks(sorted(item_ids), SETTLE_BATCH):
        with transaction.atomic():
            items = list(QueueItem.objects.select_for_update().filter(pk__in=chunk).order_by("id"))
            items_settle(items=items, project=project, now=now, counted=_counted(project, items))
        if progress:
            progress(len(chunk))


# The rows travel as one JSON document that PostgreSQL parses in C (as feedback events do): 50,000 imported
# labels took 10 s through Django's bulk_create and 3 s this way, on the same (busy) machine.
_INSERT_SQL = f"""
INSERT INTO {Annotation._meta.db_table} (item_id, project_id, rater_id, actor, provenance, value, is_gold, created_at)
SELECT e.item_id, %(project)s, e.rater_id, '', %(provenance)s, e.value, false, e.created_at
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS e(item_id bigint, rater_id bigint, value jsonb, created_at timestamptz)
"""


def _annotations_write(project: LabelingProject, lines: list[_Planned]) -> None:
    if connection.vendor != "postgresql":
        Annotation.objects.bulk_create(
            [Annotation(item_id=p.item_id, project_id=project.pk, rater_id=p.rater_id, value=p.value,
                        provenance=Annotation.Provenance.IMPORTED, created_at=p.created_at) for p in lines],
            batch_size=500)
        return
    with connection.cursor() as cursor:
        for chunk in _chunks(lines, 10_000):
            rows = [{"item_id": p.item_id, "rater_id": p.rater_id, "value": p.value, "created_at": p.created_at}
                    for p in chunk]
            cursor.execute(_INSERT_SQL, {"project": project.pk, "provenance": Annotation.Provenance.IMPORTED,
                                         "rows": orjson.dumps(rows).decode()})


_COUNTERS_SQL = f"""
UPDATE {QueueItem._meta.db_table} q SET submitted_count = v.submitted, needed = v.needed
  FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::int[]) AS submitted, unnest(%s::int[]) AS needed) v
 WHERE q.id = v.id
"""


def _counters_write(items: list[QueueItem]) -> None:
    """Write the locked items' new slot counters, in one statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        QueueItem.objects.bulk_update(items, ["submitted_count", "needed"], batch_size=500)
        return
    with connection.cursor() as cursor:
        for chunk in _chunks(items):
            cursor.execute(_COUNTERS_SQL, [[i.pk for i in chunk], [i.submitted_count for i in chunk],
                                           [i.needed for i in chunk]])


def _counted(project: LabelingProject, items: list[QueueItem]) -> dict[int, list | None]:
    """{item id: its counted label values, oldest first} for the items settling will read (those with as many
    labels as they need, or already decided); None for the others, which settling leaves as they are unread."""
    due = [i.pk for i in items if i.state != QueueItem.State.OPEN or i.submitted_count >= i.needed
           or project.feedback_counts]
    found: dict[int, list | None] = {pk: [] for pk in due}
    if due:
        for item_id, value in (counted_labels_query(project=project).filter(item_id__in=due).order_by("id")
                               .values_list("item_id", "value")):
            found[item_id].append(value)
    return found


_GOLD = "the record is a gold item of the project: gold answers score raters, they are not imported as labels"


def _check_lines(project: LabelingProject, lines: list[ImportLine], now: datetime, check: _Check) -> list[_Planned]:
    """What each line says, checked on its own (shape, source, value, time); a line with a problem is marked bad."""
    spec = LabelSpec.of(project)
    sources = dict(project.sources.values_list("name", "id"))
    planned = []
    for entry in lines:
        n, data = entry.line, entry.data
        if entry.malformed:
            check.add(n, None, None, "malformed", entry.malformed)
            continue
        if not isinstance(data, dict):
            check.add(n, None, None, "malformed", "a label is an object {external_id, rater, value, ...}")
            continue
        before = len(check.errors)
        for name in sorted(set(data) - set(IMPORT_FIELDS)):
            check.add(n, name, None, "unknown_field", f"unknown field; a label has {list(IMPORT_FIELDS)}")
        external_id = data.get("external_id")
        if not isinstance(external_id, str) or not external_id or len(external_id) > 200:
            check.add(n, "external_id", external_id, "missing" if external_id is None else "invalid",
                      "external_id is the record's id, a text of 1 to 200 characters")
            external_id = None
        source_id = _source_of(data.get("source"), sources, n, check)
        username = data.get("rater")
        if not isinstance(username, str) or not username:
            check.add(n, "rater", username, "missing" if username is None else "invalid",
                      "rater is the rater's username")
            username = None
        value = None
        if "value" not in data or data["value"] is None:
            check.add(n, "value", None, "missing", "value is missing")
        else:
            raw = csv_value(spec.kind, data["value"]) if entry.from_csv else data["value"]
            try:
                value = spec.check(raw)
            except InvalidLabel as exc:
                check.add(n, "value", data["value"], "invalid_label", str(exc))
        created_at = _moment(data.get("created_at"), now, n, check)
        planned.append(_Planned(n, source_id, external_id, username, value, created_at,
                                bad=len(check.errors) > before))
    return planned


def _source_of(name, sources: dict, line: int, check: _Check) -> int | None:
    if name is None:
        if len(sources) == 1:
            return next(iter(sources.values()))
        check.add(line, "source", None, "missing", f"name the source: the project has {len(sources)} "
                                                   f"({', '.join(sorted(sources)) or 'none'})")
        return None
    if not isinstance(name, str) or name not in sources:
        check.add(line, "source", name, "unknown_source",
                  f"not a source of this project ({', '.join(sorted(sources))})")
        return None
    return sources[name]


def _moment(value, now: datetime, line: int, check: _Check) -> datetime | None:
    if value is None:
        return now
    try:
        moment = timestamp_parse(value)  # a time without a zone is UTC, as for records and feedback
    except TimestampInvalid as exc:
        check.add(line, "created_at", value, "invalid_timestamp", f"created_at {exc}")
        return None
    if moment > now + FUTURE_SKEW:
        check.add(line, "created_at", value, "invalid_timestamp", "created_at is in the future")
        return None
    return moment


def _chunks(values: list, size: int = LOOKUP_CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _resolve(project: LabelingProject, planned: list[_Planned], check: _Check) -> None:
    """Find each line's item (the current record of its source and external id, queued in the project) and rater
    (by username, a member of the project); set `item_id` and `rater_id`, or report why not."""
    names = sorted({p.username for p in planned if p.username})
    raters = {}
    for chunk in _chunks(names):
        raters.update(Rater.objects.filter(user__username__in=chunk).values_list("user__username", "id"))
    members = set(Membership.objects.filter(project=project, rater_id__in=list(raters.values()))
                  .values_list("rater_id", flat=True))
    by_source: dict[int, set] = {}
    for p in planned:
        if p.source_id is not None and p.external_id:
            by_source.setdefault(p.source_id, set()).add(p.external_id)
    records = {}
    for source_id, ids in by_source.items():
        for chunk in _chunks(sorted(ids)):
            for external_id, record_id in (Record.objects.current().filter(source_id=source_id, external_id__in=chunk)
                                           .values_list("external_id", "id")):
                records[(source_id, external_id)] = record_id
    items = {}
    for chunk in _chunks(sorted(records.values())):
        for record_id, item_id, is_gold in (QueueItem.objects.filter(project=project, record_id__in=chunk)
                                            .values_list("record_id", "id", "is_gold")):
            items[record_id] = (item_id, is_gold)
    for p in planned:
        rater_id = raters.get(p.username)
        if not p.username:
            pass  # reported with the line's own problems
        elif rater_id is None:
            check.add(p.line, "rater", p.username, "unknown_rater", "no rater has this username")
        elif rater_id not in members:
            check.add(p.line, "rater", p.username, "not_a_member",
                      "this rater is not a member of the project: add them first")
        else:
            p.rater_id = rater_id
        record_id = records.get((p.source_id, p.external_id))
        if p.source_id is None or not p.external_id:
            pass
        elif record_id is None:
            check.add(p.line, "external_id", p.external_id, "unknown_record",
                      "no current record with this external_id in the source")
        elif record_id not in items:
            check.add(p.line, "external_id", p.external_id, "not_queued",
                      "the record is not an item of this project (queue its batch first)")
        elif items[record_id][1]:
            check.add(p.line, "external_id", p.external_id, "gold_item", _GOLD)
        else:
            p.item_id = items[record_id][0]


def _without_duplicates(planned: list[_Planned], check: _Check) -> list[_Planned]:
    first: dict[tuple, int] = {}
    kept = []
    for p in planned:
        key = (p.item_id, p.rater_id)
        if key in first:
            check.add(p.line, "rater", p.username, "duplicate",
                      f"line {first[key]} already gives this rater's label on this record")
            continue
        first[key] = p.line
        kept.append(p)
    return kept


def _against_existing(planned: list[_Planned], check: _Check) -> tuple[list[_Planned], int]:
    """(lines to write, how many are already imported as they are); a rater's other imported value, their
    human label on the item or their lease on it is a conflict."""
    existing: dict[tuple, tuple] = {}
    rater_ids = sorted({p.rater_id for p in planned})
    for chunk in _chunks(sorted({p.item_id for p in planned})):
        for item_id, rater_id, provenance, value in (
                Annotation.objects.filter(item_id__in=chunk, rater_id__in=rater_ids, undone_at__isnull=True,
                                          provenance__in=[Annotation.Provenance.HUMAN,
                                                          Annotation.Provenance.IMPORTED])
                .values_list("item_id", "rater_id", "provenance", "value")):
            # A human label wins over an imported one in what is reported: it is the harder conflict.
            if existing.get((item_id, rater_id), ("",))[0] != Annotation.Provenance.HUMAN:
                existing[(item_id, rater_id)] = (provenance, value)
    leased = set()
    for chunk in _chunks(sorted({p.item_id for p in planned})):
        leased.update(Assignment.objects.filter(item_id__in=chunk, rater_id__in=rater_ids,
                                                state=Assignment.State.LEASED).values_list("item_id", "rater_id"))
    new, unchanged = [], 0
    for p in planned:
        found = existing.get((p.item_id, p.rater_id))
        if found is None and (p.item_id, p.rater_id) in leased:
            # Their submit would follow: one rater, two labels on the item.
            check.add(p.line, "rater", p.username, "leased",
                      "this rater holds a lease on this record in Sieve right now; import after it ends")
        elif found is None:
            new.append(p)
        elif found[0] == Annotation.Provenance.HUMAN:
            check.add(p.line, "rater", p.username, "already_labeled",
                      "this rater already labeled this record in Sieve; an import does not replace it")
        elif same_label(found[1], p.value):
            unchanged += 1
        else:
            check.add(p.line, "value", p.value, "conflict",
                      f"an earlier import gave this rater's label on this record as {found[1]!r}")
    return new, unchanged
