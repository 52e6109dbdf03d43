"""Rater bias: a rater's label mix against consensus, the classes a kind of rater confuses, agreement rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2_contingency

from .matrix import is_missing


@dataclass(frozen=True)
class BiasTest:
    """Chi-square test of a 2 x K table (rater vs consensus); every field None where undefined
    (fewer than two classes used, or one side with no labels), except n."""

    chi2: float | None
    p_value: float | None
    dof: int | None
    cramers_v: float | None
    n: int


def label_distribution_bias(rater_counts, consensus_counts) -> BiasTest:
    """Does a rater's label distribution differ from the consensus labels of the same items?

    The table's rows are the rater's counts per class and the consensus counts per class on
    the items that rater labelled; columns with no count on either side are dropped. Chi-square
    test of independence without Yates's correction (scipy's chi2_contingency, correction=False);
    Cramér's V = sqrt(chi2 / (n (min(rows, cols) - 1))), an effect size that does not grow
    with n, so a decision should rest on it rather than on the p-value alone.
    """
    table = np.vstack([np.asarray(rater_counts, dtype=np.float64), np.asarray(consensus_counts, dtype=np.float64)])
    if table.ndim != 2 or table.shape[0] != 2:
        raise ValueError("rater_counts and consensus_counts must be two count vectors of the same length")
    if (table < 0).any():
        raise ValueError("counts cannot be negative")
    table = table[:, table.sum(axis=0) > 0]
    n = int(table.sum())
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return BiasTest(None, None, None, None, n)
    chi2, p_value, dof, _ = chi2_contingency(table, correction=False)
    v = math.sqrt(chi2 / (n * (min(table.shape) - 1)))
    return BiasTest(float(chi2), float(p_value), int(dof), v, n)


def confused_pairs(confusion, classes, *, min_rate: float = 0.2) -> list[tuple[object, object, float]]:
    """(true class, given class, rate) for every off-diagonal rate >= min_rate, biggest first.

    `confusion` is K x K with rows = true class: rates, or counts that are normalised per row
    here (a row with no count is skipped). Ties in rate keep the class order.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    k = len(classes)
    if confusion.shape != (k, k):
        raise ValueError(f"confusion must be {k} x {k} to match the classes, not {confusion.shape}")
    rows = confusion.sum(axis=1, keepdims=True)
    rates = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    off = ~np.eye(k, dtype=bool) & (rates >= min_rate) & (rates > 0)
    true, given = np.nonzero(off)
    order = np.lexsort((given, true, -rates[true, given]))
    return [(classes[true[i]], classes[given[i]], float(rates[true[i], given[i]])) for i in order]


def agreement_with(labels_a, labels_b, *, missing=None) -> float | None:
    """Share of positions where the two label sequences are equal (a model or feedback source
    against human consensus, say). Positions where either side is missing (None, NaN, "", or
    equal to `missing`, e.g. -1 for majority_vote's no-label) are left out; None if none is left.
    """
    if isinstance(labels_a, np.ndarray) and isinstance(labels_b, np.ndarray) \
            and labels_a.dtype.kind in "iubf" and labels_b.dtype.kind in "iubf":
        if labels_a.shape != labels_b.shape:
            raise ValueError(f"the label sequences differ in length: {len(labels_a)} and {len(labels_b)}")
        keep = ~(np.isnan(labels_a.astype(np.float64)) | np.isnan(labels_b.astype(np.float64)))
        if missing is not None:
            keep &= (labels_a != missing) & (labels_b != missing)
        return float((labels_a[keep] == labels_b[keep]).mean()) if keep.any() else None
    a, b = list(labels_a), list(labels_b)
    if len(a) != len(b):
        raise ValueError(f"the label sequences differ in length: {len(a)} and {len(b)}")

    def absent(v) -> bool:
        return is_missing(v) or (missing is not None and v == missing)

    pairs = [(x, y) for x, y in zip(a, b) if not absent(x) and not absent(y)]
    if not pairs:
        return None
    return sum(x == y for x, y in pairs) / len(pairs)
