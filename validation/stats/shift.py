"""Label (prior) drift, concept drift via P(label | feature bin), and the shift type."""

from __future__ import annotations

import math

import numpy as np
from . import metrics as m
from .report import COVARIATE, CONCEPT, DATASET, NO_SHIFT, PRIOR, MetricValue, Shift


def _label_columns(table: np.ndarray) -> np.ndarray:
    """Known classes and "other"; rows without a label say nothing about P(label | x)."""
    return table[:, :-1].astype(np.float64)


def concept_distance(base_table: np.ndarray, batch_table: np.ndarray, alpha: float):
    """Mass-weighted total variation of P(label | bin), allowing for a pure prior shift.

    Returns (value, noise floor). The value is the smaller of the raw distance and the distance
    after re-weighting the baseline's P(label | bin) by the batch/baseline class priors (Bayes'
    rule when P(x | label) holds), so a prior shift alone is not mistaken for a concept shift.
    """
    a, b = _label_columns(base_table), _label_columns(batch_table)
    na, nb = a.sum(axis=1), b.sum(axis=1)
    valid = (na > 0) & (nb > 0)
    if not valid.any():
        return 0.0, 0.0
    a, b, na, nb = a[valid], b[valid], na[valid], nb[valid]
    weights = na / na.sum() + nb / nb.sum()
    weights /= weights.sum()
    pa, pb = a / na[:, None], b / nb[:, None]
    raw = (weights * np.abs(pa - pb).sum(axis=1) / 2).sum()
    prior_a, prior_b = a.sum(axis=0) / a.sum(), b.sum(axis=0) / b.sum()
    ratio = np.divide(prior_b, prior_a, out=np.zeros_like(prior_a), where=prior_a > 0)
    adjusted = pa * ratio
    sums = adjusted.sum(axis=1, keepdims=True)
    adjusted = np.divide(adjusted, sums, out=pa.copy(), where=sums > 0)
    shifted = (weights * np.abs(adjusted - pb).sum(axis=1) / 2).sum()
    # Each bin's TV under no change is about half-normal with this scale; their weighted sum is right-skewed (one
    # bin: a half-normal), so its point is the scaled chi-square's with the same mean and variance, not a normal's.
    pooled = (a + b) / (na + nb)[:, None]
    scale = np.sqrt(pooled * (1 - pooled)).sum(axis=1) / 2 * np.sqrt(1 / na + 1 / nb)
    mean = (weights * scale).sum() * math.sqrt(2 / math.pi)
    var = (weights**2 * scale**2).sum() * (1 - 2 / math.pi)
    return float(min(raw, shifted)), m.scaled_chi2_point(float(mean), float(var), alpha)


def class_conditional_distance(base_table: np.ndarray, batch_table: np.ndarray, alpha: float):
    """Class-weighted JS distance of P(bin | label) over the known classes, with noise floor."""
    k = base_table.shape[1] - 2
    a, b = base_table[:, :k], batch_table[:, :k]
    na, nb = a.sum(axis=0), b.sum(axis=0)
    weights = na / max(na.sum(), 1) + nb / max(nb.sum(), 1)
    value = noise = total = 0.0
    for c in range(k):
        if na[c] and nb[c]:
            bins = int(((a[:, c] + b[:, c]) > 0).sum())
            value += weights[c] * m.js_distance(a[:, c], b[:, c])
            noise += weights[c] * m.js_noise(bins, int(na[c]), int(nb[c]), alpha)
            total += weights[c]
    return (float(value / total), float(noise / total)) if total else (0.0, 0.0)


def classify(
    covariate: list[str],
    concept: list[str],
    label_moved: bool,
    conditional_moved: list[str],
    labels_known: bool,
) -> Shift:
    """Name the shift from what moved: P(x), P(y|x), P(y) and P(x|y)."""
    if label_moved and not conditional_moved and not concept:
        return Shift(PRIOR, ["label"], "the label's distribution moved while P(x | label) held")
    if covariate and concept:
        return Shift(DATASET, sorted(set(covariate) | set(concept)),
                     "features moved and so did P(label | features)")
    if concept:
        return Shift(CONCEPT, sorted(concept), "P(label | features) moved, features held")
    if covariate:
        held = "P(label | features) held" if labels_known else "labels unavailable"
        return Shift(COVARIATE, sorted(covariate), f"features moved, {held}")
    if label_moved:
        return Shift(PRIOR, ["label"], "only the label's distribution moved")
    return Shift(NO_SHIFT, [], "nothing moved beyond its threshold")


def metric_value(value: float, noise: float, threshold: float | None) -> MetricValue:
    """A MetricValue whose threshold is raised to the noise floor."""
    return MetricValue(value, None if threshold is None else max(threshold, noise))
