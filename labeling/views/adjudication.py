"""The adjudication page: keyboard first like the rater's page (a key per label, R for the reason, Enter decides,
U closes as unlabelable for staff, N or S skips), the next waiting item swapped in by htmx without a reload."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_POST

from ..labels import InvalidLabel
from ..models import ConsensusMethod, LabelingProject, QueueItem, Rater
from ..selectors import project_get, rater_of
from ..selectors.adjudication import (
    adjudication_item,
    adjudication_next,
    adjudication_waiting,
    adjudications_recent,
    expert_memberships,
    items_for_adjudication,
)
from ..services.adjudication import (
    AlreadyDecided,
    NotAdjudicable,
    ReasonMissing,
    adjudicator_problem,
    item_adjudicate,
    item_close_unlabelable,
)
from ..services.errors import LabelingError
from .display import Option, answer_options, chosen_values, feature_rows, label_text, posted_value

adjudicator_login_required = login_required(login_url=reverse_lazy("login"))
# Keys of this page; a choice's own hotkey wins over them (S is reserved for choices anyway).
PAGE_KEYS = {"r", "u", "n", "s"}


def adjudicable_projects(user) -> list[dict]:
    """For the rater's home: the projects this expert may adjudicate, each with its waiting items."""
    rater = rater_of(user)
    if rater is None:
        return []
    return [{"project": m.project, "waiting": m.waiting} for m in expert_memberships(rater=rater)
            if adjudicator_problem(user=user, project=m.project, membership=m) is None]


def _project(request, pk: int) -> LabelingProject:
    """404 unless the user may adjudicate the project: another project looks like one that does not exist."""
    project = project_get(user=request.user, project_id=pk)
    if project is None or adjudicator_problem(user=request.user, project=project) is not None:
        raise Http404("No such project")
    return project


def _after(request) -> int:
    try:
        return max(0, int(request.GET.get("after") or request.POST.get("after") or 0))
    except ValueError:
        return 0


@adjudicator_login_required
@require_GET
def adjudicate_page(request, pk: int):
    project = _project(request, pk)
    return render(request, "labeling/adjudicate.html", _work(request, project, after=_after(request)))


@adjudicator_login_required
@require_GET
def adjudicate_work(request, pk: int):
    """The work area alone: the next waiting item after `after` (N skips to it)."""
    project = _project(request, pk)
    return render(request, "labeling/_adjudicate_work.html", _work(request, project, after=_after(request)))


@adjudicator_login_required
@require_POST
def adjudicate_decide(request, pk: int):
    """Decide the posted item (its label, or unlabelable) and show the next waiting one. A wrong or missing
    label or reason shows the same item again with what was wrong; nothing was written."""
    project = _project(request, pk)
    try:
        item = adjudication_item(user=request.user, item_id=int(request.POST.get("item", "")))
    except ValueError:
        item = None
    if item is None or item.project_id != project.pk:
        raise Http404("No such item")
    reason = request.POST.get("reason", "")
    unlabelable = "1" in request.POST.getlist("unlabelable")
    value = None if unlabelable else posted_value(project, request.POST)
    try:
        if unlabelable:
            _, created = item_close_unlabelable(item=item, user=request.user, reason=reason)
            notice = "Closed as unlabelable."
        else:
            _, created = item_adjudicate(item=item, user=request.user, value=value, reason=reason)
            notice = f"Decided: {label_text(project, value)}."
        if not created:
            notice = "That decision was already saved."
    except (InvalidLabel, ReasonMissing) as exc:
        error = _invalid_message(project, exc, value)
        return _answer(request, project, item=item, chosen=value, reason=reason, error=error)
    except (AlreadyDecided, NotAdjudicable) as exc:
        return _answer(request, project, after=item.pk, notice=f"{exc}. Here is the next item.")
    except LabelingError as exc:  # not allowed: U pressed by someone who is not staff
        return _answer(request, project, item=item, chosen=value, reason=reason, error=f"{exc}.")
    return _answer(request, project, after=item.pk, notice=notice)


def _invalid_message(project: LabelingProject, exc, value) -> str:
    if isinstance(exc, ReasonMissing):
        return "Give a reason (R), then Enter: it is kept with your decision."
    if value in (None, "", []):
        return "Choose the final label first." if answer_options(project) else "Write the final label first."
    return f"That label was not accepted: {exc}."


def _answer(request, project: LabelingProject, **work):
    """The work fragment for htmx; a plain form post (no JavaScript) gets the page again, the notice as a message."""
    if request.headers.get("HX-Request"):
        return render(request, "labeling/_adjudicate_work.html", _work(request, project, **work))
    if work.get("error"):
        messages.error(request, work["error"])
    elif work.get("notice"):
        messages.info(request, work["notice"])
    url = reverse_lazy("label-adjudicate", args=[project.pk])
    return redirect(f"{url}?after={work.get('after', 0)}")


def _work(request, project: LabelingProject, *, item: QueueItem | None = None, after: int = 0, chosen=None,
          reason: str = "", notice: str = "", error: str = "") -> dict:
    """Everything the work area shows: the item with its labels and posterior (or that none waits), the keys,
    how many wait, and the user's latest decisions."""
    if item is None or item.state != QueueItem.State.ADJUDICATION and not request.user.is_staff:
        item = adjudication_next(project=project, after_id=after)
    if item is not None:
        [item] = items_for_adjudication(project=project, items=[item])
        kinds = dict(Rater.Kind.choices)
        for label in item.labels:
            label["text"] = label_text(project, label["value"])
            label["kind_text"] = kinds.get(label["kind"], "Process feedback")
    return {
        "project": project, "item": item, "record": item.record if item else None,
        "features": feature_rows(item.record.features) if item else [],
        "labels": item.labels if item else [], "posterior": _posterior(project, item.posterior) if item else None,
        "options": _options(project), "chosen": chosen_values(chosen),
        "chosen_text": chosen if isinstance(chosen, str) else "", "reason": reason,
        "multiple": project.label_kind == LabelingProject.LabelKind.MULTIPLE,
        "free_text": project.label_kind == LabelingProject.LabelKind.TEXT,
        "staff": request.user.is_staff, "waiting": adjudication_waiting(project=project),
        "recent": [{"decision": d, "label": "unlabelable" if d.unlabelable else label_text(project, d.value)}
                   for d in adjudications_recent(project=project, user=request.user)],
        "notice": notice, "error": error,
    }


def _options(project: LabelingProject) -> list[Option]:
    """The project's answer buttons; a choice without a hotkey gets its position's digit when no other choice
    has that key, so that every label has a key."""
    options = answer_options(project)
    taken = {o.hotkey.lower() for o in options if o.hotkey}
    keyed = []
    for position, option in enumerate(options, start=1):
        hotkey = option.hotkey
        if not hotkey and position <= 9 and str(position) not in taken:
            hotkey = str(position)
            taken.add(hotkey)
        keyed.append(Option(option.value, option.label, hotkey))
    return keyed


def _posterior(project: LabelingProject, posterior: dict | None) -> dict | None:
    """The latest run's posterior as rows (label, probability, whether it is the run's label), likeliest first."""
    if posterior is None:
        return None
    rows = [{"label": label_text(project, value), "p": p, "percent": round(100 * p),
             "chosen": posterior["label"] is not None and chosen_values(value) == chosen_values(posterior["label"])}
            for value, p in zip(posterior["classes"], posterior["posterior"])]
    return {**posterior, "rows": sorted(rows, key=lambda r: -r["p"]),
            "method_text": dict(ConsensusMethod.choices).get(posterior["method"], posterior["method"])}

