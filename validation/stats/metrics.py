"""Distances between baseline and batch distributions, and their no-change noise floors."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import special

from .sketches import QuantileSketch

# PSI smoothing: half a count per bin (Jeffreys prior), so empty bins stay finite.
PSI_PSEUDOCOUNT = 0.5
# A histogram bin's noise under no change is summed exactly over Poisson counts while it expects fewer than this
# many values on a side; past it the large-sample (chi-square) moments are within ~1/(4 x 30) of the exact ones.
EXACT_BIN_COUNT = 30


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


def _poisson(lams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts from 0 to the largest lam + 8 sd + 10, and each lam's Poisson probabilities of them (rows)."""
    top = float(lams.max())
    k = np.arange(int(top + 8 * math.sqrt(top)) + 11, dtype=np.float64)
    return k, np.exp(k * np.log(lams)[:, None] - lams[:, None] - special.gammaln(k + 1))


def _js_terms(a: np.ndarray, b: np.ndarray, n: int, m: int) -> np.ndarray:
    """Each bin's term of the JS divergence (nats) between counts a of n and b of m values."""
    p, q = a / n, b / m
    s = p + q
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(2 * p / s), 0.0)
        right = np.where(q > 0, q * np.log(2 * q / s), 0.0)
    return (left + right) / 2


def _psi_terms(a: np.ndarray, b: np.ndarray, n: int, m: int, bins: int) -> np.ndarray:
    """Each bin's PSI term between counts a of n and b of m values, smoothed as psi() does."""
    p = (a + PSI_PSEUDOCOUNT) / (n + PSI_PSEUDOCOUNT * bins)
    q = (b + PSI_PSEUDOCOUNT) / (m + PSI_PSEUDOCOUNT * bins)
    return (q - p) * np.log(q / p)


def _moments(terms, shares: np.ndarray, n: int, m: int, unit_n: float, unit_m: float) -> tuple[float, float]:
    """Mean and variance of a sum of per-bin terms(a, b) over bins of these shares of one law, a and b the counts
    of samples of n and m values. A bin expecting at least EXACT_BIN_COUNT values on both sides adds one
    chi-square degree of freedom, unit = unit_n + unit_m (mean) and 2 unit^2 (variance); a sparser one its exact
    moments over Poisson counts, the larger side held at its mean (its noise added to first order) when it
    expects 5 times more. The fixed totals then take one degree of freedom off."""
    la, lb = n * shares, m * shares
    unit = unit_n + unit_m
    dense = np.minimum(la, lb) >= EXACT_BIN_COUNT
    mean, var = unit * (dense.sum() - 1), 2 * unit * unit * (dense.sum() - 1)
    both = ~dense & (np.maximum(la, lb) < 5 * np.minimum(la, lb))
    if both.any():
        (ka, wa), (kb, wb) = _poisson(la[both]), _poisson(lb[both])
        t = terms(ka[:, None], kb[None, :])
        e = ((wa @ t) * wb).sum(axis=1)
        mean += e.sum()
        var += (((wa @ (t * t)) * wb).sum(axis=1) - e * e).sum()
    for held, drawn, unit_held, unit_drawn, flip in ((la, lb, unit_n, unit_m, False), (lb, la, unit_m, unit_n, True)):
        rows = ~dense & ~both & (held >= drawn)
        if flip:
            rows &= held > drawn
        if rows.any():
            k, w = _poisson(drawn[rows])
            fixed = np.broadcast_to(held[rows][:, None], w.shape)
            t = terms(np.broadcast_to(k, w.shape), fixed) if flip else terms(fixed, np.broadcast_to(k, w.shape))
            e = (w * t).sum(axis=1)
            mean += e.sum() + unit_held * rows.sum()
            var += ((w * t * t).sum(axis=1) - e * e).sum()
            var += (2 * unit_held**2 + 4 * unit_held * unit_drawn) * rows.sum()
    return float(mean), float(max(var, 0.0))


def scaled_chi2_point(mean: float, var: float, alpha: float) -> float:
    """(1-alpha) point of the scaled chi-square c·chi2_nu with this mean and variance (Satterthwaite 1946)."""
    if mean <= 0:
        return 0.0
    if var <= 0:
        return mean
    return var / (2 * mean) * float(special.chdtri(2 * mean * mean / var, alpha))


def js_noise(n_bins: int, n: int, m: int, alpha: float, *, shares=None, unseen=(), bias: float = 0.0) -> float:
    """(1-alpha) point of the JS distance between two samples of one law.

    Without `shares`, the large-sample point: JSD (nats) ~ chi2_{k-1} (1/n + 1/m) / 8 on k = n_bins bins. With the
    law's `shares` of the bins both samples can fill (the pooled histogram), the JSD's mean and variance come from
    _moments, exact where bins are sparse (there the chi-square point was up to 2x too low). `unseen`: the law's
    share u in each bin the reference leaves empty by construction (beyond its range, outside a complete
    vocabulary); the batch's share q there adds exactly q ln(2)/2, q having mean u and variance u (1/n + 1/m).
    `bias`: the JSD (bits) between the reference's histogram and its law where the reference chose its own bins
    (a top-K vocabulary). The point is that of the scaled chi-square with the resulting mean and variance.
    """
    if not (n and m):
        return math.inf
    ln2 = math.log(2)
    if shares is None:
        unit = (1 / n + 1 / m) / 8
        mean, var = unit * (n_bins - 1), 2 * unit * unit * (n_bins - 1)
    else:
        mean, var = _moments(lambda a, b: _js_terms(a, b, n, m), np.asarray(shares, dtype=np.float64), n, m,
                             1 / (8 * n), 1 / (8 * m))
    for u in unseen:
        mean += u * ln2 / 2
        var += (ln2 / 2) ** 2 * u * (1 / n + 1 / m)
    return math.sqrt(scaled_chi2_point(mean + bias * ln2, var, alpha) / ln2)


def psi_noise(n_bins: int, n: int, m: int, alpha: float, *, shares=None, unseen=(), bias: float = 0.0,
              total_bins: int = 0) -> float:
    """(1-alpha) point of PSI under no change.

    Without `shares`, the large-sample point PSI ~ chi2_{k-1} (1/n + 1/m) on k = n_bins bins. With the law's
    `shares` of the bins both samples can fill and `unseen` as in js_noise (each such bin's term summed exactly
    over the batch's count, the reference's being 0) and `bias` the PSI between the reference's histogram and its
    law where it chose its own bins, the scaled chi-square with PSI's mean and variance; `total_bins` is the
    histogram's length, which sets psi()'s smoothing (the bins in neither are empty on both sides).
    """
    if not (n and m):
        return math.inf
    if shares is None:
        return _chi2_quantile(n_bins - 1, alpha) * sample_factor(n, m) ** 2
    bins = total_bins or len(shares) + len(unseen)

    def terms(a, b):
        return _psi_terms(a, b, n, m, bins)

    mean, var = _moments(terms, np.asarray(shares, dtype=np.float64), n, m, 1 / n, 1 / m)
    # A bin empty on both sides still adds to PSI when n != m (its smoothed shares differ): a constant.
    empty = float(terms(0.0, 0.0))
    mean += (bins - len(shares) - len(unseen)) * empty + bias
    for u in unseen:
        # The batch's count there: Poisson around the law's share, itself uncertain (variance u/n, as in
        # js_noise): a negative binomial. A discrete law may leave the bin empty, which scores `empty`.
        lam, shape = m * u, max(n * u, 1.0)
        k = np.arange(int(lam + 12 * math.sqrt(lam + lam * lam / shape)) + 21, dtype=np.float64)
        w = np.exp(special.gammaln(k + shape) - special.gammaln(shape) - special.gammaln(k + 1)
                   + shape * math.log(shape / (shape + lam)) + k * math.log(lam / (shape + lam) if lam else 1.0))
        t = terms(0.0, k)
        e = float(w @ t)
        mean, var = mean + max(e, empty), var + float(w @ (t * t)) - e * e
    return scaled_chi2_point(mean, var, alpha)


def linf_noise(freqs: np.ndarray, n: int, m: int, alpha: float, bias: float = 0.0) -> float:
    """(1-alpha) point of the largest frequency change, Bonferroni over the bins, plus `bias`: the share the
    reference's own histogram misplaces where it chose its bins (a vocabulary's unseen or top-K selected mass),
    which the batch moves back by itself."""
    k = max(int((freqs > 0).sum()), 1)
    z = normal_quantile(alpha / (2 * k))
    return float(z * np.sqrt(freqs * (1 - freqs)).max(initial=0.0) * sample_factor(n, m)) + bias


def ks_noise(n: int, m: int, alpha: float, sketch_error: float) -> float:
    """Asymptotic two-sample KS critical value plus both sketches' rank error bound."""
    return math.sqrt(-math.log(alpha / 2) / 2) * sample_factor(n, m) + sketch_error


def spread_integral(a: QuantileSketch, b: QuantileSketch) -> float:
    """Integral of sqrt(F(1-F)) dx for F the pooled CDF of both sketches (under no change, the best estimate of
    the one law): the batch's tail counts too, so a reference that missed a rare far value still gets a floor."""
    if a.empty or b.empty:
        return 0.0
    points, cdf_a, cdf_b = _step_cdfs(a, b)
    cdf = (a.n * cdf_a + b.n * cdf_b) / (a.n + b.n)
    return float(np.sum(np.sqrt(np.clip(cdf * (1 - cdf), 0, None))[:-1] * np.diff(points)))


def wasserstein_noise(spread: float, scale: float, n: int, m: int, alpha: float) -> float:
    """Normed W1 that two samples of one law exceed with probability at most about alpha.

    Under no change sqrt(nm/(n+m))·W1 tends to the integral of |B(F(x))| dx, B a Brownian bridge: a weighted mean
    of |N(0, 1)| variables with weights sqrt(F(1-F)), whose (1 - alpha) point is z_{alpha/2} (3.29 at 0.001) when
    one jump carries the law (a boolean-like or few-valued feature) and lower when the weight spreads (2.0-2.7
    for normal, lognormal, exponential and bimodal data). So: z_{alpha/2} · spread / scale · sqrt(1/n + 1/m).
    """
    if scale <= 0:
        return 0.0
    return normal_quantile(alpha / 2) * spread / scale * sample_factor(n, m)
