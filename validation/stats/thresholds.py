"""Default thresholds, each beside its metric's exact definition, and per-feature overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

# metric -> (default threshold or None for report-only, definition). A value at or above the
# effective threshold (see Thresholds.effective) raises an anomaly.
METRICS: dict[str, tuple[float | None, str]] = {
    # 0.05 and 0.025: between the quality suite's negligible moves (0.02 std, a share by 0.01), which must pass
    # at any size, and issue 12's subtle ones (0.085 std, a share by 0.036), which must be found from 20,000 rows
    # (docs/validation.md, "Calibration"); below them the noise floor, not the threshold, is what protects.
    "wasserstein": (0.05, "Wasserstein-1 distance / baseline population std (numeric)"),
    "js": (0.1, "Jensen-Shannon distance, log base 2, in [0, 1], on the baseline's bins"),
    "linf": (0.025, "max over categories (vocabulary + other) of |batch share - baseline share|"),
    "psi": (None, "PSI sum((q-p) ln(q/p)), +0.5 count per bin; conventionally 0.25"),
    "ks": (None, "Kolmogorov-Smirnov statistic sup|F_batch - F_baseline| from KLL sketches"),
    "out_of_domain": (0.01, "share of present batch values outside the schema's domain"),
    "out_of_range": (0.01, "share of batch numbers (inf included) outside the schema's range"),
    "missing_rate": (0.05, "|batch missing share - baseline missing share|"),
    "label": (0.05, "L-infinity distance of the label's class frequencies"),
    "concept": (0.1, "bin-mass-weighted total variation of P(label | feature bin)"),
    "class_conditional": (0.1, "label-weighted JS distance of P(feature bin | label)"),
}

# Which distribution metrics decide drift for each kind of feature (TFDV/Evidently-like), the deciding one first.
# The one list of them: the compare (checks.py) flags a feature when any of these that has a threshold is
# exceeded, the drift chart shows the first that has one, and the baseline form offers a per-feature threshold
# for each that has a default (`feature_metrics`).
DECIDING = {"numeric": ("wasserstein", "js", "psi", "ks"), "categorical": ("linf", "js", "psi")}


def feature_metrics(kind: str) -> tuple[str, ...]:
    """The per-feature thresholds offered for a kind of feature: its deciding metrics that have a default
    threshold, in DECIDING's order, and the missing rate."""
    return (*(name for name in DECIDING.get(kind, ()) if METRICS[name][0] is not None), "missing_rate")


@dataclass
class Thresholds:
    """Thresholds per metric, overridable per feature, plus the small-sample rules."""

    defaults: dict[str, float | None] = field(
        default_factory=lambda: {name: value for name, (value, _) in METRICS.items()}
    )
    per_feature: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # Below this many present values on either side a distribution check only warns.
    min_rows: int = 100
    # Effective thresholds are raised to the (1 - alpha) point of the metric under no change.
    alpha: float = 0.001
    # Share of drifted features at which the report calls the whole dataset drifted.
    drift_share: float = 0.5

    def get(self, feature: str, metric: str) -> float | None:
        """The configured threshold, None meaning report-only."""
        override = self.per_feature.get(feature, {})
        return override[metric] if metric in override else self.defaults.get(metric)

    def effective(self, feature: str, metric: str, noise: float) -> float | None:
        """The configured threshold raised to the no-change noise floor of this comparison."""
        value = self.get(feature, metric)
        return None if value is None else max(value, noise)

    def to_dict(self) -> dict:
        """Plain JSON-ready form."""
        return {
            "defaults": dict(self.defaults),
            "per_feature": {k: dict(v) for k, v in self.per_feature.items()},
            "min_rows": self.min_rows,
            "alpha": self.alpha,
            "drift_share": self.drift_share,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Thresholds:
        """Inverse of to_dict; missing defaults keep their built-in values."""
        base = cls()
        base.defaults.update(d.get("defaults", {}))
        return cls(
            base.defaults,
            {k: dict(v) for k, v in d.get("per_feature", {}).items()},
            d.get("min_rows", base.min_rows),
            d.get("alpha", base.alpha),
            d.get("drift_share", base.drift_share),
        )
