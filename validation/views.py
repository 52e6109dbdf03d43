"""Data-quality pages for admins: the overview with the quarantine queue, and a batch's verdict."""
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from collection.models import Batch
from collection.storage import data_path

from . import selectors, services
from .forms import BaselineEditForm
from .models import Baseline, ValidationRun


@staff_member_required
def quality_home(request):
    page = Paginator(selectors.quarantine_queue(), 50).get_page(request.GET.get("page"))
    return render(request, "validation/home.html", {**selectors.quality_overview(), "queue": page})


@staff_member_required
def batch_page(request, pk: int):
    batch = get_object_or_404(Batch.objects.select_related("source"), pk=pk)
    run = ValidationRun.objects.filter(batch=batch).select_related("baseline").first()
    charts = selectors.batch_charts(run) if run else []
    return render(request, "validation/batch.html", {
        "batch": batch, "run": run, "anomalies": run.anomalies.all() if run else [], "charts": charts,
        "transitions": batch.transitions.all(),
    })


@staff_member_required
@require_POST
def batch_review(request, pk: int):
    approve = request.POST.get("decision") == "approve"
    try:
        services.batch_review(batch_id=pk, user=request.user, approve=approve,
                              comment=request.POST.get("comment", "").strip())
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Batch {pk} {'approved' if approve else 'rejected'}.")
    return redirect("quality-batch", pk=pk)


@staff_member_required
@require_POST
def batch_make_baseline(request, pk: int):
    try:
        baseline = services.batch_make_baseline(batch_id=pk, user=request.user)
    except services.ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Batch {pk} is now baseline {baseline.pk} of its source, and admitted.")
    return redirect("quality-batch", pk=pk)


@staff_member_required
def batch_payload(request, pk: int):
    """The raw payload exactly as the source sent it."""
    batch = get_object_or_404(Batch, pk=pk)
    name = f"batch-{batch.pk}.{batch.format}{'.gz' if batch.gzipped else ''}"
    return FileResponse(open(data_path(batch.payload), "rb"), as_attachment=True, filename=name)


# --- editing a baseline's schema and thresholds (the effect on the last batch is shown before saving)


@staff_member_required
def baseline_edit(request, pk: int):
    """GET: the form. POST with `preview` (htmx): the effect on the last batch, nothing saved.
    POST with `save`: saved and audited, then back to the form with what changed."""
    baseline = get_object_or_404(Baseline.objects.select_related("source"), pk=pk)
    form = BaselineEditForm(request.POST or None, baseline=baseline)
    effect = None
    if request.method == "POST" and form.is_valid():
        schema, thresholds = form.edited()
        if "save" in request.POST:
            changes = services.baseline_edit(baseline=baseline, schema=schema, thresholds=thresholds, by=request.user)
            messages.success(request, f"Saved {len(changes)} change(s) to baseline {baseline.pk}." if changes
                             else "Nothing changed.")
            return redirect("quality-baseline-edit", pk=baseline.pk)
        effect = selectors.baseline_effect(baseline, schema, thresholds)
    elif request.method == "GET":
        effect = selectors.baseline_effect(baseline, form.schema, form.thresholds)
    context = {"baseline": baseline, "form": form, "effect": effect,
               "effect_pending": request.method == "POST" and not form.is_valid()}
    if request.headers.get("HX-Request") and "preview" in request.POST:
        return render(request, "validation/baseline_effect.html", context)
    return render(request, "validation/baseline_edit.html", context)
