"""The rater's pages: sign-in landing, my projects, and the keyboard-first labeling page whose item,
progress and history come back as one fragment after each submit, skip or undo (htmx, no reload)."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from ..labels import InvalidLabel
from ..models import Assignment, LabelingProject, QueueItem, Rater
from ..selectors import (
    assignment_of,
    item_record,
    label_undone_last,
    rater_and_project,
    rater_history,
    rater_of,
    rater_pauses,
    rater_progress,
    rater_project_list,
)
from ..services.errors import LabelingError
from ..services.people import rater_fit_problem
from ..services.queue import QueueBusy, annotation_undo_last, assignment_skip, assignment_submit, item_next
from .adjudication import adjudicable_projects
from .display import answer_options, chosen_values, feature_rows, label_text, posted_value

rater_login_required = login_required(login_url=reverse_lazy("login"))
HISTORY = 10
# Counting a project's open items reads its whole queue (about 0.3 s at a million items, most of a
# submit's time): the page shows a count at most this many seconds old, one count per project for
# all its raters through the shared cache.
OPEN_ITEMS_SECONDS = 30


class SignInView(LoginView):
    """Django's login; without a `next`, staff land on data quality and raters on their projects."""

    redirect_authenticated_user = True

    def dispatch(self, request, *args, **kwargs):
        # A signed-in user sent here from a page they may not open (a rater on /quality/) gets the form, to sign
        # in as someone who may; sending them back to that page would loop.
        self.redirect_authenticated_user = not request.GET.get(self.redirect_field_name)
        return super().dispatch(request, *args, **kwargs)

    def get_default_redirect_url(self):
        if self.request.user.is_staff and not rater_of(self.request.user):
            return reverse("quality-home")
        return reverse("label-home")


def rater_projects(rater: Rater) -> list[LabelingProject]:
    """The projects the rater belongs to and may work on now: their kind and domains fit, the project is open."""
    return [project for project in rater_project_list(rater=rater) if rater_fit_problem(rater, project) is None]


def _rater_and_project(request, pk: int) -> tuple[Rater, LabelingProject]:
    """404 for a project the user may not label: another project looks exactly like one that does not exist."""
    rater, project = rater_and_project(user=request.user, project_id=pk)
    if rater is None or project is None or rater_fit_problem(rater, project) is not None:
        raise Http404("No such project")
    return rater, project


def progress(rater: Rater, project: LabelingProject) -> dict:
    """The rater's labels today (UTC) and the project's open items (gold aside), the latter from the cache."""
    return rater_progress(rater=rater, project=project, open_max_age=OPEN_ITEMS_SECONDS)


@rater_login_required
def rater_home(request):
    rater = rater_of(request.user)
    if rater is None:
        if request.user.is_staff:
            return redirect("label-admin-projects")
        return render(request, "labeling/no_rater.html", status=403)
    rows = [{"project": p, **progress(rater, p)} for p in rater_projects(rater)]
    return render(request, "labeling/home.html", {"rater": rater, "rows": rows, "pauses": rater_pauses(rater=rater),
                                                  "adjudicable": adjudicable_projects(request.user)})


@rater_login_required
def label_page(request, pk: int):
    rater, project = _rater_and_project(request, pk)
    return render(request, "labeling/label.html", _work(rater, project))


@rater_login_required
def label_work(request, pk: int):
    """The work area alone: the rater's live item (or a new one), progress and history."""
    rater, project = _rater_and_project(request, pk)
    return render(request, "labeling/_work.html", _work(rater, project))


def _assignment(request, rater: Rater, project: LabelingProject) -> Assignment:
    try:
        pk = int(request.POST.get("assignment", ""))
    except ValueError:
        raise Http404("No such assignment") from None
    assignment = assignment_of(user=rater.user, assignment_id=pk)
    if assignment is None or assignment.project_id != project.pk:
        raise Http404("No such assignment")
    return assignment


def _answer(request, rater: Rater, project: LabelingProject, *, notice: str = "", error: str = "", **work):
    """The work fragment for htmx; a plain form post (no JavaScript) gets the page again, the notice
    as a message."""
    if request.headers.get("HX-Request"):
        return render(request, "labeling/_work.html", _work(rater, project, notice=notice, error=error, **work))
    if error:
        messages.error(request, error)
    elif notice:
        messages.info(request, notice)
    return redirect("label-project", pk=project.pk)


@rater_login_required
@require_POST
def label_submit(request, pk: int):
    """Submit the label of the posted assignment and show the next item. The assignment id makes a
    repeated post of the same answer harmless: the queue returns the first annotation."""
    rater, project = _rater_and_project(request, pk)
    assignment = _assignment(request, rater, project)
    value = posted_value(project, request.POST)
    try:
        _, created = assignment_submit(assignment=assignment, value=value)
    except InvalidLabel as exc:
        # Same item again, with what was wrong: nothing was written.
        return _answer(request, rater, project, assignment=assignment, chosen=value,
                       error=_invalid_message(project, exc))
    except LabelingError as exc:
        return _answer(request, rater, project, notice=f"{exc} Here is the next item.")
    return _answer(request, rater, project, notice="Saved." if created else "That label was already saved.")


def _invalid_message(project: LabelingProject, exc: InvalidLabel) -> str:
    if exc.value in (None, "", []):
        return "Choose a label first." if answer_options(project) else "Write a label first."
    return f"That label was not accepted: {exc}."


@rater_login_required
@require_POST
def label_skip(request, pk: int):
    rater, project = _rater_and_project(request, pk)
    assignment = _assignment(request, rater, project)
    reason = request.POST.get("reason", "").strip()[:500]
    try:
        assignment_skip(assignment=assignment, reason=reason)
    except LabelingError as exc:
        notice = f"{exc}."
    else:
        notice = "Skipped." + (f" Reason: {reason}" if reason else "")
    return _answer(request, rater, project, notice=notice)


@rater_login_required
@require_POST
def label_undo(request, pk: int):
    """Withdraw the last submission (while its item is open) and show that item again with the old answer."""
    rater, project = _rater_and_project(request, pk)
    try:
        lease = annotation_undo_last(rater=rater, project=project)
    except LabelingError as exc:
        return _answer(request, rater, project, notice=f"Nothing undone: {exc}.")
    previous = label_undone_last(rater=rater, item_id=lease.item_id)
    return _answer(request, rater, project, assignment=lease, chosen=previous,
                   notice="Undone: your last label is withdrawn. Change it and submit again.")


def _work(rater: Rater, project: LabelingProject, *, assignment: Assignment | None = None, chosen=None,
          notice: str = "", error: str = "") -> dict:
    """Everything the work area shows: the item (or that the queue is empty), progress and recent history."""
    busy = False
    if assignment is None:
        try:
            assignment = item_next(rater=rater, project=project)
        except QueueBusy:
            busy = True  # work remains but is held by other requests: the page asks again by itself
    record = None
    if assignment is not None:
        record = item_record(item_id=assignment.item_id)
    history = _history(rater, project)
    return {
        "rater": rater, "project": project, "assignment": assignment, "record": record,
        "features": feature_rows(record.features) if record else [],
        "options": answer_options(project), "chosen": chosen_values(chosen),
        "chosen_text": chosen if isinstance(chosen, str) else "",
        "notice": notice, "error": error, "busy": busy,
        **progress(rater, project),
        "history": history, "undoable": _undoable(history),
        "multiple": project.label_kind == LabelingProject.LabelKind.MULTIPLE,
        "free_text": project.label_kind == LabelingProject.LabelKind.TEXT,
    }


def _history(rater: Rater, project: LabelingProject) -> list[dict]:
    rows = []
    for a in rater_history(rater=rater, project=project, limit=HISTORY):
        rows.append({
            "assignment": a, "external_id": a.item.record.external_id, "state": a.state,
            "label": label_text(project, a.label) if a.label is not None else "",
            "skip_reason": a.skip_reason, "when": a.finished_at,
            # Undo is possible while the item is open; gold items stay open, so they look like any other.
            "open": a.item.state == QueueItem.State.OPEN,
        })
    return rows


def _undoable(history: list[dict]) -> Assignment | None:
    """The submission Z would undo: the rater's last one, if its item is still open."""
    last = next((row for row in history if row["state"] == Assignment.State.SUBMITTED), None)
    return last["assignment"] if last and last["open"] else None
