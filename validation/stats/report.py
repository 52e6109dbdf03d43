"""What a comparison returns: anomalies, per-feature metrics, shift type and a verdict."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

ERROR = "error"
WARNING = "warning"

PASS = "pass"
WARN = "warn"
FAIL = "fail"

# Anomaly kinds.
MISSING_FEATURE = "missing_required_feature"
UNEXPECTED_FEATURE = "unexpected_feature"
TYPE_CHANGE = "type_change"
OUT_OF_DOMAIN = "out_of_domain"
OUT_OF_RANGE = "out_of_range"
MISSING_RATE = "missing_rate_change"
DRIFT = "distribution_drift"
LABEL_DRIFT = "label_drift"
CONCEPT_DRIFT = "concept_drift"
PERSONAL_DATA = "personal_data"

# Shift types.
NO_SHIFT = "none"
COVARIATE = "covariate"
PRIOR = "prior"
CONCEPT = "concept"
DATASET = "dataset"


@dataclass
class Anomaly:
    """One finding: which check, on what, measured how far against which threshold."""

    kind: str
    feature: str
    metric: str
    value: float | None
    threshold: float | None
    severity: str
    explanation: str


@dataclass
class MetricValue:
    """A metric with its effective threshold (None: report-only), its p-value where one is right, and the
    proven bound of its error where a sketch stands in for the data (0: exact; None: computed from counts)."""

    value: float
    threshold: float | None = None
    p_value: float | None = None
    error: float | None = None

    @property
    def exceeded(self) -> bool:
        """True when a threshold applies and the value reaches it."""
        return self.threshold is not None and self.value >= self.threshold


@dataclass
class Shift:
    """The kind of shift and the features (or "label") that drove the classification."""

    kind: str = NO_SHIFT
    drivers: list[str] = field(default_factory=list)
    explanation: str = "nothing moved"


@dataclass
class Report:
    """The outcome of compare(): the decision and everything needed to explain it."""

    anomalies: list[Anomaly]
    metrics: dict[str, dict[str, MetricValue]]
    drifted_features: list[str]
    drifted_share: float
    shift: Shift
    verdict: str
    reasons: list[str]
    n_batch: int
    n_baseline: int

    def kinds(self) -> set[tuple[str, str]]:
        """(kind, feature) pairs, convenient for asserting what was found."""
        return {(a.kind, a.feature) for a in self.anomalies}

    def to_dict(self) -> dict:
        """Plain JSON-ready form."""
        d = asdict(self)
        d["metrics"] = {
            f: {m: asdict(v) for m, v in ms.items()} for f, ms in self.metrics.items()
        }
        return d

    def to_json(self) -> str:
        """JSON text (non-finite metric values are written as Infinity)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def verdict_for(anomalies: list[Anomaly], drifted_share: float, drift_share: float):
    """fail on any error, warn on any warning, else pass; with one reason per kind of finding."""
    by_kind: dict[tuple[str, str], list[str]] = {}
    for a in anomalies:
        by_kind.setdefault((a.severity, a.kind), []).append(a.feature)
    reasons = [
        f"{severity}: {kind} in {', '.join(sorted(set(features)))}"
        for (severity, kind), features in sorted(by_kind.items())
    ]
    if drifted_share >= drift_share:
        reasons.append(f"dataset drift: {drifted_share:.0%} of features drifted")
    severities = {a.severity for a in anomalies}
    verdict = FAIL if ERROR in severities else WARN if WARNING in severities else PASS
    if verdict == PASS:
        reasons.append("no anomaly")
    return verdict, reasons
