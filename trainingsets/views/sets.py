"""The list of training sets (with the staff's form for a new one) and a set's page: its policy and split rule
in words, its versions with live progress, the publish button and the policy form."""
import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..forms import TrainingSetForm
from ..models import TrainingSetVersion
from ..selectors import trainingset_list_with_latest, version_list_with_authors
from ..services.errors import TrainingSetError
from ..services.sets import split_rule_locked, trainingset_create, trainingset_update
from ..services.versions import version_progress, version_request
from . import display
from .access import login_required, may_manage, may_publish, readable_set, readable_version, require_staff

SETS_PER_PAGE = 50
VERSIONS_PER_PAGE = 50
# A version still being built: its row asks for its progress every second until it ends.
IN_FLIGHT = (TrainingSetVersion.Status.QUEUED, TrainingSetVersion.Status.BUILDING)


def _page(request, items, per_page: int):
    page = Paginator(items, per_page).get_page(request.GET.get("page"))
    page.previous_url = f"?page={page.previous_page_number()}" if page.has_previous() else None
    page.next_url = f"?page={page.next_page_number()}" if page.has_next() else None
    return page


def _save(form, save) -> bool:
    """Run a service on a valid form; its refusal goes on the field it names. True when saved."""
    if not form.is_valid():
        return False
    try:
        save(**form.service_fields())
    except TrainingSetError as exc:
        form.add_service_error(exc)
    except ValidationError as exc:
        form.add_error(None, exc)
    return not form.errors


@login_required
def sets_page(request):
    """GET: the sets the user may read, each with its latest version. POST (staff): a new set."""
    form = None
    if may_manage(request.user):
        form = TrainingSetForm(request.POST or None, prefix="new")
        made = []
        if request.method == "POST" and _save(form, lambda **f: made.append(
                trainingset_create(owner=request.user, **f))):
            messages.success(request, f"Training set {made[0].name} created: publish its first version.")
            return redirect("trainingset", pk=made[0].pk)
    elif request.method == "POST":
        require_staff(request.user)
    page = _page(request, trainingset_list_with_latest(request.user), SETS_PER_PAGE)
    rows = []
    for s in page.object_list:
        version = s.latest[0] if s.latest else None
        rows.append({"set": s, "version": version, "sources": list(s.sources.all()),
                     "class": display.STATUS_CLASS.get(version.status, "") if version else ""})
    return render(request, "trainingsets/list.html", {"page": page, "rows": rows, "form": form},
                  status=400 if form is not None and form.errors else 200)


def _version_rows(versions) -> list[dict]:
    rows = []
    for v in versions:
        row = {"version": v, "class": display.STATUS_CLASS.get(v.status, ""), "live": v.status in IN_FLIGHT}
        if row["live"]:
            row["written"], row["total"] = version_progress(v)
        rows.append(row)
    return rows


@login_required
def set_page(request, pk: int):
    """The set; POST (staff or its owner): its edited policy (the split rule too until a version is kept)."""
    training_set = readable_set(request, pk)
    locked = split_rule_locked(training_set)
    form = None
    if may_publish(request.user, training_set):
        form = TrainingSetForm(request.POST or None, instance=training_set, split_locked=locked, prefix="edit",
                               editing=True)
        if request.method == "POST":
            if _save(form, lambda **f: trainingset_update(training_set=training_set, **f)):
                messages.success(request, "The set's policy is saved; the next version follows it.")
                return redirect("trainingset", pk=pk)
            training_set = readable_set(request, pk)
    elif request.method == "POST":
        require_staff(request.user)
    versions = _page(request, version_list_with_authors(training_set), VERSIONS_PER_PAGE)
    return render(request, "trainingsets/set.html", {
        "set": training_set, "words": display.set_words(training_set), "sources": training_set.sources.all(),
        "projects": training_set.projects.all(), "readers": training_set.reader_groups.all(), "versions": versions,
        "rows": _version_rows(versions.object_list), "form": form, "split_locked": locked,
        "may_publish": may_publish(request.user, training_set), "publish_key": uuid.uuid4().hex,
    }, status=400 if form is not None and form.errors else 200)


@login_required
@require_POST
def set_publish(request, pk: int):
    """Queue a new version (the owner or staff); the set's page then shows its progress live."""
    training_set = readable_set(request, pk)
    if not may_publish(request.user, training_set):
        require_staff(request.user)
    try:
        # The form's one-time key: a double click or a resent form queues one version, not two.
        version = version_request(training_set=training_set, user=request.user,
                                  comment=request.POST.get("comment", "").strip()[:2000],
                                  idempotency_key=(request.POST.get("key") or "")[:200] or None)
    except TrainingSetError as exc:
        messages.error(request, str(exc))
        return redirect("trainingset", pk=pk)
    messages.success(request, f"Version {version.number} is queued: its progress shows below.")
    return redirect(reverse("trainingset", kwargs={"pk": pk}) + f"#v{version.number}")


@login_required
def version_progress_fragment(request, pk: int, number: int):
    """A version's status and progress (htmx, every second while it is queued or building)."""
    training_set, version = readable_version(request, pk, number)
    (row,) = _version_rows([version])
    if request.GET.get("where") == "version":
        answer = render(request, "trainingsets/_version_status.html", {"set": training_set, "row": row})
        if not row["live"]:
            # Built (or failed): the whole page has something new to show, its manifest or its error.
            answer["HX-Refresh"] = "true"
        return answer
    return render(request, "trainingsets/_version_row.html", {"set": training_set, "row": row})
