"""Reads for the data-quality pages: the home page's counts and queues, a batch's charts, the
sources' health, and each feature's drift over time."""
import datetime as dt
from collections import Counter

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import TruncDate
from django.utils import timezone

from collection.models import Batch, BatchTransition, Source, SourceKey

from .models import Alert, Baseline, DailyProfile, SourcePolicy, ValidationRun
from .stats import Profile, Schema, Thresholds, compare
from .stats.thresholds import DECIDING

# --- look-ups by id (None when there is none: the page or API answers 404)


def batch_exists(*, batch_id: int) -> bool:
    return Batch.objects.filter(pk=batch_id).exists()


def run_get(*, batch_id: int, light: bool = False) -> ValidationRun | None:
    """A batch's validation run with its baseline; `light`: without the run's report and profile and the
    baseline's profile, schema and thresholds (all large), as a page that shows the verdict alone needs."""
    runs = ValidationRun.objects.filter(batch_id=batch_id).select_related("baseline")
    if light:
        runs = runs.defer("report", "profile", "baseline__profile", "baseline__schema", "baseline__thresholds")
    return runs.first()


def run_with_anomalies_get(*, batch_id: int) -> ValidationRun | None:
    """A batch's run with its batch and anomalies, as the API shows it."""
    return ValidationRun.objects.filter(batch_id=batch_id).select_related("batch").prefetch_related("anomalies") \
        .first()


def run_anomaly_list(*, run: ValidationRun):
    """The run's anomalies, the most severe first, then by feature."""
    return run.anomalies.order_by("severity", "feature", "id")


def batch_transition_list(*, batch: Batch):
    """The batch's moves from status to status, in order."""
    return batch.transitions.all()


def source_get(*, source_id: int) -> Source | None:
    return Source.objects.filter(pk=source_id).first()


def baseline_get(*, baseline_id: int, source_id: int | None = None, profile: bool = True) -> Baseline | None:
    """A baseline with its source (of that source, if given); without its large profile unless `profile`."""
    baselines = Baseline.objects.select_related("source").filter(pk=baseline_id)
    if source_id is not None:
        baselines = baselines.filter(source_id=source_id)
    return (baselines if profile else baselines.defer("profile")).first()


def baseline_list(*, source: Source) -> list[Baseline]:
    """The source's baselines, newest first, with their schemas and thresholds but not their profiles."""
    return list(Baseline.objects.filter(source=source).defer("profile"))


# --- freshness


def _last_batch_at():
    """The newest batch's arrival, one index probe per source (index on source, -received_at)."""
    return Subquery(Batch.objects.filter(source=OuterRef("pk")).order_by("-received_at").values("received_at")[:1])


def freshness(source: Source, last_batch_at, *, now) -> dict:
    """When the source last sent a batch (or was made), and whether it has been silent longer than its
    expected interval times SIEVE_SILENCE_TOLERANCE (never, without an expected interval)."""
    since = last_batch_at or source.created_at
    allowed = source.expected_interval * settings.SIEVE_SILENCE_TOLERANCE if source.expected_interval else None
    return {"source": source, "since": since, "last_batch_at": last_batch_at, "age": now - since,
            "allowed": allowed, "silent": allowed is not None and now - since > allowed}


def source_silences(*, now=None) -> list[dict]:
    """Each source with an expected interval, with its freshness (see `freshness`)."""
    now = now or timezone.now()
    sources = Source.objects.filter(expected_interval__isnull=False).annotate(last_batch_at=_last_batch_at())
    return [freshness(source, source.last_batch_at, now=now) for source in sources]


# --- the home page


def quality_overview() -> dict:
    """Counts of batches by status, and the sources silent past their interval."""
    counts = dict(Batch.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {
        "counts": [(status.label, counts.get(status.value, 0), status.value) for status in Batch.Status],
        "silent": [s for s in source_silences() if s["silent"]],
    }


def open_alerts():
    return Alert.objects.filter(resolved_at__isnull=True).select_related("source").order_by("-last_seen_at", "-id")


def batch_rows(batches):
    """Batches for a table: with their source's name and their verdict, never the run's report or profile
    (both large)."""
    return batches.select_related("source", "validation").only(
        "id", "status", "received_at", "record_count", "source__name", "validation__verdict", "validation__reasons")


def quarantine_queue():
    return batch_rows(Batch.objects.filter(status=Batch.Status.QUARANTINED)).order_by("-received_at", "-id")


def failed_batches():
    """Batches that ended `failed` (a bad payload, or a step that kept failing), newest first, with their error."""
    return (Batch.objects.filter(status=Batch.Status.FAILED).select_related("source")
            .only("id", "received_at", "updated_at", "error", "error_line", "source__name")
            .order_by("-updated_at", "-id"))


# --- a batch against its baseline


def _bin_labels(spec) -> list[str]:
    if spec.kind == "numeric":
        edges = [f"{e:.4g}" for e in spec.edges]
        return [f"< {edges[0]}"] + [f"{a} to {b}" for a, b in zip(edges, edges[1:])] + [f"≥ {edges[-1]}"]
    return [str(v) for v in spec.vocab] + ["other"]


def _shares(hist) -> list[float]:
    total = float(hist.sum()) or 1.0
    return [round(float(v) / total, 6) for v in hist]


def _deciding_first(metrics: dict, kind: str) -> dict:
    """A feature's metrics in the engine's order: those that decide drift for its kind first (thresholds.DECIDING),
    then the rest as the report has them."""
    deciding = [name for name in DECIDING.get(kind, ()) if name in metrics]
    return {name: metrics[name] for name in [*deciding, *(n for n in metrics if n not in deciding)]}


def batch_chart_features(run: ValidationRun) -> list[tuple[str, bool]]:
    """The run's features in chart order: (name, flagged), those with an anomaly first, then by name."""
    if run.baseline is None or not run.report:
        return []
    flagged = set(run.anomalies.values_list("feature", flat=True))
    names = run.report.get("metrics", {}).keys()
    return sorted(((name, name in flagged) for name in names), key=lambda f: (not f[1], f[0]))


def report_chart_features(report: dict) -> list[tuple[str, bool]]:
    """A stored report's features in chart order, as batch_chart_features orders a run's (from its anomalies)."""
    flagged = {anomaly["feature"] for anomaly in report.get("anomalies", [])}
    return sorted(((name, name in flagged) for name in report.get("metrics", {})), key=lambda f: (not f[1], f[0]))


def batch_charts(run: ValidationRun, features: list[tuple[str, bool]]) -> list[dict]:
    """For the given features (name, flagged): bin labels, the baseline's and the batch's share per bin,
    and the metrics. Only these are drawn, so a page of charts costs the same with 10 or 1,000 features."""
    if not run.profile or run.baseline is None:
        return []
    return profile_charts(run.profile, run.baseline.profile, run.report, features)


def profile_charts(profile: str | Profile, reference: str | Profile, report: dict,
                   features: list[tuple[str, bool]]) -> list[dict]:
    """batch_charts from a profile, its reference (profile JSON or Profile, same spec) and the stored report:
    what a training-set version's gate draws too."""
    batch = Profile.from_json(profile) if isinstance(profile, str) else profile
    reference = Profile.from_json(reference) if isinstance(reference, str) else reference
    metrics = report.get("metrics", {})
    charts = []
    for name, flagged in features:
        spec = reference.spec.features.get(name)
        if spec is None or name not in batch.features or name not in reference.features:
            continue
        charts.append({
            "feature": name, "kind": spec.kind, "labels": _bin_labels(spec),
            "baseline": _shares(reference.features[name].hist), "batch": _shares(batch.features[name].hist),
            "metrics": _deciding_first(metrics.get(name, {}), spec.kind), "flagged": flagged,
        })
    return charts


# --- sources


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.timezone.utc)


def _verdict_quarantined():
    """True for a batch its verdict put in quarantine (it may have been approved or rejected since)."""
    return Exists(BatchTransition.objects.filter(batch=OuterRef("pk"), from_status=Batch.Status.VALIDATING,
                                                 to_status=Batch.Status.QUARANTINED))


def _batch_stats(rows):
    """Per group of batches: how many, their records, how many got a verdict and how many it quarantined."""
    return rows.annotate(batches=Count("id"), records=Sum("record_count"), validated=Count("validation"),
                         quarantined=Count("id", filter=Q(_verdict_quarantined())))


def _rate(quarantined: int, validated: int) -> float | None:
    return quarantined / validated if validated else None


def source_list():
    """Every source, with when its last batch arrived and the id of its active baseline."""
    active = Baseline.objects.filter(source=OuterRef("pk"), is_active=True).values("pk")[:1]
    return Source.objects.annotate(last_batch_at=_last_batch_at(), active_baseline_id=Subquery(active)) \
        .order_by("name")


def source_rows(sources, *, since: dt.datetime, now=None) -> list[dict]:
    """For each of these sources: its batches, records and quarantine rate since `since`, its freshness and its
    policy (SourcePolicy)."""
    now = now or timezone.now()
    sources = list(sources)
    stats = {row["source_id"]: row for row in _batch_stats(
        Batch.objects.filter(source__in=sources, received_at__gte=since).values("source_id").order_by())}
    policies = {policy.source_id: policy for policy in SourcePolicy.objects.filter(source__in=sources)}
    rows = []
    for source in sources:
        row = stats.get(source.pk, {"batches": 0, "records": 0, "validated": 0, "quarantined": 0})
        rows.append({**freshness(source, source.last_batch_at, now=now), **row,
                     "records": row["records"] or 0, "rate": _rate(row["quarantined"], row["validated"]),
                     "policy": policies.get(source.pk) or SourcePolicy(source=source)})
    return rows


def source_days(source: Source, *, start: dt.date, end: dt.date) -> dict:
    """Per UTC day from `start` to `end` (both included, days without batches as zeros): arrivals,
    records, batches with a verdict, those quarantined and the quarantine rate; and the totals."""
    grouped = _batch_stats(
        Batch.objects.filter(source=source, received_at__gte=_midnight(start),
                             received_at__lt=_midnight(end + dt.timedelta(days=1)))
        .annotate(day=TruncDate("received_at", tzinfo=dt.timezone.utc)).values("day").order_by())
    by_day = {row["day"]: row for row in grouped}
    keys = ("batches", "records", "validated", "quarantined")
    days, totals = [], dict.fromkeys(keys, 0)
    day = start
    while day <= end:
        row = by_day.get(day, {})
        counts = {key: row.get(key) or 0 for key in keys}
        days.append({"day": day.isoformat(), **counts, "rate": _rate(counts["quarantined"], counts["validated"])})
        for key in keys:
            totals[key] += counts[key]
        day += dt.timedelta(days=1)
    return {"days": days, "totals": {**totals, "rate": _rate(totals["quarantined"], totals["validated"])}}


def source_freshness(source: Source, *, now=None) -> dict:
    last = Batch.objects.filter(source=source).order_by("-received_at").values_list("received_at", flat=True).first()
    return freshness(source, last, now=now or timezone.now())


def source_keys(source: Source):
    """The source's keys, without their hashes."""
    return SourceKey.objects.filter(source=source).only(
        "source_id", "name", "prefix", "created_at", "last_used_at", "revoked_at").order_by("-created_at", "-id")


def source_baselines(source: Source):
    """The source's baselines, newest first, without their (large) profiles."""
    return Baseline.objects.filter(source=source).select_related("created_by").defer("profile", "schema", "thresholds")


def source_batches(source: Source):
    return batch_rows(Batch.objects.filter(source=source)).order_by("-received_at", "-id")


# --- drift over time

LABEL_METRIC = "label"


def drift_metrics(baseline: Baseline, feature: str, thresholds: Thresholds | None = None) -> tuple[str, ...]:
    """The metrics the drift chart can show for a feature, the deciding one first: the engine's deciding metrics
    for its kind (thresholds.DECIDING), in the engine's order, those with a threshold first. The chart shows what
    decides, not a report-only number."""
    schema = baseline.schema or {}
    if feature == schema.get("label"):
        return (LABEL_METRIC,)
    kind = schema.get("features", {}).get(feature, {}).get("kind", "numeric")
    thresholds = thresholds or Thresholds.from_dict(baseline.thresholds or {})
    choices = DECIDING.get(kind, DECIDING["numeric"])
    with_threshold = [m for m in choices if thresholds.get(feature, m) is not None]
    return tuple(with_threshold + [m for m in choices if m not in with_threshold])


def _daily(baseline: Baseline, start: dt.date, end: dt.date):
    return DailyProfile.objects.filter(baseline=baseline, day__gte=start, day__lte=end).order_by("day")


def drift_series(baseline: Baseline, *, feature: str, metric: str, start: dt.date, end: dt.date) -> dict:
    """Per day with batches: the feature's metric against the baseline, its threshold that day (the
    configured one raised to the day's noise floor), and whether the feature drifted that day."""
    path = KeyTransform(metric, KeyTransform(feature, "metrics"))
    rows = _daily(baseline, start, end).annotate(value=KeyTransform("value", path),
                                                 threshold=KeyTransform("threshold", path)) \
        .values_list("day", "value", "threshold", "drifted", "batch_count")
    series = {"feature": feature, "metric": metric, "days": [], "values": [], "thresholds": [], "drifted": [],
              "batches": []}
    for day, value, threshold, drifted, batches in rows:
        if metric == LABEL_METRIC:  # the label is never in `drifted`: its own metric decides
            moved = value is not None and threshold is not None and value >= threshold
        else:
            moved = feature in drifted
        series["days"].append(day.isoformat())
        series["values"].append(value)
        series["thresholds"].append(threshold)
        series["drifted"].append(moved)
        series["batches"].append(batches)
    return series


def drift_features(baseline: Baseline, *, start: dt.date, end: dt.date) -> tuple[list[dict], int]:
    """The baseline's features with how many days each drifted between `start` and `end`, worst first;
    and how many days had batches. Reads only each day's short list of drifted features."""
    counts, days = Counter(), 0
    for drifted in _daily(baseline, start, end).values_list("drifted", flat=True):
        counts.update(drifted)
        days += 1
    schema = baseline.schema or {}
    label = schema.get("label")
    if label in schema.get("features", {}) and days:
        counts[label] = sum(drift_series(baseline, feature=label, metric=LABEL_METRIC, start=start,
                                         end=end)["drifted"])
    thresholds = Thresholds.from_dict(baseline.thresholds or {})
    rows = [{"feature": name, "kind": spec.get("kind", ""), "metric": drift_metrics(baseline, name, thresholds)[0],
             "drifted_days": counts[name]}
            for name, spec in schema.get("features", {}).items()]
    rows.sort(key=lambda r: (-r["drifted_days"], r["feature"]))
    return rows, days


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
    saved_schema, saved_thresholds = Schema.from_dict(baseline.schema), Thresholds.from_dict(baseline.thresholds or {})
    policy = source_policy_get(source=run.batch.source)
    privacy = policy.privacy_check
    saved = compare(batch, reference, schema=saved_schema, thresholds=saved_thresholds, privacy=privacy)
    # The page's first view (and an untouched form) asks about the saved settings: one comparison.
    unchanged = schema.to_dict() == saved_schema.to_dict() and thresholds.to_dict() == saved_thresholds.to_dict()
    edited = saved if unchanged else compare(batch, reference, schema=schema, thresholds=thresholds, privacy=privacy)
    before, after = _anomaly_keys(saved), _anomaly_keys(edited)
    return {
        "batch": run.batch,
        "before": saved.verdict, "after": edited.verdict,
        "before_outcome": "quarantined" if policy.quarantines(saved.verdict) else "admitted",
        "after_outcome": "quarantined" if policy.quarantines(edited.verdict) else "admitted",
        "added": [after[k] for k in after if k not in before],
        "removed": [before[k] for k in before if k not in after],
        "kept": len([k for k in after if k in before]),
        "reasons": edited.reasons,
    }


# --- a source's policy


def source_policy_get(*, source: Source) -> SourcePolicy:
    """How validation treats the source's batches: its row, or the defaults (unsaved) when none was set."""
    return SourcePolicy.objects.filter(source=source).first() or SourcePolicy(source=source)
