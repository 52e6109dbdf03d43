"""Reads about consensus: a project's counted labels (what a Dawid-Skene run sees) and its runs."""
import json
from datetime import datetime

from django.db import connection
from django.db.models import Q, QuerySet

from ..models import Annotation, ConsensusRun, LabelingProject


def counted_provenances(project: LabelingProject) -> list[str]:
    """The provenances whose labels count toward an item's consensus in this project."""
    kinds = [Annotation.Provenance.HUMAN, Annotation.Provenance.IMPORTED]
    if project.feedback_counts:
        kinds.append(Annotation.Provenance.PROCESS_FEEDBACK)
    return kinds


def counted_labels_query(*, project: LabelingProject, after_id: int = 0,
                         up_to_id: int | None = None) -> QuerySet[Annotation]:
    """The project's labels that count: human and imported ones (and process feedback when the project says
    so), never a gold answer, never one withdrawn; optionally only those with an id in (after_id, up_to_id]."""
    labels = Annotation.objects.filter(project=project, provenance__in=counted_provenances(project),
                                       is_gold=False, undone_at__isnull=True)
    if after_id:
        labels = labels.filter(id__gt=after_id)
    if up_to_id is not None:
        labels = labels.filter(id__lte=up_to_id)
    return labels


_LABELS_SQL = """
SELECT id, item_id, rater_id, rule_id, actor, {value}
  FROM {table}
 WHERE project_id = %s AND provenance IN ({provenances}) AND NOT is_gold AND undone_at IS NULL{up_to}
 ORDER BY id
"""


def counted_label_rows(*, project: LabelingProject, up_to_id: int | None = None) -> list[tuple]:
    """Every counted label as (annotation id, item id, author, value as JSON text), in id order, in one query.

    The author is the rater's id as a string for human and imported labels; a process-feedback label's
    is "rule:<id>" of the rule that mapped it (a rule errs systematically, like one rater), or
    "feedback:<actor>" when that rule is gone. The values stay JSON text (PostgreSQL's jsonb output):
    a run reads every label of a project, and decoding each one costs more than the query, whereas a
    project has few distinct values.
    """
    provenances = counted_provenances(project)
    sql = _LABELS_SQL.format(value="value::text" if connection.vendor == "postgresql" else "value",
                             table=Annotation._meta.db_table, provenances=", ".join(["%s"] * len(provenances)),
                             up_to="" if up_to_id is None else " AND id <= %s")
    params = [project.pk, *provenances, *([] if up_to_id is None else [up_to_id])]
    rows = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(50_000):
            for pk, item_id, rater_id, rule_id, actor, value in chunk:
                if rater_id is not None:
                    author = str(rater_id)
                elif rule_id is not None:
                    author = f"rule:{rule_id}"
                else:
                    author = f"feedback:{actor}"
                rows.append((pk, item_id, author, value))
    return rows


def gold_answer_rows(*, project: LabelingProject) -> list[tuple]:
    """Raters' answers on the project's current gold items as (annotation id, item id, author, value as JSON
    text): they never count toward a consensus, but a Dawid-Skene run learns each rater's confusion from
    them, their items' truth being known."""
    rows = (Annotation.objects.filter(project=project, is_gold=True, item__is_gold=True, undone_at__isnull=True,
                                      rater__isnull=False)
            .order_by("id").values_list("id", "item_id", "rater_id", "value"))
    return [(pk, item_id, str(rater_id), json.dumps(value)) for pk, item_id, rater_id, value in rows.iterator(5000)]


def counted_labels(*, project: LabelingProject, up_to_id: int | None = None) -> list[tuple]:
    """As `counted_label_rows`, with each value decoded: (annotation id, item id, author, value)."""
    decoded: dict[str, object] = {}
    return [(pk, item_id, author, decoded[text] if text in decoded else decoded.setdefault(text, json.loads(text)))
            for pk, item_id, author, text in counted_label_rows(project=project, up_to_id=up_to_id)]


def new_label_count(*, project: LabelingProject, after_id: int, limit: int) -> int:
    """How many counted labels have an id above `after_id`, counting no further than `limit` (the beat asks
    "at least N?" every minute of every project, so it never reads a whole project)."""
    return counted_labels_query(project=project, after_id=after_id).order_by()[:limit].count()


def consensus_run_list(*, project: LabelingProject) -> QuerySet[ConsensusRun]:
    """A project's runs, newest first, with who requested each."""
    return ConsensusRun.objects.filter(project=project).select_related("requested_by").order_by("-created_at", "-id")


def consensus_run_get(*, run_id: int) -> ConsensusRun | None:
    return ConsensusRun.objects.filter(pk=run_id).select_related("project").first()


def consensus_run_latest_done(*, project: LabelingProject | int) -> ConsensusRun | None:
    """The project's newest finished run: the consensus its items carry and the raters' model quality."""
    return (ConsensusRun.objects.filter(project=project, status=ConsensusRun.Status.DONE)
            .order_by("-finished_at", "-id").first())


def consensus_run_pending(*, project: LabelingProject) -> ConsensusRun | None:
    """The project's queued or running run, if any (at most one: a partial unique index)."""
    return ConsensusRun.objects.filter(project=project, status__in=[ConsensusRun.Status.QUEUED,
                                                                    ConsensusRun.Status.RUNNING]).first()


def consensus_runs_stuck(*, running_before: datetime, queued_before: datetime) -> QuerySet[ConsensusRun]:
    """Runs running since before `running_before` (their worker died) or queued since before `queued_before`
    (their message was lost, or the broker was down when they were requested)."""
    return ConsensusRun.objects.filter(
        Q(status=ConsensusRun.Status.RUNNING, started_at__lt=running_before)
        | Q(status=ConsensusRun.Status.QUEUED, created_at__lt=queued_before)).order_by("id")
