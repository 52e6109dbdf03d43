"""A version's page: its manifest in readable form, the gate report with a batch page's charts, the staff's
decision on a held version, making it the baseline, the diff with an earlier version, downloads, the erasure
warning with a rebuild, and the lineage of a row found by its external id."""
import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from validation.selectors import report_chart_features

from ..gate_charts import comparison_charts
from ..selectors import (
    version_diff,
    version_erasure_marks,
    version_get,
    version_lineage,
    version_list_before,
    version_previous,
)
from ..services.decisions import version_decide, version_make_baseline
from ..services.errors import TrainingSetError
from ..services.versions import version_rebuild
from . import display
from .access import login_required, may_manage, may_publish, readable_version, require_staff
from .sets import _version_rows

DIFF_EXAMPLES = 10
CHARTS_PER_PAGE = 12
EARLIER_SHOWN = 100


def _against(training_set, version, wanted: str | None):
    """The version to diff with: the one asked for (`?against=n`), else the latest published one before it."""
    if wanted and wanted.isdigit() and int(wanted) < version.number:
        other = version_get(training_set, int(wanted))
        return other if other is not None and other.is_built else None
    return version_previous(version)


def _lineage(version, request) -> dict | None:
    external_id = request.GET.get("external_id", "").strip()
    if not external_id:
        return None
    source = request.GET.get("source") or None
    try:
        rows = version_lineage(version, external_id, source=source)
    except TrainingSetError as exc:  # no files (yet, or any more)
        return {"external_id": external_id, "source": source, "error": str(exc), "rows": []}
    return {"external_id": external_id, "source": source, "rows": display.lineage_view(rows)}


def _gate(version) -> dict:
    """The gate report without the comparisons' profiles (the charts read those), each comparison titled."""
    report = dict(version.gate_report or {})
    comparisons = []
    for entry in report.get("comparisons", []):
        title = (f"v{entry.get('version')} (the previous published version)" if entry.get("against") == "previous"
                 else f"{entry.get('source')}'s active baseline #{entry.get('baseline_id')}")
        comparisons.append({**{k: v for k, v in entry.items() if k not in ("profile", "report")}, "title": title,
                            "anomalies": (entry.get("report") or {}).get("anomalies", [])})
    report["comparisons"] = comparisons
    return report


@login_required
def version_page(request, pk: int, number: int):
    training_set, version = readable_version(request, pk, number)
    manifest = version.manifest or {}
    context = {"set": training_set, "version": version, "manifest": manifest, "row": _version_rows([version])[0],
               "may_manage": may_manage(request.user), "may_publish": may_publish(request.user, training_set),
               "sources": training_set.sources.all(), "api_url": f"/api/v1/training-sets/{pk}/versions/{number}"}
    if version.is_built:
        against = _against(training_set, version, request.GET.get("against"))
        try:
            diff = version_diff(against, version, examples=DIFF_EXAMPLES) if against else None
        except TrainingSetError as exc:  # a version whose files are gone
            diff = {"error": str(exc)}
        context.update(
            policy=display.policy_words(manifest.get("policy") or {}),
            split=display.split_words(manifest.get("split_rule") or {}),
            splits=display.split_rows(manifest), label_chart=display.label_chart(manifest),
            files=display.file_rows(version) if version.readable else [], other_files=display.other_files(manifest),
            excluded=display.excluded_rows(manifest), raters=display.raters_rows(manifest),
            gate=_gate(version), against=against, diff=display.diff_view(diff, display.split_order(manifest)),
            marks=version_erasure_marks(version),
            earlier=version_list_before(training_set, version, limit=EARLIER_SHOWN),
            lineage=_lineage(version, request), rebuilt_from=manifest.get("rebuilt_from"),
            manifest_json=json.dumps({k: v for k, v in manifest.items() if k != "gate"}, indent=2, default=str),
        )
    return render(request, "trainingsets/version.html", context)


@login_required
def version_lineage_fragment(request, pk: int, number: int):
    """The lineage of the rows of one external id (htmx into the version page; the page does it without JS)."""
    _, version = readable_version(request, pk, number)
    return render(request, "trainingsets/_lineage.html", {"version": version, "lineage": _lineage(version, request)})


@login_required
def version_gate_charts(request, pk: int, number: int, index: int):
    """A page of one gate comparison's feature charts, flagged first, drawn as a batch page draws them (htmx)."""
    _, version = readable_version(request, pk, number)
    comparisons = (version.gate_report or {}).get("comparisons", [])
    if not 0 <= index < len(comparisons):
        raise Http404("No such comparison.")
    order = report_chart_features(comparisons[index].get("report") or {})
    page = Paginator(order, CHARTS_PER_PAGE).get_page(request.GET.get("page"))
    page.next_url = f"?page={page.next_page_number()}" if page.has_next() else None
    context = comparison_charts(version, index, features=list(page))
    return render(request, "validation/_batch_charts.html", {
        **context, "page": page, "data_id": f"{context['data_id']}-{page.number}",
        "charts_url": reverse("trainingset-version-gate-charts", kwargs={"pk": pk, "number": number, "index": index}),
        "subject": f"v{number}"})


def _back(pk: int, number: int, anchor: str = ""):
    return redirect(reverse("trainingset-version", kwargs={"pk": pk, "number": number}) + anchor)


@login_required
@require_POST
def version_decide_view(request, pk: int, number: int):
    """Approve (with a comment) or reject a version its gate held."""
    _, version = readable_version(request, pk, number)
    require_staff(request.user)
    approve = request.POST.get("decision") == "approve"
    try:
        version_decide(version=version, user=request.user, approve=approve,
                       comment=request.POST.get("comment", "").strip())
    except TrainingSetError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Version {number} {'approved and published' if approve else 'rejected'}.")
    return _back(pk, number)


@login_required
@require_POST
def version_make_baseline_view(request, pk: int, number: int):
    _, version = readable_version(request, pk, number)
    require_staff(request.user)
    try:
        baselines = version_make_baseline(version=version, user=request.user)
    except TrainingSetError as exc:
        messages.error(request, str(exc))
    else:
        count = len(baselines) if isinstance(baselines, (list, tuple)) else 1
        messages.success(request, f"Version {number} is now the active baseline of its source(s) ({count}).")
    return _back(pk, number)


@login_required
@require_POST
def version_rebuild_view(request, pk: int, number: int):
    """A new version from this one's files without its erased rows."""
    _, version = readable_version(request, pk, number)
    require_staff(request.user)
    try:
        rebuilt = version_rebuild(version=version, user=request.user)
    except TrainingSetError as exc:
        messages.error(request, str(exc))
        return _back(pk, number)
    messages.success(request, f"Version {rebuilt.number} is queued: version {number} without its erased rows.")
    return _back(pk, rebuilt.number)
