"""Reads of the labeling app that the API, the pages and the admin share."""
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from collection.models import Batch, Record

# Named apart: importing the submodule selectors.consensus binds `consensus` on this package.
from ..labels import consensus as majority
from ..labels import same_label
from ..models import Annotation, Assignment, LabelingProject, Membership, QueueItem, Rater, RoutedBatch


def _one(model, sql: str, params: list):
    """One row as a model instance, by plain SQL: these reads run on every labeling request, and
    building the query through the ORM costs more than running it."""
    found = _row(sql, params, model)
    return None if found is None else found[0]


def _row(sql: str, params: list, *models) -> tuple | None:
    """One row whose columns are those of `models` in turn, as one instance of each (None for a model
    whose columns are all NULL: an outer join that found nothing); None when there is no row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for model in models:
        fields = _converted_fields(model)
        values = row[start:start + len(fields)]
        start += len(fields)
        if all(v is None for v in values):
            instances.append(None)
            continue
        converted = []
        for (_, column, converters), value in zip(fields, values):
            for converter in converters:
                value = converter(value, column, connection)
            converted.append(value)
        instances.append(model.from_db(connection.alias, [attname for attname, _, _ in fields], converted))
    return tuple(instances)


_CONVERTERS: dict = {}


def _converted_fields(model) -> list[tuple]:
    """(attname, column, converters) per concrete field: the converters that Django's own queries apply
    to what this database returns (JSON as text and durations as microseconds on SQLite, say)."""
    key = (model, connection.vendor)
    if key not in _CONVERTERS:
        fields = []
        for field in model._meta.concrete_fields:
            column = field.get_col(model._meta.db_table)
            fields.append((field.attname, column,
                           connection.ops.get_db_converters(column) + column.get_db_converters(connection)))
        _CONVERTERS[key] = fields
    return _CONVERTERS[key]


def _columns(model, alias: str) -> str:
    return ", ".join(f"{alias}.{f.column}" for f in model._meta.concrete_fields)


_RATER_SQL = f"SELECT {_columns(Rater, 'r')} FROM {Rater._meta.db_table} r WHERE r.user_id = %s"
_RATER_PROJECT_SQL = (f"SELECT {_columns(Rater, 'r')}, {_columns(LabelingProject, 'p')} FROM (SELECT 1) one "
                      f"LEFT JOIN {Rater._meta.db_table} r ON r.user_id = %s "
                      f"LEFT JOIN {LabelingProject._meta.db_table} p ON p.id = %s")
_ASSIGNMENT_SQL = (f"SELECT {_columns(Assignment, 'a')}, {_columns(LabelingProject, 'p')} "
                   f"FROM {Assignment._meta.db_table} a "
                   f"JOIN {Rater._meta.db_table} r ON r.id = a.rater_id "
                   f"JOIN {LabelingProject._meta.db_table} p ON p.id = a.project_id WHERE a.id = %s AND r.user_id = %s")


def rater_of(user) -> Rater | None:
    """The rater profile of a user, or None (an admin who does not label, a source's key)."""
    if not getattr(user, "pk", None):
        return None
    rater = _one(Rater, _RATER_SQL, [user.pk])
    if rater is not None:
        rater.user = user  # the request's own user object: no second query for it
    return rater


def rater_and_project(*, user, project_id: int) -> tuple[Rater | None, LabelingProject | None]:
    """The user's rater profile (`rater_of`) and a project by id, whoever may see it (the caller checks), in
    one round trip: what every `next` reads first."""
    rater, project = _row(_RATER_PROJECT_SQL, [getattr(user, "pk", None), project_id], Rater, LabelingProject)
    if rater is not None:
        rater.user = user
    return rater, project


def project_list(*, user) -> QuerySet[LabelingProject]:
    """Staff see every project; a rater only the active projects they belong to."""
    if user.is_staff:
        return LabelingProject.objects.all()
    return LabelingProject.objects.filter(is_active=True, memberships__rater__user_id=user.pk)


def project_get(*, user, project_id: int) -> LabelingProject | None:
    """A project the user may see, or None (so that another project's existence is not revealed)."""
    return project_list(user=user).filter(pk=project_id).first()


def project_items(*, project: LabelingProject, user) -> QuerySet[QueueItem]:
    """Staff: every item of the project. A rater: only the items they labeled themselves."""
    items = QueueItem.objects.filter(project=project).select_related("record")
    if user.is_staff:
        return items
    mine = Annotation.objects.filter(item=OuterRef("pk"), rater__user_id=user.pk, undone_at__isnull=True)
    return items.filter(Exists(mine))


def assignment_of(*, user, assignment_id: int) -> Assignment | None:
    """One of the user's own assignments, with its project; another rater's is None (a 404, never a 403
    that confirms it exists)."""
    found = _row(_ASSIGNMENT_SQL, [assignment_id, user.pk], Assignment, LabelingProject)
    if found is None:
        return None
    assignment, assignment.project = found
    return assignment


_RECORD_SQL = (f"SELECT {_columns(Record, 'r')} FROM {Record._meta.db_table} r "
               f"JOIN {QueueItem._meta.db_table} q ON q.record_id = r.id WHERE q.id = %s")


def item_record(*, item_id: int) -> Record:
    """The record an item is about (external id, features, observed time): what a rater is shown."""
    return _one(Record, _RECORD_SQL, [item_id])


def rater_history(*, rater: Rater, project: LabelingProject | None = None, limit: int = 20) -> list[Assignment]:
    """The rater's latest finished work (submitted, skipped, undone), newest first, with their labels."""
    done = Assignment.objects.filter(rater=rater, state__in=[Assignment.State.SUBMITTED, Assignment.State.SKIPPED,
                                                              Assignment.State.UNDONE])
    if project is not None:
        done = done.filter(project=project)
    rows = list(done.select_related("item__record").order_by("-finished_at", "-id")[:limit])
    labels = dict(Annotation.objects.filter(assignment__in=rows).values_list("assignment_id", "value"))
    for row in rows:
        row.label = labels.get(row.pk)
    return rows


def rater_progress(*, rater: Rater, project: LabelingProject, now: datetime | None = None) -> dict:
    """Done today (submitted in the last calendar day, UTC) and the project's items still open."""
    now = now or timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    done_today = Annotation.objects.filter(rater=rater, project=project, undone_at__isnull=True,
                                           created_at__gte=midnight).count()
    remaining = QueueItem.objects.filter(project=project, state=QueueItem.State.OPEN, is_gold=False).count()
    return {"done_today": done_today, "remaining": remaining}


def project_stats(*, project: LabelingProject) -> dict:
    """Items by state, annotations by provenance, and how many raters belong to the project."""
    items = dict(QueueItem.objects.filter(project=project, is_gold=False).values_list("state")
                 .annotate(n=Count("id")).values_list("state", "n"))
    annotations = dict(Annotation.objects.filter(project=project, undone_at__isnull=True).values_list("provenance")
                       .annotate(n=Count("id")).values_list("provenance", "n"))
    return {"open": items.get(QueueItem.State.OPEN, 0), "complete": items.get(QueueItem.State.COMPLETE, 0),
            "gold": QueueItem.objects.filter(project=project, is_gold=True).count(),
            "human": annotations.get(Annotation.Provenance.HUMAN, 0),
            "process_feedback": annotations.get(Annotation.Provenance.PROCESS_FEEDBACK, 0),
            "raters": Membership.objects.filter(project=project).count()}


def feedback_conflicts(*, project: LabelingProject, limit: int = 100) -> list[dict]:
    """Items where process feedback disagrees with the raters: the feedback's majority is not the humans'.

    Each: {item, human (the raters' majority, or the consensus), feedback (the feedback's majority),
    human_votes, feedback_votes}. Ties on either side are not a conflict yet.
    """
    both = QueueItem.objects.filter(project=project, feedback_count__gt=0, submitted_count__gt=0,
                                    is_gold=False).select_related("record").order_by("id")
    conflicts = []
    for start in range(0, 10**9, 500):
        chunk = list(both[start:start + 500])
        if not chunk:
            break
        values: dict[int, dict[str, list]] = {}
        # Gold answers left from when an item was gold never count as the raters' labels.
        for item_id, provenance, value in (Annotation.objects.filter(item__in=chunk, undone_at__isnull=True,
                                                                     is_gold=False)
                                           .values_list("item_id", "provenance", "value")):
            values.setdefault(item_id, {}).setdefault(provenance, []).append(value)
        for item in chunk:
            human = majority(values.get(item.pk, {}).get(Annotation.Provenance.HUMAN, []))
            feedback = majority(values.get(item.pk, {}).get(Annotation.Provenance.PROCESS_FEEDBACK, []))
            if human and feedback and not human.tie and not feedback.tie and not same_label(human.label,
                                                                                            feedback.label):
                conflicts.append({"item": item, "human": human.label, "feedback": feedback.label,
                                  "human_votes": len(values[item.pk][Annotation.Provenance.HUMAN]),
                                  "feedback_votes": len(values[item.pk][Annotation.Provenance.PROCESS_FEEDBACK])})
                if len(conflicts) >= limit:
                    return conflicts
    return conflicts


def gold_accuracy(*, project: LabelingProject) -> list[dict]:
    """Per rater: gold answers given and the share that matched the known answer."""
    rows = (Annotation.objects.filter(project=project, correct__isnull=False, undone_at__isnull=True)
            .values("rater_id", "rater__user__username")
            .annotate(answered=Count("id"), right=Count("id", filter=Q(correct=True))).order_by("rater__user__username"))
    return [{"rater_id": r["rater_id"], "username": r["rater__user__username"], "answered": r["answered"],
             "accuracy": r["right"] / r["answered"]} for r in rows]


def batches_awaiting_route(*, older_than: timedelta, within: timedelta = timedelta(days=1),
                           now: datetime | None = None) -> list[int]:
    """Admitted batches (admitted in the last `within`) that an active project fed by their source has not got
    yet: the route message was lost. The sweeper routes them."""
    now = now or timezone.now()
    fed = LabelingProject.objects.filter(is_active=True, sources=OuterRef("source_id"))
    routed = RoutedBatch.objects.filter(batch=OuterRef("pk"), project__sources=OuterRef("source_id"),
                                        project__is_active=True)
    return list(Batch.objects.filter(status=Batch.Status.ADMITTED, updated_at__lt=now - older_than,
                                     updated_at__gte=now - within)
                .filter(Exists(fed)).exclude(Exists(routed)).values_list("pk", flat=True)[:1000])


def rater_pauses(*, rater: Rater) -> list[Membership]:
    """The open projects in which the rater is paused, with why: their home says so rather than hiding them."""
    return list(Membership.objects.filter(rater=rater, paused_at__isnull=False, project__is_active=True)
                .select_related("project").order_by("project__name"))
