"""The charts of one comparison of a version's gate report, in the shape templates/validation/_batch_charts.html
draws for a batch: the reference's and the version's share per bin of each feature, with its metrics."""
from types import SimpleNamespace

from validation.models import Baseline
from validation.selectors import profile_charts, report_chart_features

from .models import TrainingSetVersion


def _reference_profile(version: TrainingSetVersion, entry: dict) -> str:
    """The other side's profile JSON: the previous version's, or the baseline's ("" when it is gone)."""
    if entry["against"] == "previous":
        rows = TrainingSetVersion.objects.filter(training_set_id=version.training_set_id, number=entry["version"])
    else:
        rows = Baseline.objects.filter(pk=entry["baseline_id"])
    return rows.values_list("profile", flat=True).first() or ""


def comparison_charts(version: TrainingSetVersion, index: int, *, features: list[tuple[str, bool]] | None = None
                      ) -> dict:
    """The context of _batch_charts.html for comparison `index` of the version's gate report.

    `features` (name, flagged) chooses which charts to draw (default: all, flagged first); `features` in the
    result is the full order, for paging as the batch page does. `run` stands in for a batch's run (its
    baseline's id and source, for the "over time" link) on a baseline comparison and is None against the
    previous version. `reference` and `subject` name the two sides in the legend. Raises IndexError for a
    comparison the report does not have.
    """
    comparisons = (version.gate_report or {}).get("comparisons", [])
    if not 0 <= index < len(comparisons):
        raise IndexError(f"{version} has no gate comparison {index}")
    entry = comparisons[index]
    report = entry.get("report", {})
    order = report_chart_features(report)
    reference = _reference_profile(version, entry)
    charts = []
    if reference and entry.get("profile"):
        charts = profile_charts(entry["profile"], reference, report, order if features is None else features)
    run = None
    if entry["against"] == "baseline":
        source_id = Baseline.objects.filter(pk=entry["baseline_id"]).values_list("source_id", flat=True).first()
        run = SimpleNamespace(baseline_id=entry["baseline_id"], baseline=SimpleNamespace(source_id=source_id))
    summary = {key: value for key, value in entry.items() if key not in ("report", "profile")}
    reference_name = f"v{entry['version']}" if entry["against"] == "previous" else f"{entry['source']} baseline"
    return {"comparison": summary, "features": order, "charts": charts, "run": run, "reference": reference_name,
            "subject": f"v{version.number}", "data_id": f"gate-charts-{version.pk}-{index}"}
