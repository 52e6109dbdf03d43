"""Process feedback becomes labels: a project's rules map feedback events on its items to annotations."""
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from collection.models import FeedbackEvent

from ..labels import InvalidLabel, LabelSpec, rule_applies
from ..models import Annotation, FeedbackRule, LabelingProject, QueueItem
from .queue import item_settle

CHUNK = 2000


def feedback_label(rules: list[FeedbackRule], spec: LabelSpec, signal: str, value):
    """(rule, label) of the first rule that maps this event, (rule, None) when its label does not fit the
    project, or (None, None) when no rule matches."""
    for rule in rules:
        if rule.enabled and rule.signal == signal and rule_applies(rule.op, rule.threshold, value):
            try:
                return rule, spec.check(value if rule.use_event_value else rule.label)
            except InvalidLabel:
                return rule, None
    return None, None


def _events(project: LabelingProject, signals):
    """Feedback of the project's sources about records in its queue."""
    queued = QueueItem.objects.filter(project=project, record_id=OuterRef("record_id"))
    return (FeedbackEvent.objects.filter(source__in=project.sources.all(), record__isnull=False, signal__in=signals)
            .filter(Exists(queued)))


def feedback_apply_rules(*, project: LabelingProject) -> dict:
    """Map the feedback on the project's items through its enabled rules into process-feedback annotations.

    Idempotent: an event becomes at most one annotation per item (a unique index), so running it again
    adds only what is new. Items whose counts change are settled when the project counts feedback.
    Returns {"created", "unmappable" (a rule matched but its label does not fit the project)}.
    """
    rules = list(project.feedback_rules.filter(enabled=True).order_by("position", "id"))
    if not rules:
        return {"created": 0, "unmappable": 0}
    spec = LabelSpec.of(project)
    done = Annotation.objects.filter(project=project, feedback_event=OuterRef("pk"))
    events = _events(project, {r.signal for r in rules}).exclude(Exists(done)).order_by("id")
    created = unmappable = 0
    last = 0
    while True:
        chunk = list(events.filter(pk__gt=last).values("id", "record_id", "signal", "value", "actor",
                                                      "occurred_at")[:CHUNK])
        if not chunk:
            break
        last = chunk[-1]["id"]
        items = dict(QueueItem.objects.filter(project=project, record_id__in={e["record_id"] for e in chunk})
                     .values_list("record_id", "id"))
        rows = []
        for event in chunk:
            rule, label = feedback_label(rules, spec, event["signal"], event["value"])
            if rule is None:
                continue
            if label is None:
                unmappable += 1
                continue
            rows.append(Annotation(item_id=items[event["record_id"]], project=project,
                                   provenance=Annotation.Provenance.PROCESS_FEEDBACK, actor=event["actor"],
                                   value=label, rule=rule, feedback_event_id=event["id"],
                                   created_at=event["occurred_at"]))
        created += _annotations_add(project, rows)
    return {"created": created, "unmappable": unmappable}


def _annotations_add(project: LabelingProject, rows: list[Annotation]) -> int:
    if not rows:
        return 0
    touched = sorted({a.item_id for a in rows})
    with transaction.atomic():
        before = Annotation.objects.filter(item_id__in=touched, provenance=Annotation.Provenance.PROCESS_FEEDBACK).count()
        Annotation.objects.bulk_create(rows, ignore_conflicts=True)  # a concurrent run: the first insert wins
        feedback = (Annotation.objects.filter(item=OuterRef("pk"), provenance=Annotation.Provenance.PROCESS_FEEDBACK)
                    .values("item").annotate(n=Count("id")).values("n"))
        items = list(QueueItem.objects.select_for_update().filter(pk__in=touched).order_by("id"))
        QueueItem.objects.filter(pk__in=touched).update(feedback_count=Coalesce(Subquery(feedback), 0))
        added = Annotation.objects.filter(item_id__in=touched,
                                          provenance=Annotation.Provenance.PROCESS_FEEDBACK).count() - before
        if project.feedback_counts:
            for item in items:
                item_settle(item=item, project=project)
    return added


def feedback_rules_preview(*, project: LabelingProject, rules: list[FeedbackRule] | None = None,
                           limit: int = 200) -> dict:
    """What rules (the project's, or unsaved ones from a form) would make of the latest `limit` feedback events
    of the project's sources. Writes nothing.

    Returns {"rows": [{event, rule, label, mapped, in_queue}], "labels": {label: count}, "matched",
    "unmatched", "unmappable"}.
    """
    rules = list(rules if rules is not None else project.feedback_rules.filter(enabled=True))
    rules.sort(key=lambda r: (r.position, r.pk or 0))
    spec = LabelSpec.of(project)
    events = list(FeedbackEvent.objects.filter(source__in=project.sources.all())
                  .filter(Q(signal__in={r.signal for r in rules}) if rules else Q())
                  .order_by("-occurred_at", "-id")[:limit])
    queued = set(QueueItem.objects.filter(project=project, record_id__in={e.record_id for e in events if e.record_id})
                 .values_list("record_id", flat=True))
    rows, labels = [], {}
    matched = unmappable = 0
    for event in events:
        rule, label = feedback_label(rules, spec, event.signal, event.value)
        mapped = rule is not None and label is not None
        matched += rule is not None
        unmappable += rule is not None and label is None
        if mapped:
            key = repr(label)
            labels[key] = labels.get(key, 0) + 1
        rows.append({"event": event, "rule": rule, "label": label, "mapped": mapped,
                     "in_queue": event.record_id in queued})
    return {"rows": rows, "labels": labels, "matched": matched, "unmatched": len(events) - matched,
            "unmappable": unmappable}


def _rule_label(project: LabelingProject, label, use_event_value: bool):
    """A fixed label checked against the project's label kind (InvalidLabel on field "label")."""
    if use_event_value:
        return label
    try:
        return LabelSpec.of(project).check(label)
    except InvalidLabel as exc:
        exc.field = "label"
        raise


def feedback_rule_create(*, project: LabelingProject, signal: str, op: str = FeedbackRule.Op.ANY, threshold=None,
                         label=None, use_event_value: bool = False, name: str = "", position: int | None = None,
                         enabled: bool = True, created_by=None) -> FeedbackRule:
    """A mapping rule; a fixed label is checked against the project's label kind (InvalidLabel)."""
    rule = FeedbackRule(project=project, signal=signal, op=op, threshold=threshold,
                        label=_rule_label(project, label, use_event_value), use_event_value=use_event_value,
                        name=name, position=project.feedback_rules.count() if position is None else position,
                        enabled=enabled, created_by=created_by)
    rule.full_clean()
    rule.save()
    return rule


RULE_FIELDS = {"signal", "op", "threshold", "label", "use_event_value", "name", "position", "enabled"}


def feedback_rule_update(*, rule: FeedbackRule, **fields) -> FeedbackRule:
    """Change a rule (the same checks as a new one). Labels it already made stay; new events follow the new rule."""
    unknown = set(fields) - RULE_FIELDS
    if unknown:
        raise TypeError(f"not rule fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.label = _rule_label(rule.project, rule.label, rule.use_event_value)
    rule.full_clean()
    rule.save()
    return rule
