"""Per-feature checks of a batch against the schema and the baseline profile."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from . import metrics as m
from .categorical import CategoricalProfile
from .features import FeatureProfile
from .numeric import NumericProfile
from .report import (
    DRIFT,
    ERROR,
    MISSING_FEATURE,
    MISSING_RATE,
    OUT_OF_DOMAIN,
    OUT_OF_RANGE,
    TYPE_CHANGE,
    WARNING,
    Anomaly,
    MetricValue,
)
from .schema import FeatureSchema
from .spec import FeatureSpec
from .thresholds import DECIDING, Thresholds


class FeatureCheck:
    """Runs every check of one feature and collects its metrics and anomalies."""

    def __init__(self, name: str, th: Thresholds):
        self.name = name
        self.th = th
        self.metrics: dict[str, MetricValue] = {}
        self.anomalies: list[Anomaly] = []

    def metric(self, key: str, value: float, noise: float = 0.0, p_value=None, metric=None, error=None):
        """Record a metric; its threshold is the configured one raised to the noise floor (which includes the
        sketches' error bound `error`, where a sketch stands in for the data)."""
        threshold = self.th.effective(self.name, metric or key, noise)
        mv = MetricValue(float(value), threshold, p_value, error)
        self.metrics[key] = mv
        return mv

    def flag(self, kind, metric, mv: MetricValue | None, severity, explanation) -> None:
        """Record an anomaly."""
        value = None if mv is None else mv.value
        threshold = None if mv is None else mv.threshold
        self.anomalies.append(
            Anomaly(kind, self.name, metric, value, threshold, severity, explanation)
        )

    def run(self, fs: FeatureSchema, spec: FeatureSpec | None, base, batch, batch_rows: int,
            *, distribution: bool = True):
        """All checks for a feature the schema expects (the label's drift is checked apart)."""
        if batch is None:
            if fs.required:
                self.flag(MISSING_FEATURE, "presence", None, ERROR, f"{self.name} is absent")
                return
            batch_missing, batch_count = batch_rows, batch_rows
        elif batch.kind != fs.kind:
            self.flag(TYPE_CHANGE, "type", None, ERROR,
                      f"{self.name} is {batch.kind} in the batch, {fs.kind} in the schema")
            return
        else:
            batch_missing, batch_count = batch.missing, batch.count
        if base is not None:
            self.missing_rate(base, batch_missing, batch_count)
        if batch is None:
            return
        reference_rows = base.present if base is not None else 0
        if isinstance(batch, NumericProfile):
            self.out_of_range(fs, spec, batch, reference_rows)
        else:
            self.out_of_domain(fs, spec, batch, base)
        if distribution and base is not None and base.present and batch.present:
            self.distribution(base, batch, spec)

    def missing_rate(self, base: FeatureProfile, missing: int, count: int) -> None:
        """Change of the missing share, against a binomial noise floor."""
        if not count or not base.count:
            return
        ra, rb = base.missing / base.count, missing / count
        pooled = (base.missing + missing) / (base.count + count)
        z = m.normal_quantile(self.th.alpha / 2)
        noise = z * math.sqrt(pooled * (1 - pooled)) * m.sample_factor(base.count, count)
        mv = self.metric("missing_rate", abs(rb - ra), noise)
        if mv.exceeded:
            self.flag(MISSING_RATE, "missing_rate", mv, ERROR,
                      f"{self.name} missing {ra:.1%} in the baseline, {rb:.1%} in the batch")

    def out_of_range(self, fs: FeatureSchema, spec: FeatureSpec | None, batch: NumericProfile,
                     reference_rows: int = 0):
        """Share of batch numbers outside [min, max]; inf counts as out of range.

        Noise floor: a range seen in n reference values leaves out a share of the same law that is at most
        m.range_miss(n, alpha) (its (1 - alpha) point), plus the batch's binomial noise around it; a 200-row
        reference leaves out ~5%, a million-row one ~0.001%, so the practical 1% decides there.
        """
        total = batch.present + batch.nonfinite
        if not total or (fs.min is None and fs.max is None):
            return
        below = above = 0.0
        lo = -math.inf if fs.min is None else fs.min
        hi = math.inf if fs.max is None else fs.max
        if batch.present and (batch.min < lo or batch.max > hi):
            edges = spec.edges if spec else ()
            if edges and edges[0] == lo and edges[-1] == np.nextafter(hi, math.inf):
                # The baseline's own range is exactly the outer histogram edges.
                below, above = batch.hist[0], batch.hist[-1]
            else:
                cdf = batch.quantiles.cdf(np.array([np.nextafter(lo, -math.inf), hi]))
                below, above = cdf[0] * batch.present, (1 - cdf[1]) * batch.present
        share = (below + above + batch.nonfinite) / total
        noise = m.unseen_share_noise(m.range_miss(reference_rows, self.th.alpha), total, self.th.alpha) \
            if reference_rows else 0.0
        mv = self.metric("out_of_range", share, noise)
        if share > 0 and mv.exceeded:
            seen = f"batch {batch.min:.6g}..{batch.max:.6g}" if batch.present else "no finite value"
            infinite = f", {batch.nonfinite} infinite" if batch.nonfinite else ""
            self.flag(OUT_OF_RANGE, "out_of_range", mv, ERROR,
                      f"{share:.1%} of {self.name} outside [{lo:.6g}, {hi:.6g}] ({seen}{infinite})")

    def out_of_domain(self, fs: FeatureSchema, spec, batch: CategoricalProfile, base=None) -> None:
        """Share of present batch values outside the schema's domain.

        Noise floor: the share of the same law a reference has not seen (Good-Turing: values seen once over
        the reference's rows, plus its noise), plus the batch's binomial noise around it.
        """
        if fs.domain is None or not batch.present:
            return
        vocab = spec.vocab if spec else ()
        allowed = set(fs.domain)
        inside = sum(int(c) for v, c in zip(vocab, batch.hist) if v in allowed)
        share = 1 - inside / batch.present
        noise = 0.0
        if base is not None and base.present and spec and len(spec.vocab) and base.hist[-1] == 0:
            # Every reference value is in the vocabulary, so its counts say how many were seen once.
            singletons = int(np.count_nonzero(base.hist[:-1] == 1))
            unseen = m.unseen_mass(singletons, base.present, self.th.alpha)
            noise = m.unseen_share_noise(unseen, batch.present, self.th.alpha)
        mv = self.metric("out_of_domain", share, noise)
        if share > 0 and mv.exceeded:
            # A feature of personal data keeps no example (privacy.py): then none is quoted.
            examples = ", ".join(repr(v) for v in list(batch.other_examples)[:3])
            self.flag(OUT_OF_DOMAIN, "out_of_domain", mv, ERROR,
                      f"{share:.1%} of {self.name} outside its domain" + (f" (e.g. {examples})" if examples else ""))

    def distribution(self, base: FeatureProfile, batch: FeatureProfile, spec) -> None:
        """Distances between the binned distributions, and sketch metrics for numbers."""
        p, q = base.hist, batch.hist
        n_base, n_batch = base.present, batch.present
        bins = int(((p + q) > 0).sum())
        alpha = self.th.alpha
        # Its p-value is not reported: on two samples of one law 7-15% of them fell below 0.001 (bench/calibration.py),
        # as the reference picks its own range and top-K vocabulary and sparse bins stretch the chi-square law.
        self.metric("chi2", m.chi2_pvalue(p, q)[0])
        gaps = _reference_gaps(base, q, alpha)
        self.metric("js", m.js_distance(p, q), m.js_noise(bins, n_base, n_batch, alpha, shares=gaps.shares,
                                                          unseen=gaps.unseen, bias=gaps.js_bias))
        self.metric("psi", m.psi(p, q), m.psi_noise(bins, n_base, n_batch, alpha, shares=gaps.shares,
                                                    unseen=gaps.unseen, bias=gaps.psi_bias, total_bins=p.size))
        if isinstance(base, NumericProfile):
            self._numeric(base, batch, spec)
        else:
            freqs = (p + q) / (n_base + n_batch)
            self.metric("linf", m.linf(p, q), m.linf_noise(freqs, n_base, n_batch, alpha, bias=gaps.misplaced))
        self._decide(base, batch, spec, min(n_base, n_batch))

    def _numeric(self, base: NumericProfile, batch: NumericProfile, spec) -> None:
        n_base, n_batch = base.present, batch.present
        alpha = self.th.alpha
        a, b = base.quantiles, batch.quantiles
        d = m.ks_statistic(a, b)
        # A p-value only where the statistic is exact: from sketches at large n, a statistic off by a fraction
        # of a percent makes the asymptotic p-value meaningless (an undrifted 1M-row column got 5e-6).
        sketch_error = a.rank_error() + b.rank_error()
        self.metric("ks", d, m.ks_noise(n_base, n_batch, alpha, sketch_error),
                    p_value=m.ks_pvalue_exact(a, b, d), error=sketch_error)
        scale = base.std if base.std > 0 else batch.std
        w = m.normed_wasserstein(m.wasserstein(a, b), base.std, batch.std)
        w_error = (a.w1_error() + b.w1_error()) / scale if scale > 0 else 0.0
        spread = m.spread_integral(a, b)
        self.metric("wasserstein", w, m.wasserstein_noise(spread, scale, n_base, n_batch, alpha) + w_error,
                    error=w_error)

    def _decide(self, base, batch, spec, n_min: int) -> None:
        exceeded = [k for k in DECIDING[base.kind] if k in self.metrics and self.metrics[k].exceeded]
        if not exceeded:
            return
        worst = max(exceeded, key=lambda k: self.metrics[k].value / max(self.metrics[k].threshold, 1e-12))
        small = n_min < self.th.min_rows
        severity = WARNING if small else ERROR
        parts = ", ".join(
            f"{k} {self.metrics[k].value:.3g} >= {self.metrics[k].threshold:.3g}" for k in exceeded
        )
        note = f" (only {n_min} values: below min_rows={self.th.min_rows})" if small else ""
        self.flag(DRIFT, worst, self.metrics[worst], severity,
                  f"{self.name} drifted: {parts}; {_summary(base, batch, spec)}{note}")


@dataclass
class _Gaps:
    """Where a reference's histogram differs from its own law by construction (see _reference_gaps)."""

    shares: np.ndarray
    unseen: list[float] = field(default_factory=list)
    misplaced: float = 0.0
    js_bias: float = 0.0
    psi_bias: float = 0.0


def _reference_gaps(base: FeatureProfile, q: np.ndarray, alpha: float) -> _Gaps:
    """The noise floors' view of the reference's histogram: the pooled shares of the bins both samples can fill;
    the law's expected share in each bin the reference leaves empty by construction; and the share it misplaces
    where it chose its own bins, with the JS divergence (bits) that alone makes.

    - numeric: an outer bin (beyond the reference's range) it left empty expects 1/(n + 1) of a continuous law;
    - categorical with a complete vocabulary ("other" empty): "other" expects Good-Turing's unseen share N1/n
      (JS and PSI take (N1 + 1)/(n + 1), as a reference that saw no value once may still have missed some);
    - categorical with a top-K vocabulary: the categories at the cut were kept because the reference saw them
      often, by Good-Turing ((c+1) N_{c+1} (1 - f) + c V) / n too often, c the smallest vocabulary count, V the
      categories kept at c, N_{c+1} those seen c + 1 times and f = V / (V + those left out at c, counted in the
      examples of "other"); the batch moves that share back to "other".
    Good-Turing's counts N1 and N_{c+1} are noisy (Poisson): the misplaced share takes their upper point,
    N + z_alpha sqrt(N), so an unlucky estimate does not lower the floors.
    """
    z = m.normal_quantile(alpha)
    p = base.hist.astype(np.float64)
    n = p.sum()
    fill = np.ones(p.size, dtype=bool)
    gaps = _Gaps(np.zeros(0))
    if isinstance(base, NumericProfile):
        for i in {0, p.size - 1}:
            if p[i] == 0:
                fill[i] = False
                gaps.unseen.append(1 / (n + 1))
    elif p[-1] == 0:
        fill[-1] = False
        singletons = int(np.count_nonzero(p[:-1] == 1))
        gaps.misplaced = (singletons + z * math.sqrt(singletons)) / n
        # At least one category's worth: a reference that saw no value once may still have missed some.
        gaps.unseen.append((singletons + 1) / (n + 1))
    elif p.size > 1 and p[:-1].max() > 0:
        vocab = p[:-1]
        cut = vocab[vocab > 0].min()
        kept, above = int(np.count_nonzero(vocab == cut)), int(np.count_nonzero(vocab == cut + 1))
        # The examples of "other" are its most frequent values: if one is seen fewer than c times, they list every
        # value left out at c; else how many were is unknown, and f = 0 is the cautious guess.
        examples = list(base.other_examples.values())
        left_out = sum(1 for c in examples if c == cut)
        unlisted = 1.0 if min(examples, default=cut) >= cut else left_out / (kept + left_out)
        at_cut = (vocab == cut) | (vocab == cut + 1)
        moved = min((cut + 1) * (above + z * math.sqrt(above)) * unlisted + cut * kept, vocab[at_cut].sum())
        expected = p.copy()
        expected[:-1][at_cut] *= 1 - moved / vocab[at_cut].sum()
        expected[-1] += moved
        gaps.misplaced = moved / n
        gaps.js_bias = m.js_distance(p, expected) ** 2
        gaps.psi_bias = m.psi(p, expected)
    pooled = (p + q)[fill]
    gaps.shares = pooled[pooled > 0] / pooled.sum() if pooled.sum() else pooled
    return gaps


def _summary(base, batch, spec) -> str:
    """Where the change is, in the feature's own terms."""
    if isinstance(base, NumericProfile):
        return f"mean {base.mean:.4g} -> {batch.mean:.4g}, std {base.std:.4g} -> {batch.std:.4g}"
    shares = np.abs(batch.hist / batch.present - base.hist / base.present)
    i = int(shares.argmax())
    vocab = spec.vocab if spec else ()
    name = repr(vocab[i]) if i < len(vocab) else "other"
    return (f"share of {name} {base.hist[i] / base.present:.1%} -> "
            f"{batch.hist[i] / batch.present:.1%}")
