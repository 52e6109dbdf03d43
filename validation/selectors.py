"""Reads for the data-quality pages: the home page's counts and queues, and a batch's charts."""
from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from collection.models import Batch, Source

from .models import Alert, ValidationRun
from .stats import Profile, Schema, Thresholds, compare


def source_silences(*, now=None) -> list[dict]:
    """Each source with an expected interval: when it last sent a batch (or was made), and whether it
    has been silent longer than its interval times SIEVE_SILENCE_TOLERANCE."""
    now = now or timezone.now()
    last = dict(Batch.objects.values("source_id").annotate(at=Max("received_at")).values_list("source_id", "at"))
    out = []
    for source in Source.objects.filter(expected_interval__isnull=False):
        since = last.get(source.pk) or source.created_at
        silent = now - since > source.expected_interval * settings.SIEVE_SILENCE_TOLERANCE
        out.append({"source": source, "since": since, "silent": silent})
    return out


def quality_overview() -> dict:
    """Counts of batches by status, open alerts, and the sources silent past their interval."""
    counts = dict(Batch.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {
        "counts": [(status.label, counts.get(status.value, 0), status.value) for status in Batch.Status],
        "alerts": Alert.objects.filter(resolved_at__isnull=True).select_related("source", "batch")[:50],
        "silent": [s for s in source_silences() if s["silent"]],
    }


def quarantine_queue():
    return Batch.objects.filter(status=Batch.Status.QUARANTINED).select_related("source", "validation") \
        .order_by("-received_at", "-id")


def _bin_labels(spec) -> list[str]:
    if spec.kind == "numeric":
        edges = [f"{e:.4g}" for e in spec.edges]
        return [f"< {edges[0]}"] + [f"{a} to {b}" for a, b in zip(edges, edges[1:])] + [f"≥ {edges[-1]}"]
    return [str(v) for v in spec.vocab] + ["other"]


def _shares(hist) -> list[float]:
    total = float(hist.sum()) or 1.0
    return [round(float(v) / total, 6) for v in hist]


def batch_charts(run: ValidationRun) -> list[dict]:
    """Per feature: bin labels, the baseline's and the batch's share per bin, and the metrics."""
    if not run.profile or run.baseline is None:
        return []
    batch, reference = Profile.from_json(run.profile), Profile.from_json(run.baseline.profile)
    metrics = run.report.get("metrics", {})
    flagged = {a.feature for a in run.anomalies.all()}
    charts = []
    for name, spec in reference.spec.features.items():
        if name not in batch.features or name not in reference.features:
            continue
        charts.append({
            "feature": name, "kind": spec.kind, "labels": _bin_labels(spec),
            "baseline": _shares(reference.features[name].hist), "batch": _shares(batch.features[name].hist),
            "metrics": metrics.get(name, {}), "flagged": name in flagged,
        })
    charts.sort(key=lambda c: (not c["flagged"], c["feature"]))
    return charts


# --- the effect of a baseline edit (validation/forms.py builds the edited schema and thresholds)


def _anomaly_keys(report) -> dict:
    return {(a.kind, a.feature, a.metric): a for a in report.anomalies}


def baseline_effect(baseline, schema, thresholds) -> dict | None:
    """What an edit of the baseline would change on the last batch validated against it: the
    verdict and anomalies under the saved settings and under the edited ones. None when no batch
    has been validated against this baseline yet. Reads only."""
    run = (ValidationRun.objects.filter(baseline=baseline).exclude(profile="").select_related("batch__source")
           .order_by("-finished_at", "-id").first())
    if run is None:
        return None
    batch, reference = Profile.from_json(run.profile), Profile.from_json(baseline.profile)
    saved = compare(batch, reference, schema=Schema.from_dict(baseline.schema),
                    thresholds=Thresholds.from_dict(baseline.thresholds or {}))
    edited = compare(batch, reference, schema=schema, thresholds=thresholds)
    before, after = _anomaly_keys(saved), _anomaly_keys(edited)
    quarantines = {"fail"} | ({"warn"} if run.batch.source.quarantine_on == "warn" else set())
    return {
        "batch": run.batch,
        "before": saved.verdict, "after": edited.verdict,
        "before_outcome": "quarantined" if saved.verdict in quarantines else "admitted",
        "after_outcome": "quarantined" if edited.verdict in quarantines else "admitted",
        "added": [after[k] for k in after if k not in before],
        "removed": [before[k] for k in before if k not in after],
        "kept": len([k for k in after if k in before]),
        "reasons": edited.reasons,
    }
