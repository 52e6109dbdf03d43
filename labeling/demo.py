"""The labeling part of `manage.py demo`: raters of each kind, two projects fed by the demo source, its
admitted batch in their queues with two gold items, and feedback mapped to labels by one rule. Safe to run again."""
import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from collection import services as collection_services
from collection.models import Batch, Source
from validation.services import batch_validate

from . import services
from .models import FeedbackRule, LabelingProject, QueueItem, Rater

RATERS = [("rater-generalist", Rater.Kind.GENERALIST, []), ("rater-expert", Rater.Kind.EXPERT, ["payments"]),
          ("rater-enduser", Rater.Kind.END_USER, [])]
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

    The clean batch goes through ingest and validation here, as a worker would take it, so the queue
    is full when the demo prints its logins; a worker that gets the batch's messages later finds the
    work done (every step claims its batch first). Returns what the demo prints.
    """
    raters = [_rater(name, kind, domains, password) for name, kind, domains in RATERS]
    orders = _project(ORDERS, source, instructions=INSTRUCTIONS, overlap=3, gold_rate=0.1,
                      allowed_kinds=[Rater.Kind.GENERALIST, Rater.Kind.EXPERT, Rater.Kind.END_USER])
    experts = _project(EXPERTS, source, instructions="The same orders, for payments experts: one expert label each.",
                       overlap=1, gold_rate=0.0, allowed_kinds=[Rater.Kind.EXPERT], domains=["payments"])
    services.project_add_raters(project=orders, raters=raters)
    services.project_add_raters(project=experts, raters=[r for r in raters if r.kind == Rater.Kind.EXPERT])

    if clean_batch.status == Batch.Status.RECEIVED:
        collection_services.batch_ingest(batch_id=clean_batch.pk, actor=actor)
    if Batch.objects.filter(pk=clean_batch.pk, status=Batch.Status.INGESTED).exists():
        batch_validate(batch_id=clean_batch.pk, actor=actor)
    for project in (orders, experts):
        services.project_queue_admitted(project=project, actor=actor)
    _gold(orders)
    if not orders.feedback_rules.exists():
        services.feedback_rule_create(project=orders, name="customer disputed the order", signal="thumbs",
                                      op=FeedbackRule.Op.EQ, threshold="down", label="fraud")
    _feedback(source, clean_batch)
    services.feedback_apply_rules(project=orders)
    return {"raters": raters, "projects": [orders, experts],
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
