"""Distances between baseline and batch distributions, and their no-change noise floors."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import special

from .sketches import QuantileSketch

# PSI smoothing: half a count per bin (Jeffreys prior), so empty bins stay finite.
PSI_PSEUDOCOUNT = 0.5
# Empirical 99.9% point of sqrt(n)·W1 / ∫sqrt(F(1-F))dx under no change: ~2.0-2.7 for normal,
# lognormal, exponential and bimodal data (1,500 simulations each at n=50 and n=1,000).
WASSERSTEIN_NOISE_FACTOR = 3.0


def _freqs(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def js_distance(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen-Shannon distance, log base 2: sqrt of the JS divergence, in [0, 1]."""
    p, q = _freqs(p_counts), _freqs(q_counts)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def psi(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Population stability index sum((q-p)·ln(q/p)), each bin smoothed by +0.5 counts."""
    k = p_counts.size
    p = (p_counts + PSI_PSEUDOCOUNT) / (p_counts.sum() + PSI_PSEUDOCOUNT * k)
    q = (q_counts + PSI_PSEUDOCOUNT) / (q_counts.sum() + PSI_PSEUDOCOUNT * k)
    return float(((q - p) * np.log(q / p)).sum())


def linf(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """L-infinity distance of frequencies: the largest absolute change of any bin's share."""
    return float(np.abs(_freqs(p_counts) - _freqs(q_counts)).max(initial=0.0))


def chi2_pvalue(p_counts: np.ndarray, q_counts: np.ndarray) -> tuple[float, float]:
    """Pearson chi-square test of homogeneity on the 2 x bins table (empty bins dropped)."""
    table = np.vstack([p_counts, q_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, float(special.chdtrc(table.shape[1] - 1, stat))


def _step_cdfs(a: QuantileSketch, b: QuantileSketch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both sketches' CDFs on the union of their values (where either step function moves), sorted."""
    points = np.union1d(a.weighted()[0], b.weighted()[0])
    return points, a.cdf(points), b.cdf(points)


def ks_statistic(a: QuantileSketch, b: QuantileSketch) -> float:
    """Kolmogorov-Smirnov statistic sup|F_a - F_b| of the two sketches: scipy's statistic when both kept every
    value, else within a.rank_error() + b.rank_error() of it; NaN (no decision) when a side has no value."""
    if a.empty or b.empty:
        return float("nan")
    _, cdf_a, cdf_b = _step_cdfs(a, b)
    return float(np.abs(cdf_a - cdf_b).max())


def ks_pvalue_exact(a: QuantileSketch, b: QuantileSketch, statistic: float) -> float | None:
    """The two-sample KS p-value where the statistic is exact (both sketches kept every value), else None:
    scipy's own `ks_2samp` on the values up to 10,000 a side (its exact method's sizes); past them the Kolmogorov
    limit at sqrt(nm/(n+m))·D (scipy.special: scipy.stats costs ~0.8 s to import in a fresh worker, and at these
    sizes its finite-n formula differs from the limit by less than the statistic's own rounding)."""
    if not (a.is_exact and b.is_exact) or a.empty or b.empty or math.isnan(statistic):
        return None
    n, m = a.n, b.n
    if max(n, m) <= 10_000:
        from scipy import stats  # only for sides small enough to be given whole

        with warnings.catch_warnings():
            # scipy says so when its exact p-value does not converge and it takes the asymptotic one: expected.
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(a.values(), b.values()).pvalue)
    return float(special.kolmogorov(math.sqrt(n * m / (n + m)) * statistic))


def wasserstein(a: QuantileSketch, b: QuantileSketch) -> float:
    """Wasserstein-1 distance of the two sketches, the integral of |F_a - F_b| between consecutive values (scipy's
    `wasserstein_distance` when both kept every value, else within a.w1_error() + b.w1_error() of it); NaN when a
    side has no value."""
    if a.empty or b.empty:
        return float("nan")
    points, cdf_a, cdf_b = _step_cdfs(a, b)
    return float(np.sum(np.abs(cdf_a[:-1] - cdf_b[:-1]) * np.diff(points)))


def normed_wasserstein(w: float, ref_std: float, batch_std: float) -> float:
    """W1 / baseline std; a constant baseline falls back to the batch's std, then to 0 or inf."""
    scale = ref_std if ref_std > 0 else batch_std
    if scale > 0:
        return w / scale
    return 0.0 if w == 0 else math.inf


# scipy.special's ufuncs, not scipy.stats' distribution objects: ~100x less overhead per call,
# which matters when every feature asks for several critical values.
def _chi2_quantile(dof: int, alpha: float) -> float:
    return float(special.chdtri(max(dof, 1), alpha))


def normal_quantile(alpha: float) -> float:
    """z with P(Z > z) = alpha for a standard normal Z."""
    return float(-special.ndtri(alpha))


def range_miss(n: int, alpha: float) -> float:
    """The (1 - alpha) point of the share of a law outside the range of n values drawn from it.

    Each tail beyond the sample's extreme has probability Beta(1, n); both tails together are below
    1 - (alpha / 2)**(1 / n) each with probability 1 - alpha (union bound), about 2 ln(2 / alpha) / n.
    """
    if n <= 0:
        return 1.0
    return min(1.0, 2 * (1 - (alpha / 2) ** (1 / n)))


def unseen_mass(singletons: int, n: int, alpha: float) -> float:
    """An upper point of the share of a law in categories a sample of n has not seen: Good-Turing's
    singletons / n, raised by its noise (the singletons' count as Poisson), and at least the chance that a
    category of share p went unseen in n draws at that level, ln(1 / alpha) / n."""
    if n <= 0:
        return 1.0
    z = normal_quantile(alpha)
    return min(1.0, max((singletons + z * math.sqrt(singletons) + z * z) / n, math.log(1 / alpha) / n))


def unseen_share_noise(p: float, m: int, alpha: float) -> float:
    """The share of a batch of m values above which more of it falls in a part of the law of share p than
    chance allows at level alpha: (k + 1) / m, k the binomial (1 - alpha) point."""
    if m <= 0:
        return 1.0
    return min(1.0, (_binomial_point(m, p, 1 - alpha) + 1) / m)


def _binomial_point(m: int, p: float, q: float) -> int:
    """The smallest k with P(Binomial(m, p) <= k) >= q, searched from the normal approximation with
    scipy.special's binomial CDF (scipy.stats would cost its import, ~0.8 s, in every fresh worker)."""
    if p <= 0:
        return 0
    if p >= 1:
        return m
    k = min(m, max(0, int(m * p + normal_quantile(1 - q) * math.sqrt(m * p * (1 - p)))))
    while k < m and special.bdtr(k, m, p) < q:
        k += 1
    while k > 0 and special.bdtr(k - 1, m, p) >= q:
        k -= 1
    return k


def sample_factor(n: int, m: int) -> float:
    """sqrt(1/n + 1/m): how the noise of a two-sample statistic shrinks with the samples."""
    return math.sqrt(1 / n + 1 / m) if n and m else math.inf


def js_noise(n_bins: int, n: int, m: int, alpha: float) -> float:
    """(1-alpha) point of the JS distance between two samples of one law (chi-square approx.)."""
    # JSD (nats) ~ chi2_{k-1} · (1/n + 1/m) / 8 for small differences.
    return math.sqrt(_chi2_quantile(n_bins - 1, alpha) / (8 * math.log(2))) * sample_factor(n, m)


def psi_noise(n_bins: int, n: int, m: int, alpha: float) -> float:
    """(1-alpha) point of PSI under no change: PSI ~ chi2_{k-1} · (1/n + 1/m)."""
    return _chi2_quantile(n_bins - 1, alpha) * sample_factor(n, m) ** 2


def linf_noise(freqs: np.ndarray, n: int, m: int, alpha: float) -> float:
    """(1-alpha) point of the largest frequency change, Bonferroni over the bins."""
    k = max(int((freqs > 0).sum()), 1)
    z = normal_quantile(alpha / (2 * k))
    return float(z * np.sqrt(freqs * (1 - freqs)).max(initial=0.0) * sample_factor(n, m))


def ks_noise(n: int, m: int, alpha: float, sketch_error: float) -> float:
    """Asymptotic two-sample KS critical value plus both sketches' rank error bound."""
    return math.sqrt(-math.log(alpha / 2) / 2) * sample_factor(n, m) + sketch_error


def spread_integral(edges: tuple[float, ...], hist: np.ndarray) -> float:
    """Integral of sqrt(F(1-F)) dx over the baseline's inner bins (trapezoid on the edges)."""
    if len(edges) < 2:
        return 0.0
    cdf = np.cumsum(hist)[:-1] / max(hist.sum(), 1)
    root = np.sqrt(np.clip(cdf * (1 - cdf), 0, None))
    return float((np.diff(edges) * (root[:-1] + root[1:]) / 2).sum())


def wasserstein_noise(spread: float, scale: float, n: int, m: int) -> float:
    """Normed W1 that two samples of one law exceed rarely (see WASSERSTEIN_NOISE_FACTOR)."""
    if scale <= 0:
        return 0.0
    return WASSERSTEIN_NOISE_FACTOR * spread / scale * sample_factor(n, m)
