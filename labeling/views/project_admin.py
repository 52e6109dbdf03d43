"""The project admin's pages (staff only): the projects, a project's counts, agreement, members and raters'
agreement with consensus; its feedback mapping rules with a preview before saving; feedback-vs-human conflicts."""
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Avg, Count, F, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from ..forms import FeedbackRuleForm
from ..labels import InvalidLabel, label_key
from ..models import Annotation, FeedbackRule, LabelingProject, Membership, QueueItem, Rater
from ..selectors import feedback_conflicts, gold_accuracy, project_stats
from ..selectors.quality import quality_figures
from ..services.feedback import feedback_rule_create, feedback_rule_update, feedback_rules_preview
from .display import label_text

# Free-text labels agree when their normalised texts do, which the database cannot compare: the
# agreement table reads at most this many of the latest labels of such a project.
TEXT_AGREEMENT_SAMPLE = 20_000
PREVIEW_EVENTS = 200
PREVIEW_SAMPLE = 20


# Every figure of these pages reads a whole project (at a million items, the agreement per rater
# alone takes seconds): they are computed at most once a minute per project, shared through the
# cache, and the page says when; `?fresh=1` recomputes them.
FIGURES_SECONDS = 60


def _figures(request, project: LabelingProject, name: str, compute) -> dict:
    key = f"labeling:figures:{name}:{project.pk}:{project.created_at.timestamp()}"
    figures = None if request.GET.get("fresh") else cache.get(key)
    if figures is None:
        figures = {**compute(project), "as_of": timezone.now()}
        cache.set(key, figures, FIGURES_SECONDS)
    return figures


@staff_member_required
def projects_page(request):
    rows = [{"project": p, **_figures(request, p, "stats", lambda p: project_stats(project=p))}
            for p in LabelingProject.objects.order_by("-is_active", "name")]
    return render(request, "labeling/admin_projects.html", {"rows": rows})


@staff_member_required
def project_page(request, pk: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    members = (Membership.objects.filter(project=project).select_related("rater__user")
               .order_by("rater__kind", "rater__user__username"))
    return render(request, "labeling/admin_project.html", {
        "project": project, "figures": _figures(request, project, "project", project_figures), "members": members,
        "rules": project.feedback_rules.count(),
        # The headline agreement is chance-corrected: the quality page's alpha (cached there, shared here).
        "quality": quality_figures(project=project, fresh=bool(request.GET.get("fresh"))),
    })


def project_figures(project: LabelingProject) -> dict:
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
        "agreement": _with_gold(rater_agreement(project), gold_accuracy(project=project)),
    }


def rater_agreement(project: LabelingProject) -> dict:
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


# --- feedback mapping rules

@staff_member_required
def rules_page(request, pk: int):
    """The project's rules in order, and the form to add one (its preview comes from `rule_form`)."""
    project = get_object_or_404(LabelingProject, pk=pk)
    return _rule_form_page(request, project, None)


@staff_member_required
def rule_edit_page(request, pk: int, rule_pk: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    rule = get_object_or_404(FeedbackRule, pk=rule_pk, project=project)
    return _rule_form_page(request, project, rule)


def _rule_form_page(request, project: LabelingProject, rule: FeedbackRule | None):
    """GET: the form. POST with `preview`: what the rule would do to recent events, written nowhere.
    POST with `save`: the rule is saved (checked by the feedback service) and the list shown again."""
    form = FeedbackRuleForm(request.POST or None, project=project, rule=rule)
    preview = None
    if request.method == "POST" and form.is_valid():
        candidate = form.rule(instance=rule)
        if "save" in request.POST:
            try:
                saved = _rule_save(candidate, rule, by=request.user)
            except InvalidLabel as exc:
                form.add_error("label", str(exc))
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Rule “{saved}” saved.")
                if request.headers.get("HX-Request"):
                    # htmx loads the list as a whole page instead of swapping it into the preview.
                    return HttpResponse(status=204, headers={"HX-Redirect": reverse("label-admin-rules",
                                                                                    args=[project.pk])})
                return redirect("label-admin-rules", pk=project.pk)
        else:
            preview = rule_preview(project, candidate)
    context = {"project": project, "form": form, "rule": rule, "preview": preview,
               "rules": project.feedback_rules.order_by("position", "id"), "preview_events": PREVIEW_EVENTS}
    if request.headers.get("HX-Request"):
        return render(request, "labeling/_rule_preview.html", context)
    return render(request, "labeling/admin_rules.html", context)


def _rule_save(candidate: FeedbackRule, rule: FeedbackRule | None, *, by) -> FeedbackRule:
    fields = {"signal": candidate.signal, "op": candidate.op, "threshold": candidate.threshold,
              "label": candidate.label, "use_event_value": candidate.use_event_value, "name": candidate.name,
              "position": candidate.position, "enabled": candidate.enabled}
    if rule is None:
        return feedback_rule_create(project=candidate.project, created_by=by, **fields)
    return feedback_rule_update(rule=rule, **fields)


def rule_preview(project: LabelingProject, candidate: FeedbackRule) -> dict:
    """The latest events run through the project's enabled rules with the candidate in its place (first
    match wins, as when the rules are applied): what the candidate itself would map, and a sample."""
    disabled = not candidate.enabled
    candidate.enabled = True  # a rule saved switched off is previewed as it would work once switched on
    others = [r for r in project.feedback_rules.filter(enabled=True) if r.pk != candidate.pk]
    result = feedback_rules_preview(project=project, rules=[*others, candidate], limit=PREVIEW_EVENTS)
    mine = [row for row in result["rows"] if row["rule"] is candidate]
    labels: dict[str, int] = {}
    for row in mine:
        if row["mapped"]:
            text = label_text(project, row["label"])
            labels[text] = labels.get(text, 0) + 1
    return {
        "events": len(result["rows"]), "matched": len(mine), "mapped": sum(r["mapped"] for r in mine),
        "unmappable": sum(not r["mapped"] for r in mine), "in_queue": sum(r["mapped"] and r["in_queue"] for r in mine),
        "to_other_rules": sum(1 for r in result["rows"] if r["rule"] is not None and r["rule"] is not candidate),
        "labels": sorted(labels.items(), key=lambda kv: -kv[1]),
        "sample": [{**row, "label_text": label_text(project, row["label"]) if row["mapped"] else ""}
                   for row in mine[:PREVIEW_SAMPLE]],
        "disabled": disabled,
    }


@staff_member_required
def conflicts_page(request, pk: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    conflicts = [{**c, "human_text": label_text(project, c["human"]),
                  "feedback_text": label_text(project, c["feedback"])}
                 for c in feedback_conflicts(project=project, limit=200)]
    return render(request, "labeling/admin_conflicts.html", {"project": project, "conflicts": conflicts})
