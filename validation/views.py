"""Data-quality pages for admins: the overview with the quarantine queue, a batch's verdict, the sources
with their health, and each feature's drift over time."""
import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from collection import selectors as collection_selectors
from collection.services import BatchNotFailed
from collection.storage import data_path
from collection.timestamps import TimestampInvalid, TimestampOutOfRange, day_minus, day_parse
from config.access import staff_required

from . import selectors, services
from .forms import BaselineEditForm

CHARTS_PER_PAGE = 12
DEFAULT_DAYS = 90
MAX_DAYS = 731
REVIEW_DECISIONS = ("approve", "reject")


class DayOutOfRange(ValueError):
    """A page's `from` or `to` is a day outside the accepted range (collection.timestamps): answered 400."""


def _day(request, name: str):
    """The day in the query's `name`, or None when there is none or it is not a day (the default is used)."""
    text = request.GET.get(name)
    try:
        return day_parse(text) if text else None
    except TimestampOutOfRange as exc:
        raise DayOutOfRange(f"{name}={text} {exc}.") from None
    except TimestampInvalid:
        return None


def _date_range(request) -> tuple[dt.date, dt.date]:
    """`from` and `to` (YYYY-MM-DD, UTC days, both included); by default the last 90 days.
    A day outside the accepted range raises DayOutOfRange."""
    end = _day(request, "to") or timezone.now().date()
    start = _day(request, "from") or day_minus(end, DEFAULT_DAYS - 1)
    start, end = min(start, end), max(start, end)
    return max(start, day_minus(end, MAX_DAYS - 1)), end


def _out_of_range(exc: DayOutOfRange) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(f"Cannot show this range: {exc}", content_type="text/plain; charset=utf-8")


def _found(found):
    """What a selector found, or a 404 when it found nothing."""
    if not found:
        raise Http404("No such page")
    return found


def _page(request, items, per_page: int, param: str = "page"):
    """A page of `items`, with the links to its neighbours keeping the rest of the query string."""
    page = Paginator(items, per_page).get_page(request.GET.get(param))

    def link(number):
        query = request.GET.copy()
        query[param] = number
        return f"?{query.urlencode()}"

    page.previous_url = link(page.previous_page_number()) if page.has_previous() else None
    page.next_url = link(page.next_page_number()) if page.has_next() else None
    return page


@staff_required
def quality_home(request):
    return render(request, "validation/home.html", {
        **selectors.quality_overview(), "queue": _page(request, selectors.quarantine_queue(), 50),
        "alerts": _page(request, selectors.open_alerts(), 50, "alerts"),
        "failed": _page(request, selectors.failed_batches(), 20, "failed")})


@staff_required
def batch_page(request, pk: int):
    """The verdict and anomalies; the feature charts come a page at a time from `batch_charts`."""
    batch = _found(collection_selectors.batch_get(batch_id=pk))
    # The run's report and both profiles are large and only the charts need them.
    run = selectors.run_get(batch_id=batch.pk, light=True)
    anomalies = selectors.run_anomaly_list(run=run) if run else []
    return render(request, "validation/batch.html", {
        "batch": batch, "run": run, "anomalies": _page(request, anomalies, 100, "anomalies"),
        "transitions": selectors.batch_transition_list(batch=batch), "charts_per_page": CHARTS_PER_PAGE,
    })


@staff_required
@require_POST
def batch_review(request, pk: int):
    """Approve or reject a quarantined batch; any other `decision` is a 400 that changes nothing."""
    _found(selectors.batch_exists(batch_id=pk))
    decision = request.POST.get("decision")
    if decision not in REVIEW_DECISIONS:
        return HttpResponseBadRequest(f"Unknown decision {decision!r}: it must be 'approve' or 'reject'.",
                                      content_type="text/plain; charset=utf-8")
    approve = decision == "approve"
    try:
        services.batch_review(batch_id=pk, user=request.user, approve=approve,
                              comment=request.POST.get("comment", "").strip())
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Batch {pk} {'approved' if approve else 'rejected'}.")
    return redirect("quality-batch", pk=pk)


@staff_required
@require_POST
def batch_retry(request, pk: int):
    """Give a failed batch back to the pipeline (after a fix)."""
    _found(selectors.batch_exists(batch_id=pk))
    try:
        services.batch_retry(batch_id=pk, user=request.user)
    except BatchNotFailed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Batch {pk} is queued again.")
    return redirect("quality-batch", pk=pk)


@staff_required
@require_POST
def batch_make_baseline(request, pk: int):
    _found(selectors.batch_exists(batch_id=pk))
    try:
        baseline = services.batch_make_baseline(batch_id=pk, user=request.user)
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Batch {pk} is now baseline {baseline.pk} of its source, and admitted.")
    return redirect("quality-batch", pk=pk)


@staff_required
def batch_payload(request, pk: int):
    """The raw payload exactly as the source sent it."""
    batch = _found(collection_selectors.batch_get(batch_id=pk))
    name = f"batch-{batch.pk}.{batch.format}{'.gz' if batch.gzipped else ''}"
    return FileResponse(open(data_path(batch.payload), "rb"), as_attachment=True, filename=name)


@staff_required
def batch_charts(request, pk: int):
    """A page of the batch's feature charts (flagged features first), loaded by htmx into the batch page."""
    run = _found(selectors.run_get(batch_id=pk))
    page = _page(request, selectors.batch_chart_features(run), CHARTS_PER_PAGE)
    return render(request, "validation/_batch_charts.html", {
        "batch_id": pk, "run": run, "page": page, "charts": selectors.batch_charts(run, list(page)),
        "data_id": f"batch-charts-{page.number}"})


# --- sources and drift over time


@staff_required
def sources_list(request):
    page = _page(request, selectors.source_list(), 50)
    since = timezone.now() - dt.timedelta(days=DEFAULT_DAYS)
    return render(request, "validation/sources.html", {
        "page": page, "rows": selectors.source_rows(page.object_list, since=since), "days": DEFAULT_DAYS})


@staff_required
def source_page(request, pk: int):
    source = _found(selectors.source_get(source_id=pk))
    try:
        start, end = _date_range(request)
    except DayOutOfRange as exc:
        return _out_of_range(exc)
    activity = selectors.source_days(source, start=start, end=end)
    return render(request, "validation/source.html", {
        "source": source, "start": start, "end": end, "activity": activity,
        "freshness": selectors.source_freshness(source),
        "policy": selectors.source_policy_get(source=source),
        "keys": _page(request, selectors.source_keys(source), 20, "keys"),
        "baselines": _page(request, selectors.source_baselines(source), 20, "baselines"),
        "batches": _page(request, selectors.source_batches(source), 50, "page"),
    })


@staff_required
@require_POST
def baseline_activate(request, pk: int, baseline_pk: int):
    baseline = _found(selectors.baseline_get(baseline_id=baseline_pk, source_id=pk, profile=False))
    services.baseline_activate(baseline=baseline, by=request.user)
    messages.success(request, f"Baseline {baseline.pk} is now the active baseline of this source.")
    return redirect("quality-source", pk=pk)


@staff_required
def drift_page(request, pk: int):
    """Each feature's drift against one baseline (the active one unless chosen), day by day."""
    source = _found(selectors.source_get(source_id=pk))
    baselines = selectors.baseline_list(source=source)
    chosen = request.GET.get("baseline")
    baseline = next((b for b in baselines if str(b.pk) == chosen), None) \
        or next((b for b in baselines if b.is_active), None) or (baselines[0] if baselines else None)
    try:
        start, end = _date_range(request)
    except DayOutOfRange as exc:
        return _out_of_range(exc)
    context = {"source": source, "baselines": baselines, "baseline": baseline, "start": start, "end": end}
    if baseline is not None:
        features, days = selectors.drift_features(baseline, start=start, end=end)
        names = {row["feature"] for row in features}
        feature = request.GET.get("feature")
        feature = feature if feature in names else (features[0]["feature"] if features else None)
        if feature is not None:
            choices = selectors.drift_metrics(baseline, feature)
            metric = request.GET.get("metric")
            metric = metric if metric in choices else choices[0]
            context.update(metric_choices=choices, series=selectors.drift_series(
                baseline, feature=feature, metric=metric, start=start, end=end))
        context.update(features=_page(request, features, 100), days_with_data=days, feature=feature)
    return render(request, "validation/drift.html", context)


# --- editing a baseline's schema and thresholds (the effect on the last batch is shown before saving)


@staff_required
def baseline_edit(request, pk: int):
    """GET: the form. POST with `preview` (htmx): the effect on the last batch, nothing saved.
    POST with `save`: saved and audited, then back to the form with what changed."""
    baseline = _found(selectors.baseline_get(baseline_id=pk))
    form = BaselineEditForm(request.POST or None, baseline=baseline)
    effect = None
    if request.method == "POST" and form.is_valid():
        schema, thresholds = form.edited()
        if "save" in request.POST:
            try:
                changes = services.baseline_edit(baseline=baseline, schema=schema, thresholds=thresholds,
                                                 by=request.user, seen=form.cleaned_data["digest"])
            except services.BaselineConflict as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Saved {len(changes)} change(s) to baseline {baseline.pk}." if changes
                                 else "Nothing changed.")
                return redirect("quality-baseline-edit", pk=baseline.pk)
        else:
            effect = selectors.baseline_effect(baseline, schema, thresholds)
    elif request.method == "GET":
        effect = selectors.baseline_effect(baseline, form.schema, form.thresholds)
    context = {"baseline": baseline, "form": form, "effect": effect,
               "effect_pending": request.method == "POST" and not form.is_valid()}
    if request.headers.get("HX-Request") and "preview" in request.POST:
        return render(request, "validation/baseline_effect.html", context)
    return render(request, "validation/baseline_edit.html", context)
