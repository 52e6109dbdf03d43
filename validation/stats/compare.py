"""compare(): a batch profile against a baseline (schema + profile) into a Report."""

from __future__ import annotations

from . import metrics as m
from .checks import FeatureCheck
from .privacy import personal_data_anomalies
from .profile import Profile
from .report import (
    CONCEPT_DRIFT,
    DRIFT,
    ERROR,
    LABEL_DRIFT,
    UNEXPECTED_FEATURE,
    WARNING,
    Anomaly,
    Report,
    verdict_for,
)
from .schema import SERVING, TRAINING, Schema, infer_schema
from .shift import class_conditional_distance, classify, concept_distance, metric_value
from .thresholds import Thresholds


def compare(
    batch: Profile,
    baseline: Profile,
    *,
    schema: Schema | None = None,
    thresholds: Thresholds | None = None,
    environment: str | None = None,
    privacy: str = "error",
) -> Report:
    """Check a batch against the baseline: schema, per-feature drift, label and concept drift.

    `environment` (TFDV's idea): which of the schema's features the batch must carry. By default a
    batch that carries labels is training data and one without any is serving data (production
    records waiting for their labels), in which the label is not expected (infer_schema's default).
    `privacy` (the source's setting): a text feature of the batch whose share of personal data reaches
    the floor is an anomaly of this severity, "error" or "warn"; "off" reports none (privacy.py).
    """
    if batch.spec != baseline.spec:
        raise ValueError("profile the batch with the baseline's spec (profile.spec)")
    if environment is None:
        environment = TRAINING if batch.has_labels else SERVING
    schema = schema or infer_schema(baseline)
    th = thresholds or Thresholds()
    label = schema.label
    anomalies: list[Anomaly] = []
    metrics = {}
    drifted, compared = [], 0
    for name in schema.expected(environment):
        fs = schema.features[name]
        check = FeatureCheck(name, th)
        check.run(fs, baseline.spec.feature(name), baseline.features.get(name),
                  batch.features.get(name), batch.n_rows, distribution=name != label)
        metrics[name] = check.metrics
        anomalies += check.anomalies
        if name != label and name in batch.features:
            compared += 1
            if any(a.kind == DRIFT for a in check.anomalies):
                drifted.append(name)
    for name in batch.features:
        # The label column is named by the spec even when the reference had none: not an unexpected feature.
        if name not in schema.features and name != baseline.spec.label:
            anomalies.append(Anomaly(UNEXPECTED_FEATURE, name, "presence", None, None, WARNING,
                                     f"{name} is not in the schema"))
    anomalies += personal_data_anomalies(batch, privacy)
    labels_known = baseline.has_labels and batch.has_labels and label is not None
    label_moved, concept, conditional = False, [], []
    if labels_known:
        label_moved = _label_drift(batch, baseline, th, metrics, anomalies)
        concept, conditional = _concept_drift(batch, baseline, th, metrics, anomalies)
    shift = classify(drifted, concept, label_moved, conditional, labels_known)
    share = len(drifted) / compared if compared else 0.0
    verdict, reasons = verdict_for(anomalies, share, th.drift_share)
    return Report(anomalies, metrics, drifted, share, shift, verdict, reasons,
                  batch.n_rows, baseline.n_rows)


def _severity(n: int, th: Thresholds) -> str:
    return ERROR if n >= th.min_rows else WARNING


def _label_drift(batch, baseline, th, metrics, anomalies) -> bool:
    label = baseline.spec.label
    p, q = baseline.features[label].hist, batch.features[label].hist
    n_base, n_batch = int(p.sum()), int(q.sum())
    if not (n_base and n_batch):
        return False
    freqs = (p + q) / (n_base + n_batch)
    noise = m.linf_noise(freqs, n_base, n_batch, th.alpha)
    mv = metric_value(m.linf(p, q), noise, th.get(label, "label"))
    metrics.setdefault(label, {})["label"] = mv
    if not mv.exceeded:
        return False
    classes = list(baseline.spec.label_classes) + ["other"]
    shares = ", ".join(f"{c} {a / n_base:.1%} -> {b / n_batch:.1%}" for c, a, b in zip(classes, p, q))
    anomalies.append(Anomaly(LABEL_DRIFT, label, "label", mv.value, mv.threshold,
                             _severity(min(n_base, n_batch), th),
                             f"label {label} distribution moved: {shares}"))
    return True


def _concept_drift(batch, baseline, th, metrics, anomalies):
    label = baseline.spec.label
    concept, conditional = [], []
    for name, base_fp in baseline.features.items():
        batch_fp = batch.features.get(name)
        if name == label or batch_fp is None or base_fp.label_hist is None:
            continue
        if batch_fp.label_hist is None or batch_fp.label_hist.shape != base_fp.label_hist.shape:
            continue
        value, noise = class_conditional_distance(base_fp.label_hist, batch_fp.label_hist, th.alpha)
        mv = metric_value(value, noise, th.get(name, "class_conditional"))
        metrics[name]["class_conditional"] = mv
        if mv.exceeded:
            conditional.append(name)
        value, noise = concept_distance(base_fp.label_hist, batch_fp.label_hist, th.alpha)
        mv = metric_value(value, noise, th.get(name, "concept"))
        metrics[name]["concept"] = mv
        if mv.exceeded:
            concept.append(name)
            n = min(base_fp.present, batch_fp.present)
            anomalies.append(Anomaly(CONCEPT_DRIFT, name, "concept", mv.value, mv.threshold,
                                     _severity(n, th),
                                     f"P({label} | {name}) moved by {mv.value:.3g} "
                                     f"(mass-weighted total variation, >= {mv.threshold:.3g})"))
    return concept, conditional
