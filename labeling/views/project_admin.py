"""The project admin's pages (staff only): the projects, a project's counts, agreement, members and raters'
agreement with consensus; its feedback mapping rules with a preview before saving; feedback-vs-human conflicts."""
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from config.access import staff_required

from ..forms import FeedbackRuleForm
from ..labels import InvalidLabel
from ..models import FeedbackRule, LabelingProject
from ..selectors import feedback_conflicts, project_stats
from ..selectors.projects import (
    feedback_rule_count,
    feedback_rule_list,
    project_admin_list,
    project_figures,
    project_member_list,
)
from ..selectors.quality import quality_figures
from ..services.feedback import feedback_rule_create, feedback_rule_update, feedback_rules_preview
from .display import label_text

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


@staff_required
def projects_page(request):
    rows = [{"project": p, **_figures(request, p, "stats", lambda p: project_stats(project=p))}
            for p in project_admin_list()]
    return render(request, "labeling/admin_projects.html", {"rows": rows})


@staff_required
def project_page(request, pk: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    members = project_member_list(project=project)
    return render(request, "labeling/admin_project.html", {
        "project": project, "members": members,
        "figures": _figures(request, project, "project", lambda p: project_figures(project=p)),
        "rules": feedback_rule_count(project=project),
        # The headline agreement is chance-corrected: the quality page's alpha (cached there, shared here).
        "quality": quality_figures(project=project, fresh=bool(request.GET.get("fresh"))),
    })


# --- feedback mapping rules

@staff_required
def rules_page(request, pk: int):
    """The project's rules in order, and the form to add one (its preview comes from `rule_form`)."""
    project = get_object_or_404(LabelingProject, pk=pk)
    return _rule_form_page(request, project, None)


@staff_required
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
               "rules": feedback_rule_list(project=project), "preview_events": PREVIEW_EVENTS}
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
    others = [r for r in feedback_rule_list(project=project, enabled_only=True) if r.pk != candidate.pk]
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


@staff_required
def conflicts_page(request, pk: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    conflicts = [{**c, "human_text": label_text(project, c["human"]),
                  "feedback_text": label_text(project, c["feedback"])}
                 for c in feedback_conflicts(project=project, limit=200)]
    return render(request, "labeling/admin_conflicts.html", {"project": project, "conflicts": conflicts})
