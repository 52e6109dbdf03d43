"""The label quality pages (staff only): a project's agreement, raters, gold, bias and cost; one rater's page
with their confusion matrices, trend and gold answers, where staff pause and resume them."""
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from config.access import staff_required

from ..models import LabelingProject, Rater
from ..selectors import rater_get
from ..selectors.quality import RATER_SORTS, paused_members, quality_figures, rater_quality, rater_table
from ..services.raters import rater_pause, rater_resume

RATERS_PER_PAGE = 50
BIASED_SHOWN = 50

# The rater table's columns: (sort key, heading, what the heading's title explains).
COLUMNS = [
    ("username", "Rater", ""), ("kind", "Kind", ""), ("labels", "Labels", "counted labels (human and imported)"),
    ("gold_answered", "Gold answers", ""), ("gold_accuracy", "Gold accuracy", "share of gold answers right"),
    ("ds_accuracy", "Dawid-Skene accuracy", "expected share right under the latest Dawid-Skene run"),
    ("kappa", "κ vs consensus", "Cohen's kappa of the rater's labels against the items' consensus"),
    ("agreement", "Equal to consensus", ""), ("median_seconds", "Median s / label", "lease to submit"),
    ("skip_rate", "Skip rate", "skipped / (submitted + skipped)"),
    ("cramers_v", "Bias (Cramér's V)", "label mix against consensus on the same items"), ("paused", "Paused", ""),
]


def _rater(rater_id: int) -> Rater:
    rater = rater_get(rater_id=rater_id)
    if rater is None:
        raise Http404("No such rater")
    return rater


@staff_required
def quality_page(request, pk: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    figures = quality_figures(project=project, fresh=bool(request.GET.get("fresh")))
    sort = request.GET.get("sort") or "username"
    if sort.lstrip("-") not in RATER_SORTS:
        sort = "username"
    rows = rater_table(figures=figures, paused=paused_members(project=project), sort=sort)
    page = Paginator(rows, RATERS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = [_shown(row) for row in page.object_list]
    page.previous_url = _query(request, page=page.previous_page_number()) if page.has_previous() else None
    page.next_url = _query(request, page=page.next_page_number()) if page.has_next() else None
    weeks = figures["weeks"]
    return render(request, "labeling/quality_project.html", {
        "project": project, "figures": figures, "page": page, "sort": sort,
        "biased": [_shown(row) for row in figures["bias"]["raters"][:BIASED_SHOWN]],
        "confusing_kinds": [k for k in figures["kinds"] if k["confused"]],
        "columns": [_column(request, key, title, note, sort) for key, title, note in COLUMNS],
        "alpha_series": {"weeks": [w["label"] for w in weeks], "alpha": [w["alpha"] for w in weeks],
                         "low": [w["low"] for w in weeks], "high": [w["high"] for w in weeks],
                         "items": [w["items"] for w in weeks], "level": figures["agreement"]["level"]},
    })


# Numbers are formatted here rather than by `floatformat`, which costs ~0.1 ms a call: a page of 50
# raters has hundreds of them (docs/benchmarks.md, label quality pages).
NUMBER_COLUMNS = [("labels", None), ("gold_answered", None), ("gold_accuracy", 2), ("ds_accuracy", 2), ("kappa", 2),
                  ("agreement", 2), ("median_seconds", 1), ("skip_rate", 2)]


def _number(value, digits: int | None) -> str:
    if value is None:
        return "–"
    return str(value) if digits is None else f"{value:.{digits}f}"


def _shown(row: dict) -> dict:
    """A rater row with its numbers as text: `cells` in the table's order, and the bias test's figures."""
    return {**row, "cells": [_number(row[key], digits) for key, digits in NUMBER_COLUMNS],
            "v_text": _number(row["cramers_v"], 2), "chi2_text": _number(row["chi2"], 1),
            "p_text": "–" if row["p_value"] is None else f"{row['p_value']:.2g}"}


def _query(request, **changes) -> str:
    query = request.GET.copy()
    query.pop("fresh", None)
    for name, value in changes.items():
        query[name] = value
    return f"?{query.urlencode()}"


def _column(request, key: str, title: str, note: str, sort: str) -> dict:
    """A heading that sorts by its column: ascending first, a second click descending (numbers: highest first)."""
    current = sort.lstrip("-") == key
    descending = sort.startswith("-")
    first = key if key in ("username", "kind") else f"-{key}"
    target = (key if descending else f"-{key}") if current else first
    return {"key": key, "title": title, "note": note, "url": _query(request, sort=target, page=1),
            "order": ("descending" if descending else "ascending") if current else "none"}


@staff_required
def rater_page(request, pk: int, rater_id: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    rater = _rater(rater_id)
    figures = quality_figures(project=project)
    row = next((r for r in figures["raters"] if r["rater_id"] == rater.pk), None)
    quality = rater_quality(project=project, rater=rater)
    trend = quality["trend"]
    return render(request, "labeling/quality_rater.html", {
        "project": project, "rater": rater, "row": row, "quality": quality, "figures": figures,
        "pause": paused_members(project=project).get(rater.pk),
        "trend_series": {"weeks": [w["week"] for w in trend], "labels": [w["labels"] for w in trend],
                         "gold_accuracy": [w["gold_accuracy"] for w in trend], "gold": [w["gold"] for w in trend]},
    })


@staff_required
@require_POST
def rater_pause_view(request, pk: int, rater_id: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    rater = _rater(rater_id)
    reason = request.POST.get("reason", "").strip()[:500] or f"paused by {request.user.get_username()}"
    if rater_pause(project=project, rater_id=rater.pk, reason=reason, by=request.user):
        messages.success(request, f"{rater.user.get_username()} is paused in {project.name}: their live item went "
                                  f"back to the queue.")
    else:
        messages.info(request, f"{rater.user.get_username()} was already paused, or is not a member of the project.")
    return redirect("label-quality-rater", pk=project.pk, rater_id=rater.pk)


@staff_required
@require_POST
def rater_resume_view(request, pk: int, rater_id: int):
    project = get_object_or_404(LabelingProject, pk=pk)
    rater = _rater(rater_id)
    if rater_resume(project=project, rater=rater, by=request.user):
        messages.success(request, f"{rater.user.get_username()} may label {project.name} again; the gold-accuracy "
                                  f"gate counts their gold answers afresh from now.")
    else:
        messages.info(request, f"{rater.user.get_username()} was not paused.")
    return redirect("label-quality-rater", pk=project.pk, rater_id=rater.pk)
