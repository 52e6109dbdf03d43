"""Label quality of a project: every figure of its quality page, kept in the cache, and one rater's figures.

What is counted: human and imported labels, never a gold answer (an answer given while its item was
gold), never a withdrawn one. Process-feedback labels and model-output sources are judged against the
humans (bias), never part of the agreement between raters.

Every figure reads a whole project (seconds at a million labels), so `quality_figures` keeps the
last computation in the shared cache with the watermark it saw (the newest label, consensus run and
adjudication). A page view then costs one small query for the current watermark: equal, the stored
figures are current; newer, the page shows the stored ones and says so while a Celery task recomputes
them (once at a time per project). Only a project never computed (or evicted) is computed inline.
"""
import logging
import time
from datetime import date

import numpy as np
from django.core.cache import cache
from django.utils import timezone

from ..models import Adjudication, Annotation, ConsensusRun, LabelingProject, Membership, QueueItem, Rater
from ..quality import label_distribution_bias
from . import quality_sections as sections
from .consensus import consensus_run_latest_done
from .quality_reads import (
    Coder,
    consensus_read,
    feedback_read,
    gold_read,
    labels_read,
    model_labels_read,
    rater_model_read,
    rows,
    timing_read,
)

log = logging.getLogger(__name__)

STORE_SECONDS = 7 * 86400
EPOCH = date(1970, 1, 1).toordinal()
# Recomputing takes seconds: a lost task frees the project for another after this long.
COMPUTING_SECONDS = 600


def quality_watermark(*, project: LabelingProject) -> str:
    """What the figures depend on, in one small query: the newest label, consensus run and adjudication."""
    row = rows(f"SELECT (SELECT id FROM {Annotation._meta.db_table} WHERE project_id = %s ORDER BY id DESC LIMIT 1), "
               f"(SELECT max(id) FROM {ConsensusRun._meta.db_table} WHERE project_id = %s AND status = %s), "
               f"(SELECT max(id) FROM {Adjudication._meta.db_table} WHERE project_id = %s)",
               [project.pk, project.pk, ConsensusRun.Status.DONE, project.pk])[0]
    return ".".join(str(v or 0) for v in row)


def quality_compute(*, project: LabelingProject) -> dict:
    """Every figure of the project quality page, computed now (seconds at a million labels)."""
    started = time.monotonic()
    watermark = quality_watermark(project=project)
    coder = Coder(project)
    labels = labels_read(project, coder)
    gold = gold_read(project, coder)
    run = consensus_run_latest_done(project=project)
    agreement, m = sections.agreement(project, coder, labels)
    members = list(Membership.objects.filter(project=project).values_list("rater_id", flat=True))
    raters, pooled = sections.raters(project, coder, labels, consensus_read(project, coder), gold,
                                     timing_read(project), members, run)
    kinds = sections.kinds(project, coder, raters, pooled, run)
    human = sections.human_majority(m)
    return {
        "watermark": watermark, "label_kind": project.label_kind,
        "counts": {"labels": int(len(labels["codes"])), "items": int(len(np.unique(labels["items"]))),
                   "raters": int(len(np.unique(labels["raters"]))), "gold_answers": int(len(gold["ids"]))},
        "agreement": agreement, "weeks": sections.alpha_weeks(project, labels, m), "raters": raters, "kinds": kinds,
        "gold": sections.gold_confusion(coder, gold),
        "bias": {"p": sections.BIAS_P, "v": sections.BIAS_V, "confusion_rate": sections.CONFUSION_RATE,
                 "raters": sorted((r for r in raters if r["biased"]), key=lambda r: -r["cramers_v"]),
                 "rules": sections.rule_bias(project, feedback_read(project, coder), human),
                 "sources": sections.source_bias(coder, model_labels_read(project, coder), human)},
        "cost": sections.cost(project, kinds),
        "run": {"id": run.pk, "finished_at": run.finished_at, "method": run.get_method_display()} if run else None,
        "computed_at": timezone.now(), "seconds": time.monotonic() - started,
    }


def _keys(project: LabelingProject) -> tuple[str, str]:
    # The creation time tells apart projects of two databases that share the cache (tests, say).
    base = f"labeling:quality:{project.pk}:{project.created_at.timestamp()}"
    return f"{base}:figures", f"{base}:computing"


def quality_figures_refresh(*, project: LabelingProject) -> dict:
    """Compute the figures and keep them in the cache as the project's latest (the task, and `?fresh=1`)."""
    figures = quality_compute(project=project)
    stored, computing = _keys(project)
    cache.set(stored, figures, STORE_SECONDS)
    cache.delete(computing)
    return figures


def quality_figures(*, project: LabelingProject, fresh: bool = False) -> dict:
    """The project's figures; `stale` is True when newer labels (or a newer run or adjudication) exist than
    they saw: their recomputation is then queued, and the stored figures serve meanwhile."""
    stored, computing = _keys(project)
    figures = None if fresh else cache.get(stored)
    if figures is None:
        return {**quality_figures_refresh(project=project), "stale": False}
    if figures["watermark"] == quality_watermark(project=project):
        return {**figures, "stale": False}
    if cache.add(computing, True, COMPUTING_SECONDS):  # one recomputation at a time per project
        try:
            from ..tasks import refresh_quality_figures

            refresh_quality_figures.delay(project.pk)
        except Exception:  # the broker is down: the figures stay stale until a later view tries again
            cache.delete(computing)
            log.exception("project %s: could not queue the recomputation of its quality figures", project.pk)
    return {**figures, "stale": True}


def paused_members(*, project: LabelingProject) -> dict[int, dict]:
    """{rater id: {since, reason, by}} of the project's paused members (read at each view: a pause is no label)."""
    return {rater_id: {"since": since, "reason": reason, "by": by} for rater_id, since, reason, by in
            Membership.objects.filter(project=project, paused_at__isnull=False)
            .values_list("rater_id", "paused_at", "paused_reason", "paused_by__username")}


RATER_SORTS = ("username", "kind", "labels", "gold_answered", "gold_accuracy", "ds_accuracy", "kappa", "agreement",
               "median_seconds", "skip_rate", "cramers_v", "paused")


def rater_table(*, figures: dict, paused: dict[int, dict], sort: str = "username") -> list[dict]:
    """The per-rater rows with their pause state, sorted by a column (`-column`: descending); empty cells last."""
    descending = sort.startswith("-")
    column = sort.lstrip("-")
    if column not in RATER_SORTS:
        column, descending = "username", False
    table = [{**row, "paused": row["rater_id"] in paused, "pause": paused.get(row["rater_id"])}
             for row in figures["raters"]]
    present = sorted((r for r in table if r[column] is not None), key=lambda r: r["username"])
    present.sort(key=lambda r: r[column], reverse=descending)  # stable: equal cells stay in name order
    return present + sorted((r for r in table if r[column] is None), key=lambda r: r["username"])


def rater_quality(*, project: LabelingProject, rater: Rater) -> dict:
    """One rater in one project, from their own labels only: confusion against consensus and under the latest
    Dawid-Skene run, the bias test, weekly labels and gold accuracy, and their latest gold answers."""
    coder = Coder(project)
    labels = labels_read(project, coder, rater_id=rater.pk)
    gold = gold_read(project, coder, rater_id=rater.pk)
    cons = consensus_read(project, coder, items=labels["items"]).get(labels["items"]) if len(labels["items"]) \
        else np.zeros(0, dtype=np.int64)
    known = cons >= 0
    names = [sections.display(coder, c) for c in coder.classes]
    k = len(names)
    against = bias = None
    if k <= sections.TABLE_CLASSES:
        table = np.bincount(cons[known] * k + labels["codes"][known], minlength=k * k).reshape(k, k)
        against = _matrix(table, names)
        test = label_distribution_bias(table.sum(axis=0), table.sum(axis=1)) if table.any() else None
        if test is not None and test.chi2 is not None:
            bias = {"chi2": test.chi2, "p_value": test.p_value, "cramers_v": test.cramers_v, "n": test.n,
                    "biased": test.p_value < sections.BIAS_P and test.cramers_v >= sections.BIAS_V,
                    "rater": table.sum(axis=0).tolist(), "consensus": table.sum(axis=1).tolist(), "classes": names}
    model = None
    if (found := rater_model_read(project, rater.pk)) is not None:
        run_id, classes, confusion, accuracy = found
        model = {**_matrix(np.asarray(confusion, dtype=float), [sections.display(coder, c) for c in classes],
                           rates=True), "accuracy": accuracy, "run": run_id}
    return {"labels": int(len(labels["codes"])), "compared": int(known.sum()),
            "agreement": float((labels["codes"][known] == cons[known]).mean()) if known.any() else None,
            "against": against, "model": model, "bias": bias, "trend": _trend(labels, gold),
            "gold_answers": _gold_answers(coder, gold), "gold_answered": int(len(gold["ids"])),
            "gold_accuracy": float(gold["correct"].mean()) if len(gold["ids"]) else None}


def _trend(labels: dict, gold: dict) -> list[dict]:
    """Per ISO week (UTC) in which the rater labeled or answered gold: labels, gold answers, gold accuracy."""
    label_weeks, gold_weeks = (labels["days"] + 3) // 7, (gold["days"] + 3) // 7
    out = []
    for week in np.union1d(label_weeks, gold_weeks).tolist():
        answered = gold_weeks == week
        out.append({"week": sections.week_start(week * 7 - 3).isoformat(),
                    "labels": int((label_weeks == week).sum()), "gold": int(answered.sum()),
                    "gold_accuracy": float(gold["correct"][answered].mean()) if answered.any() else None})
    return out


def _gold_answers(coder: Coder, gold: dict, limit: int = 50) -> list[dict]:
    """The rater's latest gold answers with the record each was about."""
    latest = np.argsort(-gold["ids"])[:limit]
    items = gold["items"][latest].tolist()
    records = dict(QueueItem.objects.filter(pk__in=items).values_list("pk", "record__external_id"))
    classes = coder.classes

    def shown(code):
        return sections.display(coder, classes[code]) if code >= 0 else "?"

    return [{"item_id": item, "record": records.get(item, ""), "answer": shown(gold["answers"][i]),
             "gold": shown(gold["gold"][i]), "correct": bool(gold["correct"][i]),
             "day": date.fromordinal(EPOCH + int(gold["days"][i]))}
            for item, i in zip(items, latest.tolist())]


def _matrix(table: np.ndarray, names: list[str], *, rates: bool = False) -> dict:
    """A confusion table for a heat-map: rows = the truth (consensus, or the model's), columns = what was given."""
    totals = table.sum(axis=1)
    out = []
    for t, name in enumerate(names):
        if totals[t]:
            share = table[t] / totals[t]
            out.append({"truth": name, "total": float(totals[t]), "cells": [
                {"value": float(table[t, j]), "share": float(share[j]), "right": j == t} for j in range(len(names))]})
    return {"classes": names, "rows": out, "rates": rates}
