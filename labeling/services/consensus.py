"""Consensus runs: Dawid-Skene (or majority vote) over a project's counted labels, kept, then applied to its items.

A run is requested (on demand, after enough new labels, or on a schedule: `consensus_runs_check`),
then a Celery task claims it (queued -> running, a conditional UPDATE) and executes it:

1. read the project's counted labels in one query, in id order, and record exactly which ones (the
   highest id, how many, and a SHA-256 over "id:value" lines, the value as compact JSON with sorted
   keys), so that a training set can name the consensus it used and anyone can check it;
2. fit the model (labeling.quality), with gold items and adjudicated items as known truth;
3. in one transaction: keep each item's result (ConsensusRunItem), then apply them to the items that
   are complete or waiting for adjudication (never to gold, adjudicated or unlabelable items, nor to
   an item that got a label the run did not see), and mark the run done.

Any error ends the run `failed` with the error; a run whose worker died is failed by the check.
"""
import hashlib
import json
import logging
from datetime import datetime, timedelta

import numpy as np
import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from ..labels import label_key
from ..models import (
    Annotation,
    ConsensusMethod,
    ConsensusRun,
    ConsensusRunItem,
    LabelingProject,
    QueueItem,
)
from ..quality.consensus import dawid_skene, majority_vote, rater_accuracy
from ..quality.matrix import encode, item_votes
from ..selectors.consensus import (
    consensus_run_latest_done,
    consensus_run_pending,
    consensus_runs_stuck,
    counted_label_rows,
    counted_provenances,
    gold_answer_rows,
    new_label_count,
)

log = logging.getLogger(__name__)

# EM's tolerance (largest change of any posterior between two iterations), its iteration cap, and the
# pseudo-count added to every confusion cell and prior (so a rater with few labels is not certain).
DEFAULT_PARAMETERS = {"tol": 1e-6, "max_iter": 100, "smoothing": 0.01}
# Rows written per statement when keeping and applying a run's results.
BATCH = 5000
# Free text (and wide multiple choice) can have as many classes as labels: past this many classes a
# run keeps no per-item posterior and no confusion matrices, only each item's label and confidence.
MAX_CLASSES_KEPT = 50
DECIMALS = 6
# A run still queued after this long is sent again (its message was lost, or the broker was down).
RESEND_AFTER = timedelta(minutes=5)


class ConsensusParametersInvalid(ValueError):
    """A run's parameters that the model cannot use (a negative tolerance, say)."""


def consensus_parameters(parameters: dict | None) -> dict:
    """The defaults overridden by `parameters` (other keys are ignored), checked: tol in [0, 1), max_iter a
    whole number from 1 to 10,000, smoothing from 0 to 100; ConsensusParametersInvalid otherwise."""
    merged = {**DEFAULT_PARAMETERS, **{k: v for k, v in (parameters or {}).items() if k in DEFAULT_PARAMETERS}}
    tol, max_iter, smoothing = merged["tol"], merged["max_iter"], merged["smoothing"]
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
        raise ConsensusParametersInvalid(f"tol must be a number from 0 to 1, not {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or not 1 <= max_iter <= 10_000:
        raise ConsensusParametersInvalid(f"max_iter must be a whole number from 1 to 10000, not {max_iter!r}")
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing <= 100:
        raise ConsensusParametersInvalid(f"smoothing must be a number from 0 to 100, not {smoothing!r}")
    return merged


def consensus_run_request(*, project: LabelingProject, trigger: str, requested_by=None,
                          parameters: dict | None = None) -> ConsensusRun:
    """A new queued run of the project's consensus method, enqueued after the commit; or, while one is queued
    or running, that one (a partial unique index keeps one pending run per project).

    `run.created` says which: True for a new run, False for the pending one.
    """
    parameters = consensus_parameters(parameters)
    for _ in range(3):
        try:
            with transaction.atomic():
                run = ConsensusRun.objects.create(project=project, method=project.consensus_method, trigger=trigger,
                                                  parameters=parameters, requested_by=requested_by)
        except IntegrityError:
            pending = consensus_run_pending(project=project)
            if pending is None:
                continue  # it finished between the insert and the read: ask again
            pending.created = False
            return pending
        from ..tasks import run_consensus

        # Sent after the commit (delay_on_commit, made robust): with the broker down the request still
        # succeeds, and the check sends the queued run again.
        transaction.on_commit(lambda pk=run.pk: run_consensus.delay(pk), robust=True)
        run.created = True
        return run
    raise RuntimeError(f"could not request a consensus run of project {project.pk}")


def consensus_run_execute(*, run: ConsensusRun) -> ConsensusRun:
    """Claim a queued run (queued -> running) and execute it: it ends done, or failed with the error.

    A run that is not queued (a redelivered message, a second worker) is returned as it is.
    """
    claimed = ConsensusRun.objects.filter(pk=run.pk, status=ConsensusRun.Status.QUEUED).update(
        status=ConsensusRun.Status.RUNNING, started_at=timezone.now())
    if claimed:
        try:
            _execute(run.pk)
        except Exception as exc:
            log.exception("consensus run %s failed", run.pk)
            _fail(run.pk, f"{type(exc).__name__}: {exc}")
    run.refresh_from_db()
    return run


def _fail(run_id: int, error: str, *, status: str = ConsensusRun.Status.RUNNING) -> int:
    return ConsensusRun.objects.filter(pk=run_id, status=status).update(
        status=ConsensusRun.Status.FAILED, error=error[:4000], finished_at=timezone.now())


class _Model:
    """How a project's label values become classes: the class values in order and each label's class index."""

    def __init__(self, project: LabelingProject, method: str):
        kind = project.label_kind
        self.method, self.notes = method, []
        self.by_key = kind in (LabelingProject.LabelKind.MULTIPLE, LabelingProject.LabelKind.TEXT)
        if kind == LabelingProject.LabelKind.SINGLE:
            self.classes = project.choice_values()
        elif kind == LabelingProject.LabelKind.RATING:
            self.classes = list(range(project.scale_min, project.scale_max + 1))
        else:
            # A set of choices or a text has no fixed class list whose confusions Dawid-Skene could learn:
            # each distinct label (by label_key) is a class, and the majority decides.
            self.classes = []
            if method == ConsensusMethod.DAWID_SKENE:
                self.method = ConsensusMethod.MAJORITY
                self.notes.append(f"Dawid-Skene is not defined for {project.get_label_kind_display().lower()} "
                                  "labels: this run is a majority vote.")
        self.index = {value: i for i, value in enumerate(self.classes)}

    def lookup(self, value) -> int | None:
        """The class index of a value, or None when it is not (yet) a class."""
        if self.by_key:
            return self.index.get(label_key(value))
        if isinstance(value, bool) or isinstance(value, (list, dict)):
            return None
        return self.index.get(value)

    def code(self, value) -> int | None:
        """The class index of a label value (None: not one of the classes, e.g. a choice since removed)."""
        if self.by_key:
            key = label_key(value)
            if key not in self.index:
                self.index[key] = len(self.classes)
                self.classes.append(value)  # the first label seen with this key stands for the class
            return self.index[key]
        if isinstance(value, bool) or isinstance(value, (list, dict)):
            return None
        return self.index.get(value)


def labels_sha256(rows: list[tuple]) -> str:
    """SHA-256 (hex) of "<annotation id>:<value>\\n" lines in the rows' order, UTF-8, each value as compact
    JSON with sorted keys and characters unescaped (`json.dumps(v, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`). Rows are (id, item id, author, value as JSON text), as `counted_label_rows`
    reads them: recompute it from a label export to check which labels a run saw."""
    digest = hashlib.sha256()
    canonical: dict[str, str] = {}
    for text in {row[3] for row in rows}:
        canonical[text] = json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for start in range(0, len(rows), 100_000):
        digest.update("".join(f"{pk}:{canonical[text]}\n" for pk, _, _, text in rows[start:start + 100_000])
                      .encode())
    return digest.hexdigest()


def _execute(run_id: int) -> None:
    run = ConsensusRun.objects.select_related("project").get(pk=run_id)
    project = run.project
    parameters = consensus_parameters(run.parameters)
    labels = counted_label_rows(project=project)
    model = _Model(project, run.method)
    # Gold answers are evidence about the raters (their items' truth is clamped below), not labels that count:
    # they are fitted but not among the labels the run records as seen.
    gold_answers = gold_answer_rows(project=project) if model.method == ConsensusMethod.DAWID_SKENE else []
    # Values and authors are coded here, once per distinct value and author: a run reads every label of the
    # project, and encode() would sort the authors' names (Python strings) to code them.
    value_codes: dict[str, int | None] = {}
    author_codes: dict[str, int] = {}
    items, raters, codes, ignored = [], [], [], 0
    for _, item_id, author, text in [*labels, *gold_answers]:
        code = value_codes[text] if text in value_codes else value_codes.setdefault(text, model.code(json.loads(text)))
        if code is None:
            ignored += 1
            continue
        items.append(item_id)
        raters.append(author_codes[author] if author in author_codes else author_codes.setdefault(
            author, len(author_codes)))
        codes.append(code)
    if ignored:
        model.notes.append(f"{ignored} labels are not among the project's classes (choices changed?) and were "
                           "left out.")
    k, authors = len(model.classes), list(author_codes)
    m = encode(np.asarray(items, dtype=np.int64), np.asarray(raters, dtype=np.int64),
               np.asarray(codes, dtype=np.int64), classes=tuple(range(k)), rater_ids=tuple(range(len(authors))))
    gold = _known_truth(project, m, model)
    if not m.n_items:
        chosen, confidence = np.zeros(0, dtype=np.int64), np.zeros(0)
        posteriors, confusion, accuracy = np.zeros((0, k)), np.zeros((0, k, k)), np.zeros(0)
        fit = {"iterations": 0, "converged": None, "log_likelihood": None, "class_priors": []}
    elif model.method == ConsensusMethod.DAWID_SKENE:
        result = dawid_skene(m, tol=parameters["tol"], max_iter=parameters["max_iter"], gold=gold,
                             smoothing=parameters["smoothing"])
        chosen, confidence, posteriors = result.labels, result.confidence, result.posteriors
        confusion, accuracy = result.confusion, rater_accuracy(result, m)
        fit = {"iterations": result.iterations, "converged": result.converged,
               "log_likelihood": result.log_likelihood if np.isfinite(result.log_likelihood) else None,
               "class_priors": _rounded(result.priors)}
    else:
        chosen, confidence, posteriors, confusion, accuracy = _majority(m, k)
        fit = {"iterations": None, "converged": None, "log_likelihood": None,
               "class_priors": _rounded(_shares(np.bincount(chosen[chosen >= 0], minlength=k)))}
    keep_classes = k <= MAX_CLASSES_KEPT
    if not keep_classes:
        model.notes.append(f"{k} distinct labels: per-item posteriors and confusion matrices are not kept.")
    votes = item_votes(m)
    totals = votes.sum(axis=1)
    rows = np.arange(m.n_items)
    agreement = np.where(chosen >= 0, votes[rows, np.maximum(chosen, 0)] / np.maximum(totals, 1), np.nan)
    outcome = _Outcome(item_ids=list(m.item_ids), chosen=chosen.tolist(), confidence=confidence.tolist(),
                       agreement=agreement.tolist(),
                       posteriors=np.round(posteriors, DECIMALS).tolist() if keep_classes else None,
                       classes=model.classes)
    run.method = model.method  # what decides the items: majority when Dawid-Skene does not apply
    done = {
        "method": model.method,
        "parameters": {**parameters, "gold_answers": len(gold_answers),
                       **({"notes": model.notes} if model.notes else {})},
        "max_annotation_id": labels[-1][0] if labels else None,
        "label_count": len(labels), "labels_sha256": labels_sha256(labels),
        "item_count": m.n_items, "rater_count": m.n_raters,
        "classes": model.classes if keep_classes else [],
        "rater_confusion": ({r: np.round(confusion[i], DECIMALS).tolist() for i, r in enumerate(authors)}
                            if keep_classes else {}),
        "rater_accuracy": {r: round(float(a), DECIMALS) for r, a in zip(authors, accuracy) if np.isfinite(a)},
        **fit,
    }
    _store_and_apply(run, project, outcome, done)


def _known_truth(project: LabelingProject, m, model: _Model) -> dict[int, int]:
    """{item index: class index} for the matrix's gold items (their known answer) and adjudicated items."""
    position = {item_id: i for i, item_id in enumerate(m.item_ids)}
    known = (QueueItem.objects.filter(project=project)
             .filter(Q(is_gold=True) | Q(decided_by=QueueItem.Decided.ADJUDICATED, state=QueueItem.State.COMPLETE))
             .values_list("id", "is_gold", "gold_answer", "consensus"))
    gold = {}
    for item_id, is_gold, answer, consensus in known.iterator(chunk_size=5000):
        index = position.get(item_id)
        value = answer if is_gold else consensus
        if index is None or value is None:
            continue
        code = model.lookup(value)
        if code is not None:
            gold[index] = code
    return gold


def _majority(m, k: int):
    """Majority vote (ties: no label) as (labels, confidence, posteriors, confusion, rater accuracy): the vote
    shares stand for the posteriors, and each rater's confusion and accuracy are counted against the majority."""
    result = majority_vote(m, tie="none")
    votes = result.votes.astype(np.float64)
    totals = votes.sum(axis=1, keepdims=True)
    posteriors = np.divide(votes, totals, out=np.zeros_like(votes), where=totals > 0)
    confidence = np.nan_to_num(result.share, nan=0.0)
    truth = result.labels[m.items]
    decided = truth >= 0
    confusion = np.zeros((m.n_raters, k, k)) if k <= MAX_CLASSES_KEPT else None
    if confusion is not None:
        np.add.at(confusion, (m.raters[decided], truth[decided], m.labels[decided]), 1.0)
        sums = confusion.sum(axis=2, keepdims=True)
        confusion = np.divide(confusion, sums, out=np.zeros_like(confusion), where=sums > 0)
    right = np.bincount(m.raters[decided], weights=(truth[decided] == m.labels[decided]).astype(float),
                        minlength=m.n_raters)
    counted = np.bincount(m.raters[decided], minlength=m.n_raters)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.where(counted > 0, right / counted, np.nan)
    return result.labels, confidence, posteriors, confusion, accuracy


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def _rounded(values) -> list:
    return [round(float(v), DECIMALS) for v in values]


class _Outcome:
    """A run's per-item results, by position in the label matrix."""

    def __init__(self, *, item_ids, chosen, confidence, agreement, posteriors, classes):
        self.item_ids, self.chosen, self.confidence, self.agreement = item_ids, chosen, confidence, agreement
        self.posteriors, self.classes = posteriors, classes

    def label(self, i: int):
        return self.classes[self.chosen[i]] if self.chosen[i] >= 0 else None

    def confidence_of(self, i: int) -> float:
        return min(1.0, max(0.0, float(self.confidence[i])))

    def agreement_of(self, i: int) -> float | None:
        value = self.agreement[i]
        return None if value != value else min(1.0, max(0.0, float(value)))  # NaN: no label


def _store_and_apply(run: ConsensusRun, project: LabelingProject, outcome: _Outcome, done: dict) -> None:
    """In one transaction: keep every item's result, apply them, and mark the run done (unless the check has
    failed it meanwhile, as a run whose worker seemed dead: then nothing of it is written)."""
    now = timezone.now()
    with transaction.atomic():
        # The run's row first: the check that fails stuck runs waits for this transaction, then finds it done.
        if not ConsensusRun.objects.select_for_update().filter(pk=run.pk, status=ConsensusRun.Status.RUNNING).exists():
            raise RuntimeError("the run is no longer running (failed as stuck while it ran?)")
        _store_items(run, outcome)
        changed = _apply(run, project, outcome, now=now, max_annotation_id=done["max_annotation_id"])
        ConsensusRun.objects.filter(pk=run.pk).update(status=ConsensusRun.Status.DONE, finished_at=timezone.now(),
                                                      items_changed=changed, error="", **done)


_COPY_SQL = (f"COPY {ConsensusRunItem._meta.db_table} (run_id, item_id, label, confidence, posterior) "
             "FROM STDIN")


def _store_items(run: ConsensusRun, outcome: _Outcome) -> None:
    """One row per item the run saw. PostgreSQL: by COPY (200,000 rows in about a second; bulk_create took
    twenty); SQLite, for the embedded demo: bulk_create."""
    posteriors = outcome.posteriors
    if connection.vendor == "postgresql":
        labels = {i: orjson.dumps(value).decode() for i, value in enumerate(outcome.classes)}
        with connection.cursor() as cursor, cursor.cursor.copy(_COPY_SQL) as copy:
            for i, item_id in enumerate(outcome.item_ids):
                chosen = outcome.chosen[i]
                copy.write_row((run.pk, item_id, labels[chosen] if chosen >= 0 else None, outcome.confidence_of(i),
                                orjson.dumps(posteriors[i] if posteriors is not None else []).decode()))
        return
    ConsensusRunItem.objects.bulk_create(
        (ConsensusRunItem(run_id=run.pk, item_id=item_id, label=outcome.label(i), confidence=outcome.confidence_of(i),
                          posterior=posteriors[i] if posteriors is not None else [])
         for i, item_id in enumerate(outcome.item_ids)), batch_size=BATCH)


def _apply(run: ConsensusRun, project: LabelingProject, outcome: _Outcome, *, now: datetime,
           max_annotation_id: int | None) -> int:
    """Set the consensus of the complete and waiting items the run saw whole; returns how many changed
    (their label or their state).

    Gold, adjudicated and unlabelable items are never touched, and neither is an item that has a label
    newer than the run (the run did not see all of its labels). Open items keep collecting labels.
    An item whose confidence reaches the project's minimum is complete; below it, it waits for an
    adjudicator. Rows are locked in id order, a batch at a time, like every other writer of items.
    """
    position = {item_id: i for i, item_id in enumerate(outcome.item_ids)}
    ids = sorted(position)
    locked = []
    for start in range(0, len(ids), BATCH):
        locked += _lock(ids[start:start + BATCH])
    # Read after the locks: a label committed on a locked item before its lock was granted is seen by this
    # new statement, and no other can come until the commit (inserting a label key-share locks its item).
    newer = set(Annotation.objects.filter(project=project, id__gt=max_annotation_id or 0, is_gold=False,
                                          provenance__in=counted_provenances(project))
                .values_list("item_id", flat=True).distinct())
    changed, updates, decoded = 0, [], {}
    texts = connection.vendor == "postgresql"  # consensus as JSON text (_LOCK_SQL)
    for item_id, state, consensus in locked:
        if item_id in newer:
            continue
        i = position[item_id]
        label, confidence = outcome.label(i), outcome.confidence_of(i)
        # A tie decided only by the model's posterior ends here, or goes to an adjudicator.
        new_state = (QueueItem.State.COMPLETE if label is not None and confidence >= project.min_confidence
                     else QueueItem.State.ADJUDICATION)
        if texts and consensus is not None:
            consensus = decoded[consensus] if consensus in decoded else decoded.setdefault(consensus,
                                                                                         json.loads(consensus))
        if new_state != state or label_key(label) != label_key(consensus):
            changed += 1
        updates.append((item_id, label, confidence, outcome.agreement_of(i), new_state))
    for start in range(0, len(updates), BATCH):
        _write(updates[start:start + BATCH], run=run, now=now)
    return changed


_LOCK_SQL = f"""
SELECT id, state, consensus::text FROM {QueueItem._meta.db_table}
 WHERE id = ANY(%(ids)s::bigint[]) AND NOT is_gold AND state IN (%(complete)s, %(adjudication)s)
   AND decided_by <> %(adjudicated)s
 ORDER BY id
   FOR UPDATE
"""


def _lock(ids: list[int]) -> list[tuple]:
    """Lock the items a run may change among `ids`, in id order: (id, state, consensus) of each."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_SQL, {"ids": "{" + ",".join(map(str, ids)) + "}", "complete": QueueItem.State.COMPLETE,
                                       "adjudication": QueueItem.State.ADJUDICATION,
                                       "adjudicated": QueueItem.Decided.ADJUDICATED})
            return cursor.fetchall()
    return list(QueueItem.objects.select_for_update()
                .filter(pk__in=ids, is_gold=False, state__in=[QueueItem.State.COMPLETE, QueueItem.State.ADJUDICATION])
                .exclude(decided_by=QueueItem.Decided.ADJUDICATED).order_by("id")
                .values_list("id", "state", "consensus"))


_APPLY_SQL = f"""
UPDATE {QueueItem._meta.db_table} q
   SET consensus = v.consensus, confidence = v.confidence, agreement = v.agreement, state = v.state,
       decided_by = %(decided_by)s, consensus_run_id = %(run)s,
       completed_at = CASE WHEN v.state <> %(complete)s THEN NULL
                           WHEN q.state = %(complete)s THEN q.completed_at ELSE %(now)s END
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, consensus jsonb, confidence float8, agreement float8,
                                                state text)
 WHERE q.id = v.id
"""


def _write(updates: list[tuple], *, run: ConsensusRun, now: datetime) -> None:
    """One UPDATE per batch. PostgreSQL: the rows as one JSON parameter (Django's bulk_update writes a CASE per
    row and column, quadratic in the batch; arrays of texts cost more to send than to apply). SQLite, for the
    embedded demo: bulk_update in small batches."""
    if not updates:
        return
    if connection.vendor == "postgresql":
        rows = orjson.dumps([{"id": item_id, "consensus": label, "confidence": confidence, "agreement": agreement,
                              "state": state} for item_id, label, confidence, agreement, state in updates])
        with connection.cursor() as cursor:
            cursor.execute(_APPLY_SQL, {"rows": rows.decode(), "decided_by": run.method, "run": run.pk,
                                        "complete": QueueItem.State.COMPLETE, "now": now})
        return
    rows = {item.pk: item for item in QueueItem.objects.filter(pk__in=[u[0] for u in updates])
            .only("id", "state", "completed_at")}
    for item_id, label, confidence, agreement, state in updates:
        item = rows[item_id]
        item.completed_at = (None if state != QueueItem.State.COMPLETE
                             else item.completed_at if item.state == QueueItem.State.COMPLETE else now)
        item.consensus, item.confidence, item.agreement, item.state = label, confidence, agreement, state
        item.decided_by, item.consensus_run_id = run.method, run.pk
    QueueItem.objects.bulk_update(rows.values(), ["consensus", "confidence", "agreement", "state", "decided_by",
                                                  "consensus_run_id", "completed_at"], batch_size=200)


def consensus_runs_check(*, now: datetime | None = None) -> dict:
    """What the beat does every minute: end stuck runs, re-send lost ones, and request the runs that are due.

    - A run running for longer than SIEVE_CONSENSUS_STUCK_MINUTES fails (its worker died; the labels it
      was to see are taken by the next run); a run queued for RESEND_AFTER is sent to the workers again
      (its message was lost, or the broker was down; the claim makes a second delivery harmless).
    - A Dawid-Skene project with `consensus_every` > 0 gets a run once that many counted labels arrived
      since its last done run; any Dawid-Skene project gets one when its last run (or its creation) is
      older than SIEVE_CONSENSUS_SCHEDULE_HOURS and labels arrived since. After a failed run, these
      automatic requests wait SIEVE_CONSENSUS_RETRY_MINUTES (a run on demand does not).
    """
    now = now or timezone.now()
    stuck_after = timedelta(minutes=settings.SIEVE_CONSENSUS_STUCK_MINUTES)
    failed = resent = 0
    from ..tasks import run_consensus

    for run in consensus_runs_stuck(running_before=now - stuck_after, queued_before=now - RESEND_AFTER):
        if run.status == ConsensusRun.Status.RUNNING:
            failed += _fail(run.pk, f"still running after {settings.SIEVE_CONSENSUS_STUCK_MINUTES} minutes: "
                                    "its worker stopped; the next run takes its labels")
        else:
            try:
                run_consensus.delay(run.pk)
                resent += 1
            except Exception:
                log.exception("consensus run %s: could not send it again", run.pk)
    requested = []
    schedule = timedelta(hours=settings.SIEVE_CONSENSUS_SCHEDULE_HOURS)
    retry = timedelta(minutes=settings.SIEVE_CONSENSUS_RETRY_MINUTES)
    for project in LabelingProject.objects.filter(is_active=True, consensus_method=ConsensusMethod.DAWID_SKENE):
        trigger = _due(project, now=now, schedule=schedule, retry=retry)
        if trigger:
            run = consensus_run_request(project=project, trigger=trigger)
            if run.created:
                requested.append(run.pk)
    return {"failed": failed, "resent": resent, "requested": requested}


def _due(project: LabelingProject, *, now: datetime, schedule: timedelta, retry: timedelta) -> str | None:
    """Why the project needs a run now (a ConsensusRun.Trigger), or None."""
    latest = project.consensus_runs.order_by("-created_at", "-id").first()
    if latest is not None:
        if latest.status in (ConsensusRun.Status.QUEUED, ConsensusRun.Status.RUNNING):
            return None
        if latest.status == ConsensusRun.Status.FAILED and (latest.finished_at or latest.created_at) > now - retry:
            return None
    last_done = consensus_run_latest_done(project=project)
    after = (last_done.max_annotation_id or 0) if last_done else 0
    if project.consensus_every and new_label_count(project=project, after_id=after,
                                                   limit=project.consensus_every) >= project.consensus_every:
        return ConsensusRun.Trigger.LABELS
    since = (last_done.finished_at or last_done.created_at) if last_done else project.created_at
    if since <= now - schedule and new_label_count(project=project, after_id=after, limit=1):
        return ConsensusRun.Trigger.SCHEDULE
    return None
