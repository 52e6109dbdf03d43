"""The sections of the label quality page, each computed from the arrays `quality_reads` gives.

Agreement comes from the pure `labeling.quality` package. Two small things it has no function for
are done here over many raters at once: Cohen's kappa of one count table, and the rater-against-
consensus chi-square of every rater in one numpy pass (the same test as
`labeling.quality.bias.label_distribution_bias`, which takes ~3 ms a call through scipy: 3 s for
1,000 raters; a test holds the two equal).
"""
import math
from collections import Counter
from datetime import date, timedelta

import numpy as np
from scipy import stats

from ..labels import MULTIPLE, RATING, SINGLE, TEXT
from ..models import ConsensusRun, FeedbackRule, LabelingProject, QueueItem, Rater
from ..quality import (
    LabelMatrix,
    cohen_kappa_pairs,
    confused_pairs,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_bootstrap,
    majority_vote,
    multilabel_alpha,
    observed_agreement,
)
from .quality_reads import Coder, Lookup, rater_names, rows

# A rater is flagged as biased when their label mix departs from consensus on the same items with
# p < BIAS_P (chi-square, 2 x K) AND Cramér's V >= BIAS_V: on thousands of labels any difference
# is "significant", so the effect size decides and the p-value only guards small samples.
BIAS_P, BIAS_V = 0.01, 0.1
# A rater kind "confuses" true class A with B when at least this share of A's items get B.
CONFUSION_RATE = 0.2
BOOTSTRAP = 1000
# Beyond this many classes no K x K table is kept per rater (free text, many answer sets): kappa then
# comes from the diagonal and the marginals, and there is no chi-square or confusion matrix.
TABLE_CLASSES = 50
# Free text: beyond this many items x distinct answers the per-item vote table would not fit in memory;
# alpha is then computed from sparse counts (nominal only) and without an interval.
DENSE_CELLS = 20_000_000


def level(project: LabelingProject) -> str:
    return "ordinal" if project.label_kind == RATING else "nominal"


def kappa_weights(project: LabelingProject) -> str | None:
    return "quadratic" if project.label_kind == RATING else None


def week_start(day: int) -> date:
    """The Monday that starts the ISO week of a UTC day number (days since 1970-01-01, a Thursday)."""
    return date(1970, 1, 1) + timedelta(days=int(day) - (int(day) + 3) % 7)


def display(coder: Coder, value) -> str:
    """A class as people read it: the choice's label, a rating, the choices of a set, a text."""
    if coder.kind in (SINGLE, MULTIPLE):
        names = {c["value"]: c.get("label") or c["value"] for c in coder.project.choices or []}
        if isinstance(value, list | tuple):
            return " + ".join(names.get(v, str(v)) for v in value) or "(none)"
        return names.get(value, str(value))
    return str(value)


def table_kappa(table: np.ndarray, weights: str | None) -> float | None:
    """Cohen's kappa of one K x K count table: 1 - sum(w O) / sum(w E), w as `cohen_kappa_pairs` defines it."""
    n = table.sum()
    if not n:
        return None
    index = np.arange(len(table))
    w = (index[:, None] != index[None, :]).astype(float) if weights is None else \
        np.abs(index[:, None] - index[None, :]).astype(float) ** (2 if weights == "quadratic" else 1)
    chance = (w * np.outer(table.sum(axis=1), table.sum(axis=0)) / n).sum()
    return None if chance == 0 else float(1.0 - (w * table).sum() / chance)


def chi_square_many(rater: np.ndarray, consensus: np.ndarray) -> dict:
    """Per row, the chi-square test of the 2 x K table [rater counts; consensus counts]: chi2, p, Cramér's V
    (NaN where undefined: fewer than two classes used, or a side with no count). Without Yates's
    correction and with unused classes dropped, as `label_distribution_bias`."""
    rater, consensus = rater.astype(float), consensus.astype(float)
    column = rater + consensus
    a, b = rater.sum(axis=1), consensus.sum(axis=1)
    total = a + b
    used = (column > 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ea, eb = a[:, None] * column / total[:, None], b[:, None] * column / total[:, None]
        terms = np.where(column > 0, (rater - ea) ** 2 / ea + (consensus - eb) ** 2 / eb, 0.0)
    defined = (used >= 2) & (a > 0) & (b > 0)
    chi2 = np.where(defined, np.nan_to_num(terms).sum(axis=1), np.nan)
    dof = np.maximum(used - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.sqrt(chi2 / total)  # min(2, K) - 1 = 1
    return {"chi2": chi2, "p": np.where(defined, stats.chi2.sf(np.nan_to_num(chi2), dof), np.nan), "v": v}


def label_matrix(items: np.ndarray, raters: np.ndarray, codes: np.ndarray, k: int) -> LabelMatrix:
    """`encode` for labels already coded 0..k-1 (ids sorted, as `encode` orders them), without its Python
    loop over the distinct ids: at 200,000 items that loop took half a second."""
    item_ids, item_index = np.unique(items, return_inverse=True)
    rater_ids, rater_index = np.unique(raters, return_inverse=True)
    return LabelMatrix(item_index.astype(np.int32), rater_index.astype(np.int32), codes.astype(np.int32),
                       tuple(item_ids.tolist()), tuple(rater_ids.tolist()), tuple(range(k)))


def _alpha_and_interval(m: LabelMatrix, at: str, *, n_boot: int = BOOTSTRAP) -> tuple:
    alpha = krippendorff_alpha(m, level=at)
    return alpha, (krippendorff_alpha_bootstrap(m, level=at, n_boot=n_boot) if alpha is not None else None)


def _sparse_nominal(items: np.ndarray, codes: np.ndarray) -> tuple[float | None, float | None]:
    """(observed agreement, nominal alpha) from counts per (item, value): free text with many distinct answers."""
    item_index = np.unique(items, return_inverse=True)[1]
    per_item = np.bincount(item_index)
    pair, counts = np.unique(np.stack([item_index, codes]), axis=1, return_counts=True)
    m_u = per_item[pair[0]].astype(float)
    ok = m_u >= 2
    n = float(per_item[per_item >= 2].sum())
    if n < 2:
        return None, None
    observed = float((counts[ok] * (counts[ok] - 1) / (m_u[ok] - 1)).sum()) / n
    totals = np.bincount(pair[1][ok], weights=counts[ok])
    d_e = 1.0 - float((totals * (totals - 1)).sum()) / (n * (n - 1))
    return observed, (None if d_e <= 0 else 1.0 - (1.0 - observed) / d_e)


def agreement(project: LabelingProject, coder: Coder, labels: dict) -> tuple[dict, LabelMatrix | None]:
    """Observed agreement, Cohen's kappa per pair, Fleiss's kappa, Krippendorff's alpha with its interval."""
    out = {"level": level(project), "observed": None, "alpha": None, "interval": None, "alpha_interval": None,
           "interval_interval": None, "fleiss": None, "fleiss_note": "no labels yet", "per_class": [],
           "pairs": None, "sparse": False}
    if not len(labels["codes"]):
        return out, None
    k = coder.size
    if project.label_kind == TEXT and len(np.unique(labels["items"])) * k > DENSE_CELLS:
        out["observed"], out["alpha"] = _sparse_nominal(labels["items"], labels["codes"])
        out.update(sparse=True, fleiss_note="not computed: too many distinct answers")
        return out, None
    m = label_matrix(labels["items"], labels["raters"], labels["codes"], k)
    out["observed"] = observed_agreement(m)
    out["alpha"], out["interval"] = _alpha_and_interval(m, out["level"])
    if project.label_kind == RATING:
        out["alpha_interval"], out["interval_interval"] = _alpha_and_interval(m, "interval")
    out["fleiss"] = fleiss_kappa(m)
    if out["fleiss"] is None:
        per_item = np.bincount(m.items, minlength=m.n_items)
        low, high = int(per_item.min()), int(per_item.max())
        out["fleiss_note"] = (f"not defined: items have {low}-{high} labels" if low != high
                              else "not defined: every item has a single label" if low < 2
                              else "not defined: every label is the same")
    else:
        out["fleiss_note"] = ""
    if project.label_kind == MULTIPLE:
        sets = coder.classes
        per_class = multilabel_alpha(labels["items"], labels["raters"], [sets[c] for c in labels["codes"]],
                                     coder.choices)
        out["per_class"] = [{"value": display(coder, c), "alpha": a} for c, a in per_class.items()]
    pairs = cohen_kappa_pairs(m, min_shared=project.kappa_min_shared, weights=kappa_weights(project))
    kappas = sorted((p for p in pairs if p.kappa is not None), key=lambda p: p.kappa)
    values = np.array([p.kappa for p in kappas])
    lowest = kappas[:10]
    names = rater_names({p.rater_a for p in lowest} | {p.rater_b for p in lowest})
    out["pairs"] = {"count": len(pairs), "defined": len(kappas), "min_shared": project.kappa_min_shared,
                    "weights": kappa_weights(project), "median": float(np.median(values)) if len(values) else None,
                    "mean": float(values.mean()) if len(values) else None,
                    "lowest": [{"a": p.rater_a, "b": p.rater_b, "shared": p.n_shared, "kappa": p.kappa,
                                "a_name": names.get(p.rater_a, ("?",))[0], "b_name": names.get(p.rater_b, ("?",))[0]}
                               for p in lowest]}
    return out, m


def alpha_weeks(project: LabelingProject, labels: dict, m: LabelMatrix | None) -> list[dict]:
    """Alpha per ISO week, not cumulative: each item belongs to the week of its latest counted label, and a
    week's alpha is over its items with all their labels (a bootstrap interval over those items)."""
    if m is None:
        return []
    latest = np.full(m.n_items, np.iinfo(np.int64).min)
    np.maximum.at(latest, m.items, labels["days"])
    week_of_item = (latest + 3) // 7
    label_week = week_of_item[m.items]
    order = np.argsort(label_week, kind="stable")
    bounds = np.searchsorted(label_week[order], np.unique(week_of_item))
    out = []
    for week, start, end in zip(np.unique(week_of_item), bounds, [*bounds[1:], len(order)]):
        chosen = order[start:end]
        # The week's own items only, numbered afresh: every item of the project would be a row of each vote table.
        week_items, items = np.unique(m.items[chosen], return_inverse=True)
        sub = LabelMatrix(items.astype(np.int32), m.raters[chosen], m.labels[chosen], tuple(range(len(week_items))),
                          m.rater_ids, m.classes)
        alpha, interval = _alpha_and_interval(sub, level(project), n_boot=500)
        monday = week_start(int(week) * 7 - 3)
        year, number, _ = monday.isocalendar()
        out.append({"week": monday.isoformat(), "label": f"{year}-W{number:02d}",
                    "items": int((week_of_item == week).sum()), "alpha": alpha,
                    "low": interval[0] if interval else None, "high": interval[1] if interval else None})
    return out


def _medians(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The median of `values` per group index 0..n-1 (NaN for an empty group), by one sort."""
    order = np.lexsort((values, groups))
    groups, values = groups[order], values[order]
    counts = np.bincount(groups, minlength=n)
    starts = np.cumsum(counts) - counts
    if not len(values):
        return np.full(n, np.nan)
    low = np.clip(starts + (counts - 1) // 2, 0, len(values) - 1)
    high = np.clip(starts + counts // 2, 0, len(values) - 1)
    return np.where(counts > 0, (values[low] + values[high]) / 2.0, np.nan)


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def raters(project: LabelingProject, coder: Coder, labels: dict, consensus: Lookup, gold: dict, timing: dict,
           members: list[int], run: ConsensusRun | None) -> tuple[list[dict], dict]:
    """One row per rater (members, and anyone who labeled or answered gold), and what the kinds are summed from."""
    k = coder.size
    ids = np.unique(np.concatenate([labels["raters"], gold["raters"], timing["raters"],
                                    np.asarray(members, dtype=np.int64)]))
    n = len(ids)
    at = np.searchsorted(ids, labels["raters"])
    cons = consensus.get(labels["items"])
    known = cons >= 0
    counts = np.bincount(at, minlength=n)
    compared = np.bincount(at[known], minlength=n)
    agreed = np.bincount(at[known], weights=labels["codes"][known] == cons[known], minlength=n)
    tables = None
    if k <= TABLE_CLASSES:
        flat = (at[known] * k + cons[known]) * k + labels["codes"][known]
        tables = np.bincount(flat, minlength=n * k * k).reshape(n, k, k)  # [rater, consensus, given]
        bias = chi_square_many(tables.sum(axis=1), tables.sum(axis=2))
        kappas = [table_kappa(tables[i], kappa_weights(project)) for i in range(n)]
    else:
        bias = {"chi2": np.full(n, np.nan), "p": np.full(n, np.nan), "v": np.full(n, np.nan)}
        kappas = _marginal_kappas(at[known], labels["codes"][known], cons[known], n, compared)
    gold_at = np.searchsorted(ids, gold["raters"])
    answered = np.bincount(gold_at, minlength=n)
    right = np.bincount(gold_at, weights=gold["correct"], minlength=n)
    time_at = np.searchsorted(ids, timing["raters"])
    submitted = np.bincount(time_at[~timing["skipped"]], minlength=n)
    skipped = np.bincount(time_at[timing["skipped"]], minlength=n)
    medians = _medians(time_at[~timing["skipped"]], timing["seconds"][~timing["skipped"]], n)
    ds = {int(r): a for r, a in (run.rater_accuracy or {}).items()
          if str(r).isdigit() and _number(a) is not None} if run else {}
    names = rater_names(ids.tolist())
    out = []
    for i, rater_id in enumerate(ids.tolist()):
        name, kind = names.get(rater_id, (f"rater {rater_id}", ""))
        leases = submitted[i] + skipped[i]
        p, v = _number(bias["p"][i]), _number(bias["v"][i])
        out.append({
            "rater_id": rater_id, "username": name, "kind": kind, "labels": int(counts[i]),
            "gold_answered": int(answered[i]), "gold_right": int(right[i]),
            "gold_accuracy": right[i] / answered[i] if answered[i] else None, "ds_accuracy": ds.get(rater_id),
            "kappa": kappas[i], "compared": int(compared[i]),
            "agreement": agreed[i] / compared[i] if compared[i] else None,
            "median_seconds": _number(medians[i]), "submitted": int(submitted[i]), "skipped": int(skipped[i]),
            "skip_rate": skipped[i] / leases if leases else None,
            "chi2": _number(bias["chi2"][i]), "p_value": p, "cramers_v": v,
            "biased": p is not None and p < BIAS_P and v >= BIAS_V,
        })
    kinds_of = np.array([Rater.Kind.values.index(names.get(r, ("", Rater.Kind.GENERALIST))[1] or "generalist")
                         for r in ids.tolist()], dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
    kind_medians = _medians(kinds_of[time_at[~timing["skipped"]]], timing["seconds"][~timing["skipped"]],
                            len(Rater.Kind.values)) if n else np.full(len(Rater.Kind.values), np.nan)
    return out, {"tables": tables, "index": {r: i for i, r in enumerate(ids.tolist())},
                 "kind_medians": {kind: _number(kind_medians[j]) for j, kind in enumerate(Rater.Kind.values)}}


def _marginal_kappas(at: np.ndarray, codes: np.ndarray, cons: np.ndarray, n: int, compared: np.ndarray) -> list:
    """Unweighted kappa per rater without a K x K table: p_o from the diagonal, p_e = sum_k p_rater(k) p_cons(k)."""
    agreed = np.bincount(at, weights=codes == cons, minlength=n)
    given, expected = Counter(zip(at.tolist(), codes.tolist())), Counter(zip(at.tolist(), cons.tolist()))
    chance = np.zeros(n)
    for (r, c), count in given.items():
        chance[r] += count * expected.get((r, c), 0)
    out = []
    for r in range(n):
        if not compared[r]:
            out.append(None)
            continue
        po, pe = agreed[r] / compared[r], chance[r] / compared[r] ** 2
        out.append(None if pe >= 1 else float((po - pe) / (1 - pe)))
    return out


def kinds(project: LabelingProject, coder: Coder, rows_: list[dict], pooled: dict, run: ConsensusRun | None) -> list:
    """The rater table summed per kind: pooled gold accuracy, kappa of the pooled table, label-weighted
    Dawid-Skene accuracy, the median seconds over every label of the kind, and the classes it confuses."""
    out = []
    for kind, name in Rater.Kind.choices:
        mine = [r for r in rows_ if r["kind"] == kind]
        if not mine:
            continue
        answered, right = sum(r["gold_answered"] for r in mine), sum(r["gold_right"] for r in mine)
        with_ds = [r for r in mine if r["ds_accuracy"] is not None and r["labels"]]
        ds_weight = sum(r["labels"] for r in with_ds)
        table = None
        if pooled["tables"] is not None:
            table = pooled["tables"][[pooled["index"][r["rater_id"]] for r in mine]].sum(axis=0)
        compared = sum(r["compared"] for r in mine)
        submitted, skipped = sum(r["submitted"] for r in mine), sum(r["skipped"] for r in mine)
        confused, source = _kind_confusion(coder, mine, run, table)
        out.append({
            "kind": kind, "display": name, "raters": len(mine), "labels": sum(r["labels"] for r in mine),
            "gold_answered": answered, "gold_accuracy": right / answered if answered else None,
            "ds_accuracy": sum(r["ds_accuracy"] * r["labels"] for r in with_ds) / ds_weight if ds_weight else None,
            "kappa": table_kappa(table, kappa_weights(project)) if table is not None and compared else None,
            "agreement": sum(r["agreement"] * r["compared"] for r in mine if r["compared"]) / compared
            if compared else None,
            "median_seconds": pooled["kind_medians"].get(kind), "submitted": submitted,
            "skip_rate": skipped / (submitted + skipped) if submitted + skipped else None,
            "confused": confused, "confusion_source": source,
        })
    return out


def _kind_confusion(coder: Coder, mine: list[dict], run: ConsensusRun | None,
                    table: np.ndarray | None) -> tuple[list[dict], str]:
    """Class pairs a kind confuses: from its raters' Dawid-Skene confusion matrices (the latest run, each
    weighted by the rater's labels), else from their labels against consensus."""
    if run is not None and run.rater_confusion and run.classes:
        k = len(run.classes)
        total = np.zeros((k, k))
        for r in mine:
            matrix = run.rater_confusion.get(str(r["rater_id"]))
            if matrix is not None and r["labels"]:
                total += np.asarray(matrix, dtype=float) * r["labels"]
        if total.any():
            classes = tuple(display(coder, c) for c in run.classes)
            return [{"true": t, "given": g, "rate": rate}
                    for t, g, rate in confused_pairs(total, classes, min_rate=CONFUSION_RATE)], "dawid_skene"
    if table is not None and table.any():
        classes = tuple(display(coder, c) for c in coder.classes)
        return [{"true": t, "given": g, "rate": rate}
                for t, g, rate in confused_pairs(table, classes, min_rate=CONFUSION_RATE)], "consensus"
    return [], ""


def gold_confusion(coder: Coder, gold: dict) -> dict:
    """Gold items: their known answer (rows) against the raters' majority on them (columns; a tie is its own
    column). Gold items never take part in consensus, so the raters' own answers on them are the
    consensus that can be checked against a truth."""
    keep = (gold["gold"] >= 0) & (gold["answers"] >= 0)
    k = coder.size
    items = np.unique(gold["items"][keep])
    if not len(items) or k > TABLE_CLASSES:
        return {"items": int(len(items)), "classes": [], "rows": [], "accuracy": None}
    at = np.searchsorted(items, gold["items"][keep])
    votes = np.bincount(at * k + gold["answers"][keep], minlength=len(items) * k).reshape(len(items), k)
    truth = np.zeros(len(items), dtype=np.int64)
    truth[at] = gold["gold"][keep]
    top = votes.max(axis=1)
    winner = np.where((votes == top[:, None]).sum(axis=1) > 1, k, votes.argmax(axis=1))
    table = np.bincount(truth * (k + 1) + winner, minlength=k * (k + 1)).reshape(k, k + 1)
    decided = table[:, :k].sum()
    peak = max(int(table.max()), 1)
    names = [display(coder, c) for c in coder.classes]
    return {"items": int(len(items)), "classes": names,
            "accuracy": float(np.trace(table[:, :k])) / decided if decided else None,
            "rows": [{"truth": names[t], "cells": [{"count": int(c), "heat": c / peak, "right": j == t}
                                                   for j, c in enumerate(table[t])]}
                     for t in range(k) if table[t].any()]}


def human_majority(m: LabelMatrix | None) -> Lookup:
    """Each item's majority of human (and imported) labels, ties left out: what feedback and models are judged by."""
    if m is None:
        return Lookup(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    labels = majority_vote(m, tie="none").labels
    return Lookup(np.asarray(m.item_ids, dtype=np.int64)[labels >= 0], labels[labels >= 0])


def rule_bias(project: LabelingProject, feedback: dict, human: Lookup) -> list[dict]:
    """Per feedback rule: its labels, those on items with a human majority, and the share equal to it."""
    majority = human.get(feedback["items"])
    compared = majority >= 0
    names = {r.pk: f"{r.name} ({r})" if r.name else str(r) for r in FeedbackRule.objects.filter(project=project)}
    out = []
    for rule_id in np.unique(feedback["rules"]).tolist():
        mine = feedback["rules"] == rule_id
        c = int((mine & compared).sum())
        agreed = int((mine & compared & (feedback["codes"] == majority)).sum())
        out.append({"rule_id": rule_id or None, "rule": names.get(rule_id, "a deleted rule"),
                    "labels": int(mine.sum()), "compared": c, "agreement": agreed / c if c else None})
    return sorted(out, key=lambda r: (r["agreement"] is None, r["agreement"] or 0))


def source_bias(coder: Coder, model: dict, human: Lookup) -> list[dict]:
    """Per model-output source: its records' labels (the model's) against the human majority on their items,
    with the model's most common mistake (what a training set built on its labels would learn)."""
    from collection.models import Source

    majority = human.get(model["items"])
    compared = majority >= 0
    names = dict(Source.objects.filter(pk__in=np.unique(model["sources"]).tolist()).values_list("pk", "name"))
    classes = coder.classes
    out = []
    for source_id in np.unique(model["sources"]).tolist():
        mine = (model["sources"] == source_id) & compared
        wrong = mine & (model["codes"] != majority)
        mistake = None
        if wrong.any():
            pairs = Counter(zip(majority[wrong].tolist(), model["codes"][wrong].tolist()))
            (truth, given), count = pairs.most_common(1)[0]
            mistake = {"human": display(coder, classes[truth]), "count": count,
                       "model": "not an answer of this project" if given < 0 else display(coder, classes[given])}
        c = int(mine.sum())
        out.append({"source_id": source_id, "source": names.get(source_id, f"source {source_id}"),
                    "labels": int((model["sources"] == source_id).sum()), "compared": c,
                    "agreement": int((mine & ~wrong).sum()) / c if c else None, "mistake": mistake})
    return sorted(out, key=lambda r: (r["agreement"] is None, r["agreement"] or 0))


def cost(project: LabelingProject, kind_rows: list[dict]) -> dict:
    """Cost per final label and to finish the open queue, from each kind's hourly rate and measured seconds.

    Spent = per kind, submitted labels x median seconds x rate (imported labels took no time here).
    Per final label = spent / complete items. To finish = labels still needed on open items (needed
    - submitted) x the cost of a label of the kinds that may label, weighted by their labels so far.
    """
    rates = {k: float(v) for k, v in (project.hourly_rates or {}).items()}
    complete = remaining = adjudication = 0
    for state, missing, count in rows(f"SELECT state, sum(CASE WHEN needed > submitted_count "
                                      f"THEN needed - submitted_count ELSE 0 END), count(*) "
                                      f"FROM {QueueItem._meta.db_table} WHERE project_id = %s AND NOT is_gold "
                                      f"GROUP BY state", [project.pk]):
        if state == QueueItem.State.COMPLETE:
            complete = count
        elif state == QueueItem.State.OPEN:
            remaining = int(missing or 0)
        elif state == QueueItem.State.ADJUDICATION:
            adjudication = count
    out = {"currency": project.currency, "rates": rates, "complete": complete, "remaining_slots": remaining,
           "adjudication": adjudication, "per_kind": [], "spent": None, "per_final_label": None, "per_label": None,
           "to_finish": None, "missing": []}
    if not rates:
        return out
    allowed = set(project.allowed_kinds or Rater.Kind.values)
    spent, blend, weight = 0.0, 0.0, 0
    for kind in kind_rows:
        rate, seconds = rates.get(kind["kind"]), kind["median_seconds"]
        per_label = rate * seconds / 3600 if rate is not None and seconds is not None else None
        out["per_kind"].append({"kind": kind["display"], "rate": rate, "seconds": seconds, "per_label": per_label,
                                "labels": kind["submitted"],
                                "spent": per_label * kind["submitted"] if per_label is not None else None})
        if per_label is None:
            if kind["submitted"]:
                out["missing"].append(kind["display"])
            continue
        spent += per_label * kind["submitted"]
        if kind["kind"] in allowed:
            blend += per_label * kind["submitted"]
            weight += kind["submitted"]
    out["spent"] = spent
    out["per_final_label"] = spent / complete if complete else None
    if weight:
        out["per_label"] = blend / weight
        out["to_finish"] = remaining * out["per_label"]
    return out
