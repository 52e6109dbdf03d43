"""The labeling part of `manage.py demo`: raters of each kind, two projects fed by the demo source, its
admitted batch in their queues with two gold items, feedback mapped to labels by one rule, and a history of
labels imported from another tool, settled and fitted by Dawid-Skene so label quality shows. Safe to run again."""
import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from collection import services as collection_services
from collection.models import Batch, Source

from . import services
from .models import ConsensusRun, FeedbackRule, LabelingProject, QueueItem, Rater
from .selectors.adjudication import adjudication_waiting
from .selectors.consensus import consensus_run_latest_done
from .services.labels_io import ImportLine

RATERS = [("rater-generalist", Rater.Kind.GENERALIST, []), ("rater-expert", Rater.Kind.EXPERT, ["payments"]),
          ("rater-enduser", Rater.Kind.END_USER, [])]
# Generalists whose labels come from another tool (imported): how often each gives the source's label, and
# what they give otherwise (cy leans to "ok": she lets fraud through).
HISTORY = {"history-ann": 0.9, "history-bo": 0.75, "history-cy": None}
HISTORY_SKIP, HISTORY_ITEMS, HISTORY_WEEKS = 60, 120, 6
# Orders on which five people of the other tool disagreed (two against two): past the extra raters, they
# wait for an adjudicator.
DISPUTED = [("history-ann", "fraud"), ("history-bo", "ok"), ("history-cy", "ok"), ("rater-generalist", "fraud"),
            ("rater-enduser", "unsure")]
DISPUTED_ITEMS = 4
HOURLY_RATES = {Rater.Kind.GENERALIST: 18, Rater.Kind.EXPERT: 75, Rater.Kind.END_USER: 0}
ORDERS = "demo: is this order fraud?"
EXPERTS = "demo: fraud escalations (experts)"
CHOICES = [{"value": "ok", "label": "Looks fine", "hotkey": "1"},
           {"value": "fraud", "label": "Fraud", "hotkey": "2"},
           {"value": "unsure", "label": "Can't tell", "hotkey": "3"}]
INSTRUCTIONS = """Look at the order and say whether it looks **fraudulent**.

- Large baskets of many items from a *new* customer are the usual pattern.
- Choose **Can't tell** rather than guess; skip (`S`) an order you cannot judge at all.
"""
GOLD_ITEMS = 2
FEEDBACK_EVENTS = 40


def demo_labeling(*, source: Source, clean_batch: Batch, password: str, actor: str = "command:demo") -> dict:
    """Make (or find) the demo's raters and projects and fill the projects' queues from the clean batch.

    The clean batch has been taken through the pipeline already (the demo command runs it), so its admitted
    records fill the queues now, before the demo prints its logins. Returns what the demo prints.
    """
    raters = [_rater(name, kind, domains, password) for name, kind, domains in RATERS]
    history = [_rater(name, Rater.Kind.GENERALIST, [], password) for name in HISTORY]
    orders = _project(ORDERS, source, instructions=INSTRUCTIONS, overlap=3, gold_rate=0.1,
                      allowed_kinds=[Rater.Kind.GENERALIST, Rater.Kind.EXPERT, Rater.Kind.END_USER],
                      hourly_rates=HOURLY_RATES)
    experts = _project(EXPERTS, source, instructions="The same orders, for payments experts: one expert label each.",
                       overlap=1, gold_rate=0.0, allowed_kinds=[Rater.Kind.EXPERT], domains=["payments"])
    services.project_add_raters(project=orders, raters=raters + history)
    services.project_add_raters(project=experts, raters=[r for r in raters if r.kind == Rater.Kind.EXPERT])

    for project in (orders, experts):
        services.project_queue_admitted(project=project, actor=actor)
    _gold(orders)
    if not orders.feedback_rules.exists():
        services.feedback_rule_create(project=orders, name="customer disputed the order", signal="thumbs",
                                      op=FeedbackRule.Op.EQ, threshold="down", label="fraud")
    _feedback(source, clean_batch)
    services.feedback_apply_rules(project=orders)
    run = _consensus(orders, imported=_history(orders))
    _disputed(orders)
    return {"raters": raters, "projects": [orders, experts], "quality": orders, "run": run,
            "adjudication": adjudication_waiting(project=orders),
            "items": {p.name: QueueItem.objects.filter(project=p).count() for p in (orders, experts)}}


def _rater(username: str, kind: str, domains: list, password: str) -> Rater:
    rater = Rater.objects.filter(user__username=username).first()
    if rater is None:
        if get_user_model().objects.filter(username=username).exists():
            return services.rater_profile_add(user=get_user_model().objects.get(username=username), kind=kind,
                                              domains=domains)
        rater = services.rater_create(username=username, kind=kind, domains=domains, password=password,
                                      email=f"{username}@example.com")
    return rater


def _project(name: str, source: Source, **options) -> LabelingProject:
    return LabelingProject.objects.filter(name=name).first() or services.project_create(
        name=name, choices=CHOICES, sources=[source], **options)


def _gold(project: LabelingProject) -> None:
    """The first items become gold, their known answer the label the source sent with the record."""
    missing = GOLD_ITEMS - QueueItem.objects.filter(project=project, is_gold=True).count()
    if missing <= 0:
        return
    for item in (QueueItem.objects.filter(project=project, is_gold=False, submitted_count=0, leased_count=0)
                 .select_related("record", "project").order_by("id")[:missing]):
        if item.record.label in project.choice_values():
            services.item_set_gold(item=item, answer=item.record.label)


def _feedback(source: Source, batch: Batch) -> None:
    """Thumbs up or down from the app's users about some of the batch's orders (one key each: sent once)."""
    rng = random.Random(batch.pk)
    records = list(batch.records.order_by("id").values_list("external_id", "label")[:FEEDBACK_EVENTS])
    now = timezone.now()
    events = [{"external_id": external_id, "signal": "thumbs",
               "value": "down" if (label == "fraud") != (rng.random() < 0.2) else "up",
               "actor": f"app-user-{i % 7}", "occurred_at": now - timedelta(minutes=5 * i),
               "idempotency_key": f"demo-thumbs-{external_id}"}
              for i, (external_id, label) in enumerate(records)]
    if events:
        collection_services.feedback_receive(source=source, events=events)


def _history(project: LabelingProject) -> int:
    """Labels from another tool: the history raters' answers on HISTORY_ITEMS items after the first HISTORY_SKIP
    (the demo's own raters get fresh items first), dated over the past HISTORY_WEEKS weeks; the same lines every
    time (seeded), so a second run imports nothing. The items they settle complete, or ask for an extra rater
    on a tie. Returns how many labels were new."""
    items = list(QueueItem.objects.filter(project=project, is_gold=False).select_related("record")
                 .order_by("id")[HISTORY_SKIP:HISTORY_SKIP + HISTORY_ITEMS])
    now = timezone.now()
    lines = []
    for name, accuracy in HISTORY.items():
        rng = random.Random(f"demo-{name}")
        for i, item in enumerate(items):
            truth = item.record.label if item.record.label in ("ok", "fraud") else "ok"
            when = now - timedelta(weeks=HISTORY_WEEKS) * (1 - i / len(items)) + timedelta(minutes=rng.randint(1, 600))
            lines.append({"external_id": item.record.external_id, "rater": name,
                          "value": _history_answer(rng, truth, accuracy),
                          "created_at": min(when, now - timedelta(minutes=1)).isoformat()})
    return _import(project, lines)


def _history_answer(rng: random.Random, truth: str, accuracy: float | None) -> str:
    if accuracy is None:  # cy: calls most frauds "ok", and gets about half of the real "ok"s right
        weights = {"ok": 0.7, "fraud": 0.2, "unsure": 0.1} if truth == "fraud" else \
            {"ok": 0.55, "fraud": 0.2, "unsure": 0.25}
        return rng.choices(list(weights), weights=list(weights.values()))[0]
    if rng.random() < accuracy:
        return truth
    return "unsure" if rng.random() < 0.6 else ("fraud" if truth == "ok" else "ok")


def _import(project: LabelingProject, lines: list[dict]) -> int:
    """Import the lines; returns how many labels were new. Lines that conflict with work done since (a demo
    rater who labeled or holds one of these orders) are left out, the rest imported."""
    numbered = [ImportLine(line=n, data=data) for n, data in enumerate(lines, start=1)]
    try:
        return services.labels_import(project=project, lines=numbered)["created"]
    except services.LabelsRejected as exc:
        refused = {error["line"] for error in exc.errors}
        kept = [line for line in numbered if line.line not in refused]
        return services.labels_import(project=project, lines=kept)["created"] if kept else 0


def _disputed(project: LabelingProject) -> None:
    """DISPUTED_ITEMS orders after the history's, each with the five DISPUTED labels: a tie with no extra rater
    left, so settling sends them to adjudication (imported after the consensus run, which would otherwise
    decide them by its model at once)."""
    items = (QueueItem.objects.filter(project=project, is_gold=False).select_related("record")
             .order_by("id")[HISTORY_SKIP + HISTORY_ITEMS:HISTORY_SKIP + HISTORY_ITEMS + DISPUTED_ITEMS])
    now = timezone.now()
    _import(project, [{"external_id": item.record.external_id, "rater": name, "value": value,
                       "created_at": (now - timedelta(days=2, hours=i)).isoformat()}
                      for item in items for i, (name, value) in enumerate(DISPUTED)])


def _consensus(project: LabelingProject, *, imported: int) -> ConsensusRun | None:
    """One consensus run (the project's method: Dawid-Skene), executed here; the worker that gets its message
    finds it done. Only when the project has no finished run yet or this call imported labels."""
    latest = consensus_run_latest_done(project=project)
    if latest is not None and not imported:
        return latest
    run = services.consensus_run_request(project=project, trigger=ConsensusRun.Trigger.DEMAND)
    return services.consensus_run_execute(run=run)
