"""Reads of the project admin's pages: a project's figures (items by state, agreement, each rater's agreement with
consensus and gold answers), its members and its feedback rules."""
from django.db.models import Avg, Count, F, Q, QuerySet

from ..labels import label_key
from ..models import Annotation, FeedbackRule, LabelingProject, Membership, QueueItem, Rater
from . import gold_accuracy, project_stats

# Free-text labels agree when their normalised texts do, which the database cannot compare: the
# agreement table reads at most this many of the latest labels of such a project.
TEXT_AGREEMENT_SAMPLE = 20_000


def project_admin_list() -> QuerySet[LabelingProject]:
    """Every project, the active ones first, by name."""
    return LabelingProject.objects.order_by("-is_active", "name")


def project_member_list(*, project: LabelingProject) -> QuerySet[Membership]:
    """The project's members with their users, by rater kind and username."""
    return (Membership.objects.filter(project=project).select_related("rater__user")
            .order_by("rater__kind", "rater__user__username"))


def feedback_rule_list(*, project: LabelingProject, enabled_only: bool = False) -> QuerySet[FeedbackRule]:
    """The project's feedback rules in the order they are applied (position, then id)."""
    rules = project.feedback_rules.order_by("position", "id")
    return rules.filter(enabled=True) if enabled_only else rules


def feedback_rule_count(*, project: LabelingProject) -> int:
    """How many feedback rules the project has, enabled or not."""
    return project.feedback_rules.count()


def project_figures(*, project: LabelingProject) -> dict:
    """Items by state, the agreement of complete items, and each rater's agreement and gold answers."""
    items = QueueItem.objects.filter(project=project, is_gold=False)
    summary = items.filter(state=QueueItem.State.COMPLETE).aggregate(
        mean=Avg("agreement"), unanimous=Count("id", filter=Q(agreement=1)),
        majority=Count("id", filter=Q(agreement__lt=1, consensus__isnull=False)),
        no_consensus=Count("id", filter=Q(consensus__isnull=True)))
    return {
        "stats": project_stats(project=project), "summary": summary,
        # An item whose labels tied asks more raters than the overlap: it waits for a tie-breaker.
        "tie_breakers": items.filter(state=QueueItem.State.OPEN, needed__gt=project.overlap).count(),
        "agreement": _with_gold(rater_agreement(project=project), gold_accuracy(project=project)),
    }


def rater_agreement(*, project: LabelingProject) -> dict:
    """Per rater: their labels on complete items that have a consensus, and the share equal to it.

    Choice and rating labels are stored normalised (a multiple choice in the project's order), so the
    database compares them exactly over every item; free text is compared in Python, as consensus does."""
    labels = Annotation.objects.filter(project=project, provenance=Annotation.Provenance.HUMAN, is_gold=False,
                                       undone_at__isnull=True, item__state=QueueItem.State.COMPLETE,
                                       item__consensus__isnull=False, item__is_gold=False)
    if project.label_kind != LabelingProject.LabelKind.TEXT:
        # Grouped by the rater's id alone: their names are looked up for the few rows, not joined to every label.
        counts = list(labels.values("rater_id").annotate(labeled=Count("id"),
                                                         agreed=Count("id", filter=Q(value=F("item__consensus")))))
        names = dict((pk, (name, kind)) for pk, name, kind in Rater.objects.filter(
            pk__in=[c["rater_id"] for c in counts]).values_list("pk", "user__username", "kind"))
        rows = [{**c, "rater__user__username": names[c["rater_id"]][0], "rater__kind": names[c["rater_id"]][1]}
                for c in counts]
        return {"rows": [_share(r) for r in sorted(rows, key=lambda r: r["rater__user__username"])], "sample": None}
    latest = list(labels.order_by("-created_at").values_list(
        "rater_id", "rater__user__username", "rater__kind", "value", "item__consensus")[:TEXT_AGREEMENT_SAMPLE])
    by_rater: dict[int, dict] = {}
    for rater_id, username, kind, value, agreed_label in latest:
        row = by_rater.setdefault(rater_id, {"rater_id": rater_id, "rater__user__username": username,
                                             "rater__kind": kind, "labeled": 0, "agreed": 0})
        row["labeled"] += 1
        row["agreed"] += label_key(value) == label_key(agreed_label)
    rows = sorted(by_rater.values(), key=lambda r: r["rater__user__username"])
    return {"rows": [_share(r) for r in rows],
            "sample": TEXT_AGREEMENT_SAMPLE if len(latest) == TEXT_AGREEMENT_SAMPLE else None}


def _with_gold(agreement: dict, gold: list[dict]) -> dict:
    """Each rater's gold answers beside their agreement (a rater who only answered gold gets a row too)."""
    rows = {row["rater_id"]: {**row, "gold_answered": 0, "gold_accuracy": None} for row in agreement["rows"]}
    for g in gold:
        row = rows.setdefault(g["rater_id"], {"rater_id": g["rater_id"], "username": g["username"], "kind": "",
                                              "labeled": 0, "agreed": 0, "share": None})
        row.update(gold_answered=g["answered"], gold_accuracy=g["accuracy"])
    return {**agreement, "rows": sorted(rows.values(), key=lambda r: r["username"])}


def _share(row: dict) -> dict:
    return {"rater_id": row["rater_id"], "username": row["rater__user__username"], "kind": row["rater__kind"],
            "labeled": row["labeled"], "agreed": row["agreed"],
            "share": row["agreed"] / row["labeled"] if row["labeled"] else None}

