"""Inter-rater agreement: percent agreement, Cohen's and Fleiss's kappa, Krippendorff's alpha.

Every function returns None where the statistic is not defined (no pairable labels, or a
chance agreement of 1, so 0/0), never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .matrix import LabelMatrix, encode, item_votes, ragged_arange

LEVELS = ("nominal", "ordinal", "interval")
# Cap on the resample x pattern count matrix of the bootstrap: 32 MB of int64 per chunk.
_BOOT_CELLS = 4_000_000


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of two raters on the items both labelled (ids are the original ones)."""

    rater_a: object
    rater_b: object
    n_shared: int
    kappa: float | None


def _pairable_votes(m: LabelMatrix) -> np.ndarray:
    """Vote counts of the items with at least two labels (the only ones a pair can come from)."""
    votes = item_votes(m)
    return votes[votes.sum(axis=1) >= 2]


def _coincidences(votes: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix o[c, k] = sum_u n_uc (n_uk - [c == k]) / (m_u - 1).

    Built as one K x K matrix product, never the n_items x K x K stack.
    """
    weight = 1.0 / (votes.sum(axis=1) - 1.0)
    scaled = votes * weight[:, None]
    return scaled.T @ votes - np.diag(scaled.sum(axis=0))


def observed_agreement(m: LabelMatrix) -> float | None:
    """Share of agreeing pairable values, over items with at least two labels.

    An item u with m_u labels, n_uc of class c, contributes P_u = sum_c n_uc (n_uc - 1) /
    (m_u (m_u - 1)) (the share of its ordered label pairs that agree), weighted by m_u:
    A_o = sum_u m_u P_u / sum_u m_u, which is Krippendorff's observed agreement (1 - D_o, nominal)
    and Fleiss's P-bar when every item has the same number of labels. None if no item has two.
    """
    votes = _pairable_votes(m)
    if not len(votes):
        return None
    return float(np.trace(_coincidences(votes)) / votes.sum())


def _weight_matrix(k: int, weights: str | None) -> np.ndarray:
    index = np.arange(k)
    if weights is None:
        return (index[:, None] != index[None, :]).astype(np.float64)
    if weights == "linear":
        return np.abs(index[:, None] - index[None, :]).astype(np.float64)
    if weights == "quadratic":
        return ((index[:, None] - index[None, :]) ** 2).astype(np.float64)
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', not {weights!r}")


def cohen_kappa_pairs(m: LabelMatrix, *, min_shared: int = 10, weights: str | None = None) -> list[PairKappa]:
    """Cohen's kappa of every pair of raters sharing at least `min_shared` items.

    kappa = 1 - sum(w * O) / sum(w * E), O the pair's confusion counts on shared items, E the
    product of its margins / n; w is 0/1 (unweighted), |i - j| or (i - j)^2 over positions in
    `m.classes` (all classes, so weighted kappa is sklearn's with `labels=` the class list).
    None where sum(w * E) is 0 (both raters always gave one and the same class). Pairs are
    ordered by rater index; a rater's repeated label of an item pairs like a separate label.
    """
    k = m.n_classes
    order = np.lexsort((m.raters, m.items))
    items, raters, labels = m.items[order], m.raters[order], m.labels[order]
    # Pair each label with every later label of the same item (items are contiguous now).
    sizes = np.bincount(items, minlength=m.n_items)
    ends = np.cumsum(sizes)[items]
    partners = ends - np.arange(len(items)) - 1
    first = np.repeat(np.arange(len(items)), partners)
    second = first + 1 + ragged_arange(partners)
    ra, rb = raters[first].astype(np.int64), raters[second].astype(np.int64)
    la, lb = labels[first].astype(np.int64), labels[second].astype(np.int64)
    keep = ra != rb
    ra, rb, la, lb = ra[keep], rb[keep], la[keep], lb[keep]
    swap = ra > rb
    ra, rb = np.where(swap, rb, ra), np.where(swap, ra, rb)
    la, lb = np.where(swap, lb, la), np.where(swap, la, lb)
    keys, pair = np.unique(ra * m.n_raters + rb, return_inverse=True)
    shared = np.bincount(pair, minlength=len(keys))
    chosen = np.flatnonzero(shared >= min_shared)
    if not len(chosen):
        return []
    counts = np.bincount((pair * k + la) * k + lb, minlength=len(keys) * k * k).reshape(len(keys), k, k)
    counts = counts[chosen].astype(np.float64)
    n = shared[chosen].astype(np.float64)
    w = _weight_matrix(k, weights)
    expected = counts.sum(axis=2)[:, :, None] * counts.sum(axis=1)[:, None, :]
    chance = (w * expected).sum(axis=(1, 2))
    observed = (w * counts).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = 1.0 - n * observed / chance
    return [
        PairKappa(m.rater_ids[int(keys[p] // m.n_raters)], m.rater_ids[int(keys[p] % m.n_raters)],
                  int(n[i]), None if chance[i] == 0 else float(kappa[i]))
        for i, p in enumerate(chosen)
    ]


def fleiss_kappa(m: LabelMatrix) -> float | None:
    """Fleiss's kappa; None unless every labelled item has the same number (>= 2) of labels.

    P_u = (sum_c n_uc^2 - r) / (r (r - 1)), P-bar their mean, p_c = class share of all labels,
    P_e = sum_c p_c^2, kappa = (P-bar - P_e) / (1 - P_e); None if P_e is 1. Items with no label
    at all are not rated subjects and are left out.
    """
    votes = item_votes(m)
    votes = votes[votes.sum(axis=1) > 0]
    if not len(votes):
        return None
    per_item = votes.sum(axis=1)
    r = int(per_item[0])
    if r < 2 or (per_item != r).any():
        return None
    votes = votes.astype(np.float64)
    p_bar = ((np.square(votes).sum(axis=1) - r) / (r * (r - 1.0))).mean()
    p_c = votes.sum(axis=0) / votes.sum()
    p_e = float(np.square(p_c).sum())
    if p_e == 1.0:
        return None
    return float((p_bar - p_e) / (1.0 - p_e))


def _class_values(m: LabelMatrix, level: str) -> np.ndarray | None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    if level != "interval":
        return None
    try:
        return np.asarray([float(c) for c in m.classes])
    except (TypeError, ValueError):
        raise ValueError(f"interval alpha needs numeric classes, got {m.classes!r}") from None


def _distances(level: str, n_v: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """d[..., c, k] for n_v of shape (..., K): nominal 0/1, interval (v_c - v_k)^2, ordinal
    (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 over positions in the class order."""
    k = n_v.shape[-1]
    index = np.arange(k)
    if level == "nominal":
        return np.broadcast_to((index[:, None] != index[None, :]).astype(np.float64), n_v.shape[:-1] + (k, k))
    if level == "interval":
        return np.broadcast_to(np.square(values[:, None] - values[None, :]), n_v.shape[:-1] + (k, k))
    lo, hi = np.minimum(index[:, None], index[None, :]), np.maximum(index[:, None], index[None, :])
    cum = np.concatenate([np.zeros(n_v.shape[:-1] + (1,)), np.cumsum(n_v, axis=-1)], axis=-1)
    between = cum[..., hi + 1] - cum[..., lo]
    return np.square(between - (n_v[..., lo] + n_v[..., hi]) / 2.0)


def _alpha_from(o: np.ndarray, level: str, values: np.ndarray | None) -> np.ndarray:
    """Alpha for one or a stack (..., K, K) of coincidence matrices; NaN where undefined."""
    n_v = o.sum(axis=-2)
    n = n_v.sum(axis=-1)
    d = _distances(level, n_v, values)
    pairs = n_v[..., :, None] * n_v[..., None, :] - n_v[..., :, None] * np.eye(o.shape[-1])
    expected = pairs / (n - 1.0)[..., None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - (o * d).sum(axis=(-2, -1)) / (expected * d).sum(axis=(-2, -1))


def krippendorff_alpha(m: LabelMatrix, *, level: str = "nominal") -> float | None:
    """Krippendorff's alpha = 1 - D_o / D_e from the coincidence matrix of pairable values.

    Items with fewer than two labels have no pairable values and drop out, as the formula
    defines. Ordinal distances use the class order, interval ones the class values (numeric
    classes only). None if no item has two labels or D_e is 0 (every pairable value the same).
    """
    values = _class_values(m, level)
    votes = _pairable_votes(m)
    if not len(votes):
        return None
    alpha = float(_alpha_from(_coincidences(votes), level, values))
    return None if np.isnan(alpha) or np.isinf(alpha) else alpha


def krippendorff_alpha_bootstrap(m: LabelMatrix, *, level: str = "nominal", n_boot: int = 1000,
                                 ci: float = 0.95, seed: int = 0) -> tuple[float, float] | None:
    """Percentile confidence interval of alpha, resampling the pairable items with replacement.

    Items are grouped by their vote pattern (their count per class), each pattern's coincidence
    matrix computed once; a resample of N items from N is then exactly a multinomial draw of how
    many items come from each pattern, so a resample costs O(patterns), not O(items). Resamples
    where alpha is undefined are left out of the quantiles. None where alpha itself is undefined.
    """
    values = _class_values(m, level)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), not {ci}")
    votes = _pairable_votes(m)
    if not len(votes) or not np.isfinite(_alpha_from(_coincidences(votes), level, values)):
        return None
    patterns, freq = _vote_patterns(votes)
    k = m.n_classes
    weight = 1.0 / (patterns.sum(axis=1) - 1.0)
    per_pattern = patterns[:, :, None] * patterns[:, None, :] - patterns[:, :, None] * np.eye(k)
    per_pattern = (per_pattern * weight[:, None, None]).reshape(len(patterns), k * k)
    rng = np.random.default_rng(seed)
    n = int(freq.sum())
    p = freq / n
    chunk = max(1, _BOOT_CELLS // len(patterns))
    alphas = []
    for start in range(0, n_boot, chunk):
        draws = rng.multinomial(n, p, size=min(chunk, n_boot - start))
        o = (draws @ per_pattern).reshape(-1, k, k)
        alphas.append(_alpha_from(o, level, values))
    alphas = np.concatenate(alphas)
    alphas = alphas[np.isfinite(alphas)]
    if not len(alphas):
        return None
    tail = (1.0 - ci) / 2.0
    low, high = np.quantile(alphas, [tail, 1.0 - tail])
    return float(low), float(high)


def _vote_patterns(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of the vote counts and how many items have each."""
    base = int(votes.max()) + 1
    k = votes.shape[1]
    if k * np.log2(base) < 62:
        # One integer per row (the counts as digits in base max+1): a 1-d unique is a plain sort,
        # several times faster than np.unique(axis=0) on 100k+ rows.
        keys = votes.astype(np.int64) @ (base ** np.arange(k, dtype=np.int64))
        _, first, freq = np.unique(keys, return_index=True, return_counts=True)
        return votes[first], freq
    return np.unique(votes, axis=0, return_counts=True)


def multilabel_alpha(items, raters, value_sets, classes) -> dict:
    """Per class, nominal alpha of its presence (in the rater's set or not) over the same labels.

    A label whose set is None is missing (the rater gave no answer); an empty set says no class
    applies, so it counts as "absent" for every class.
    """
    value_sets = list(value_sets)
    given = np.fromiter((s is not None for s in value_sets), dtype=bool, count=len(value_sets))
    base = encode(np.asarray(list(items), dtype=object)[given], np.asarray(list(raters), dtype=object)[given],
                  np.zeros(int(given.sum()), dtype=np.int32), classes=(0,))
    sets = [set(s) for s in value_sets if s is not None]
    out = {}
    for c in classes:
        present = np.fromiter((c in s for s in sets), dtype=np.int32, count=len(sets))
        out[c] = krippendorff_alpha(LabelMatrix(base.items, base.raters, present, base.item_ids, base.rater_ids,
                                                (False, True)))
    return out
