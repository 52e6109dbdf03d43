"""Consensus runs: Dawid-Skene over a project's labels (the RTE crowd set of Snow et al. 2008), which labels a
run saw, how its results reach the items (ties settled, gold and adjudicated items as truth), the beat's
requests, runs that fail or get stuck, and a run requested and executed by a real Celery worker."""
import csv
import uuid
from collections import Counter
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from labeling import services
from labeling.labels import consensus as majority
from labeling.models import (
    Adjudication,
    Annotation,
    Assignment,
    ConsensusRun,
    ConsensusRunItem,
    LabelingProject,
    Membership,
    QueueItem,
    Rater,
)
from labeling.selectors.consensus import counted_label_rows, counted_labels
from labeling.services.consensus import labels_sha256
from tests.conftest import wait_for
from tests.factories import CHOICES, batch_of_records

RTE = Path(__file__).resolve().parents[1] / "data" / "crowd" / "snow2008" / "rte.standardized.tsv"
BINARY = [{"value": "0", "label": "No entailment", "hotkey": "1"}, {"value": "1", "label": "Entailment", "hotkey": "2"}]


@lru_cache
def rte() -> tuple[list[tuple[str, str, str]], dict[str, str]]:
    """The RTE labels as (item, worker, label) and the gold label of each item."""
    with RTE.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    labels = [(r["orig_id"], r["!amt_worker_ids"], r["response"]) for r in rows]
    return labels, {r["orig_id"]: r["gold"] for r in rows}


def crowd_project(source, labels: list[tuple[str, str, str]], *, name: str = "rte", overlap: int | None = None,
                  settle: bool = True, **options) -> tuple[LabelingProject, dict[str, QueueItem], dict[str, Rater]]:
    """A project holding `labels` (item key, worker, value) as human labels, one rater per worker, made directly
    (bulk inserts; the queue is tested elsewhere). With `settle`, each item is as the majority left it:
    complete with its majority, or waiting for adjudication on a tie."""
    counts = Counter(item for item, _, _ in labels)
    project = services.project_create(name=name, choices=options.pop("choices", BINARY), sources=[source],
                                      overlap=overlap or max(counts.values()), **options)
    keys = list(dict.fromkeys(item for item, _, _ in labels))
    batch = batch_of_records(source, 0)
    from collection.models import Record

    Record.objects.bulk_create([Record(batch=batch, source=source, line=i + 1, external_id=key, is_current=True,
                                       features={"pair": key}) for i, key in enumerate(keys)])
    services.batch_route(batch_id=batch.pk)
    items = {item.record.external_id: item for item in project.items.select_related("record")}
    workers = list(dict.fromkeys(worker for _, worker, _ in labels))
    tag = uuid.uuid4().hex[:4]
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"{tag}-{w}", password="!") for w in workers])
    raters = dict(zip(workers, Rater.objects.bulk_create([Rater(user=u) for u in users])))
    Membership.objects.bulk_create([Membership(project=project, rater=r) for r in raters.values()])
    now = timezone.now()
    leases = Assignment.objects.bulk_create([
        Assignment(item=items[item], project=project, rater=raters[worker], state=Assignment.State.SUBMITTED,
                   leased_at=now - timedelta(minutes=1), expires_at=now, finished_at=now)
        for item, worker, _ in labels])
    Annotation.objects.bulk_create([
        Annotation(item=items[item], project=project, assignment=lease, rater=raters[worker], value=value,
                   created_at=now)
        for (item, worker, value), lease in zip(labels, leases)])
    if settle:
        by_item: dict[str, list] = {}
        for item, _, value in labels:
            by_item.setdefault(item, []).append(value)
        for key, item in items.items():
            result = majority(by_item[key])
            item.needed = item.submitted_count = counts[key]
            item.agreement = item.confidence = result.agreement
            item.consensus = result.label
            item.decided_by = QueueItem.Decided.MAJORITY
            item.state = QueueItem.State.ADJUDICATION if result.tie else QueueItem.State.COMPLETE
            item.completed_at = None if result.tie else now
        QueueItem.objects.bulk_update(items.values(), ["needed", "submitted_count", "agreement", "confidence",
                                                       "consensus", "decided_by", "state", "completed_at"],
                                      batch_size=500)
    return project, items, raters


def requested_and_executed(project, **parameters) -> ConsensusRun:
    run = services.consensus_run_request(project=project, trigger=ConsensusRun.Trigger.DEMAND,
                                         parameters=parameters or None)
    return services.consensus_run_execute(run=run)


def accuracy(project, gold: dict[str, str]) -> float:
    decided = dict(QueueItem.objects.filter(project=project).values_list("record__external_id", "consensus"))
    return sum(decided[key] == truth for key, truth in gold.items()) / len(gold)


# --- Dawid-Skene on a real crowd set


@pytest.mark.slow
def test_dawid_skene_on_rte_beats_the_majority_and_settles_every_tie(source):
    labels, gold = rte()
    project, items, raters = crowd_project(source, labels)
    assert accuracy(project, gold) < 0.90  # the majority: ties have no label at all
    waiting = set(QueueItem.objects.filter(project=project, state="adjudication").values_list("id", flat=True))
    assert len(waiting) > 50

    run = requested_and_executed(project)

    assert run.status == "done" and run.error == ""
    assert accuracy(project, gold) >= 0.927  # published Dawid-Skene error on RTE: 7.1 to 7.3 %
    assert (run.method, run.label_count, run.item_count, run.rater_count) == ("dawid_skene", 8000, 800, 164)
    assert run.converged and run.iterations > 1 and run.log_likelihood < 0
    assert run.items_changed > len(waiting)  # every tie, and the items where the model overrules the majority
    assert run.classes == ["0", "1"] and len(run.class_priors) == 2
    some = str(raters[labels[0][1]].pk)
    assert len(run.rater_confusion) == 164 and len(run.rater_confusion[some]) == 2
    assert all(abs(sum(row) - 1) < 1e-5 for row in run.rater_confusion[some])
    assert 0 <= run.rater_accuracy[some] <= 1
    # A tie ends in consensus: on two classes the posterior's maximum always clears the default 0.5.
    settled = QueueItem.objects.filter(pk__in=waiting)
    assert {(i.state, i.decided_by, i.consensus_run_id) for i in settled} == {("complete", "dawid_skene", run.pk)}
    assert all(i.completed_at is not None and 0.5 <= i.confidence <= 1 for i in settled)
    assert ConsensusRunItem.objects.filter(run=run).count() == 800
    kept = ConsensusRunItem.objects.get(run=run, item=items[labels[0][0]])
    assert kept.label in ("0", "1") and len(kept.posterior) == 2 and abs(kept.confidence - max(kept.posterior)) < 1e-5


@pytest.mark.slow
def test_items_below_the_minimum_confidence_wait_for_an_adjudicator(source):
    labels, gold = rte()
    project, items, _ = crowd_project(source, labels, min_confidence=0.99)
    run = requested_and_executed(project)
    low = ConsensusRunItem.objects.filter(run=run, confidence__lt=0.99).values_list("item_id", flat=True)
    assert 0 < len(low) < 800
    waiting = QueueItem.objects.filter(project=project, state="adjudication")
    assert set(waiting.values_list("id", flat=True)) == set(low)
    assert all(i.decided_by == "dawid_skene" and i.completed_at is None and i.consensus in ("0", "1")
               for i in waiting)


# --- which labels a run saw


def test_a_run_records_exactly_which_labels_it_saw_and_the_next_sees_a_later_one(source):
    labels = [(f"i{i}", w, "1" if (i + j) % 4 else "0") for i in range(6) for j, w in enumerate("abc")]
    project, items, raters = crowd_project(source, labels, name="small")
    first = requested_and_executed(project)
    seen = counted_label_rows(project=project)
    assert (first.label_count, first.max_annotation_id) == (18, seen[-1][0])
    assert first.labels_sha256 == labels_sha256(seen)

    # Imported afterwards: not part of the first run, whatever happens to the item later.
    late = Annotation.objects.create(item=items["i0"], project=project, rater=raters["a"], value="0",
                                     provenance=Annotation.Provenance.IMPORTED)
    gold_answer = Annotation.objects.create(item=items["i1"], project=project, rater=raters["a"], value="0",
                                            provenance=Annotation.Provenance.IMPORTED, is_gold=True)
    Annotation.objects.filter(pk=seen[0][0]).update(undone_at=timezone.now())  # withdrawn: never counted again
    first.refresh_from_db()
    assert first.max_annotation_id < late.pk and first.label_count == 18

    second = requested_and_executed(project)
    assert second.pk != first.pk and second.max_annotation_id == late.pk
    assert second.label_count == 18  # one new, one withdrawn; the gold answer never counts
    assert second.labels_sha256 != first.labels_sha256
    assert gold_answer.pk not in [pk for pk, *_ in counted_labels(project=project)]


def test_requesting_while_a_run_is_pending_returns_that_run(source):
    project, _, _ = crowd_project(source, [("i1", "a", "1"), ("i1", "b", "1")], name="pending")
    first = services.consensus_run_request(project=project, trigger="demand")
    again = services.consensus_run_request(project=project, trigger="labels")
    assert first.created and not again.created and again.pk == first.pk
    ConsensusRun.objects.filter(pk=first.pk).update(status="running")
    assert services.consensus_run_request(project=project, trigger="demand").pk == first.pk
    services.consensus_run_execute(run=first)  # running already: another worker's, left alone
    first.refresh_from_db()
    assert first.status == "running"
    ConsensusRun.objects.filter(pk=first.pk).update(status="done")
    assert services.consensus_run_request(project=project, trigger="demand").created


def test_a_run_executed_twice_is_computed_once(source):
    project, _, _ = crowd_project(source, [(f"i{i}", w, "1") for i in range(3) for w in "ab"], name="twice")
    run = requested_and_executed(project)
    finished = run.finished_at
    again = services.consensus_run_execute(run=run)
    assert (again.status, again.finished_at) == ("done", finished)
    assert ConsensusRunItem.objects.filter(run=run).count() == 3


def test_a_run_that_fails_ends_failed_with_its_error_and_changes_nothing(source):
    project, items, _ = crowd_project(source, [("i1", "a", "1"), ("i1", "b", "0"), ("i1", "c", "0")],
                                      name="broken")
    run = ConsensusRun.objects.create(project=project, parameters={"tol": 1e-6, "max_iter": 0, "smoothing": 0.01})
    run = services.consensus_run_execute(run=run)
    assert run.status == "failed" and "max_iter must be a whole number" in run.error
    assert run.finished_at is not None and not ConsensusRunItem.objects.filter(run=run).exists()
    items["i1"].refresh_from_db()
    assert (items["i1"].consensus, items["i1"].decided_by) == ("0", "majority")
    assert services.consensus_run_request(project=project, trigger="demand").created  # no longer pending


# --- truth that is known


def flipped_crowd(n: int = 20) -> list[tuple[str, str, str]]:
    """Three raters who always give the wrong answer and one who is always right (truth: "1" on even items)."""
    labels = []
    for i in range(n):
        truth = "1" if i % 2 == 0 else "0"
        wrong = "0" if truth == "1" else "1"
        labels += [(f"i{i:02d}", "right", truth)] + [(f"i{i:02d}", w, wrong) for w in ("x", "y", "z")]
    return labels


def test_gold_items_fix_their_truth_and_teach_the_model_who_is_wrong(source):
    labels = flipped_crowd()
    project, items, _ = crowd_project(source, labels, name="flipped")
    for key in ("i00", "i01", "i02", "i03", "i04", "i05"):
        services.item_set_gold(item=items[key], answer="1" if int(key[1:]) % 2 == 0 else "0")
    gold_before = {k: QueueItem.objects.get(pk=items[k].pk).state for k in ("i00", "i01")}

    run = requested_and_executed(project)

    results = dict(ConsensusRunItem.objects.filter(run=run).values_list("item__record__external_id", "label"))
    assert all(results[f"i{i:02d}"] == ("1" if i % 2 == 0 else "0") for i in range(20))
    assert ConsensusRunItem.objects.get(run=run, item=items["i01"]).confidence == 1.0
    # The gold items themselves are not touched; every other item now has the truth the majority missed.
    assert {k: QueueItem.objects.get(pk=items[k].pk).state for k in ("i00", "i01")} == gold_before
    assert QueueItem.objects.get(pk=items["i00"].pk).consensus_run_id is None
    rest = QueueItem.objects.filter(project=project, is_gold=False)
    assert all(i.consensus == ("1" if int(i.record.external_id[1:]) % 2 == 0 else "0") for i in rest)
    assert run.items_changed == rest.count()


def test_raters_answers_on_gold_items_teach_the_model_without_counting_as_labels(source):
    labels = flipped_crowd()
    project, items, raters = crowd_project(source, labels, name="taught-by-gold")
    gold_keys = ("i00", "i01", "i02", "i03", "i04", "i05")
    for key in gold_keys:
        services.item_set_gold(item=items[key], answer="1" if int(key[1:]) % 2 == 0 else "0")
    # As if every answer on those items had been given while they were gold: no regular label left on them.
    Annotation.objects.filter(item__in=[items[k] for k in gold_keys]).update(is_gold=True)

    run = requested_and_executed(project)

    assert run.parameters["gold_answers"] == 4 * len(gold_keys)
    assert run.label_count == 4 * (20 - len(gold_keys))  # gold answers are evidence, not labels the run counted
    assert run.rater_accuracy[str(raters["right"].pk)] > 0.9
    assert run.rater_accuracy[str(raters["x"].pk)] < 0.1
    rest = QueueItem.objects.filter(project=project, is_gold=False)
    assert all(i.consensus == ("1" if int(i.record.external_id[1:]) % 2 == 0 else "0") for i in rest)


def test_an_adjudicated_item_is_never_changed_by_a_run_and_counts_as_truth(source, admin_user):
    labels = flipped_crowd(10)
    project, items, _ = crowd_project(source, labels, name="adjudicated")
    decided = items["i00"]
    QueueItem.objects.filter(pk=decided.pk).update(state="adjudication")
    decided.refresh_from_db()
    services.item_adjudicate(item=decided, user=admin_user, value="1", reason="the rater I trust is right")
    closed = items["i01"]
    services.item_close_unlabelable(item=closed, user=admin_user, reason="the pair is garbled")
    before = QueueItem.objects.filter(pk__in=[decided.pk, closed.pk]).order_by("id").values()

    run = requested_and_executed(project)

    assert list(QueueItem.objects.filter(pk__in=[decided.pk, closed.pk]).order_by("id").values()) == list(before)
    assert ConsensusRunItem.objects.get(run=run, item=decided).label == "1"  # clamped to the decision
    assert Adjudication.objects.count() == 2


# --- multiple choice has no Dawid-Skene


def test_a_multiple_choice_project_gets_a_majority_run_that_says_why(source):
    labels = [("i1", "a", ["positive", "neutral"]), ("i1", "b", ["neutral", "positive"]), ("i1", "c", ["negative"]),
              ("i2", "a", ["negative"]), ("i2", "b", ["positive"])]
    project, items, _ = crowd_project(source, labels, name="topics", choices=CHOICES, settle=False,
                                      label_kind=LabelingProject.LabelKind.MULTIPLE)
    QueueItem.objects.filter(project=project).update(state="complete")
    run = requested_and_executed(project)
    assert run.status == "done" and run.method == "majority"
    assert "Dawid-Skene is not defined for multiple choice" in run.parameters["notes"][0]
    one, two = (QueueItem.objects.get(pk=items[k].pk) for k in ("i1", "i2"))
    assert (one.consensus, one.state, one.decided_by) == (["positive", "neutral"], "complete", "majority")
    assert abs(one.confidence - 2 / 3) < 1e-6
    assert (two.consensus, two.state) == (None, "adjudication")  # a tie without a model to break it


# --- the beat


def test_the_check_requests_a_run_after_enough_new_labels_then_on_schedule(source):
    labels = [(f"i{i}", w, "1") for i in range(2) for w in "abc"]
    project, items, raters = crowd_project(source, labels, name="beat", consensus_every=10)
    services.project_create(name="majority-only", choices=BINARY, consensus_method="majority")
    check = services.consensus_runs_check
    assert check()["requested"] == []  # 6 labels: fewer than 10, and the project is new
    more = [Annotation(item=items["i0"], project=project, rater=r, value="0", provenance="imported")
            for r in list(raters.values())[:3]]
    more += [Annotation(item=items["i1"], project=project, rater=r, value="0", provenance="imported")
             for r in list(raters.values())[:1]]
    Annotation.objects.bulk_create(more)
    requested = check()["requested"]
    assert len(requested) == 1 and ConsensusRun.objects.get(pk=requested[0]).trigger == "labels"
    assert check()["requested"] == []  # pending
    services.consensus_run_execute(run=ConsensusRun.objects.get(pk=requested[0]))
    assert check()["requested"] == []  # nothing new
    Annotation.objects.create(item=items["i1"], project=project, rater=list(raters.values())[1], value="0",
                              provenance="imported")
    assert check()["requested"] == []  # one new label, and the last run is recent
    tomorrow = timezone.now() + timedelta(hours=25)
    requested = check(now=tomorrow)["requested"]
    assert len(requested) == 1 and ConsensusRun.objects.get(pk=requested[0]).trigger == "schedule"


def test_the_check_fails_a_stuck_run_and_waits_before_asking_again(source):
    project, _, _ = crowd_project(source, [(f"i{i}", w, "1") for i in range(4) for w in "abc"], name="stuck",
                                  consensus_every=5)
    run = services.consensus_run_request(project=project, trigger="labels")
    ConsensusRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())
    assert services.consensus_runs_check()["failed"] == 0  # running, not for long
    later = timezone.now() + timedelta(minutes=31)
    outcome = services.consensus_runs_check(now=later)
    run.refresh_from_db()
    assert outcome["failed"] == 1 and run.status == "failed" and "still running after 30 minutes" in run.error
    assert outcome["requested"] == []  # a failed run: automatic requests wait an hour
    assert len(services.consensus_runs_check(now=later + timedelta(minutes=61))["requested"]) == 1
    # A worker that finishes after all finds its run failed and writes nothing.
    services.consensus_run_execute(run=run)
    assert not ConsensusRunItem.objects.filter(run=run).exists()


def test_a_queued_run_whose_message_was_lost_is_sent_again(source):
    project, _, _ = crowd_project(source, [("i1", "a", "1")], name="lost")
    run = services.consensus_run_request(project=project, trigger="demand")
    assert services.consensus_runs_check()["resent"] == 0
    assert services.consensus_runs_check(now=timezone.now() + timedelta(minutes=6))["resent"] == 1
    run.refresh_from_db()
    assert run.status == "queued"


# --- with a real worker


def waiting_for_a_lock() -> bool:
    """Whether a session of this database waits for a lock (the worker, on the held item)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


@pytest.mark.worker
@pytest.mark.slow
def test_a_worker_runs_a_requested_run_and_leaves_alone_an_item_labeled_meanwhile(worker, source):
    import psycopg

    labels = flipped_crowd(10)
    project, items, raters = crowd_project(source, labels, name="worker")
    held = items["i02"]
    settings = connection.settings_dict
    # Another session locks one complete item, as an import labeling it would: the run waits for it before
    # applying, and meanwhile that session adds its label and commits.
    other = psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                            user=settings["USER"], dbname=settings["NAME"], autocommit=False)
    try:
        other.execute("SELECT id FROM labeling_queueitem WHERE id = %s FOR UPDATE", [held.pk])
        run = services.consensus_run_request(project=project, trigger="demand")
        wait_for(waiting_for_a_lock, timeout=60, what="the run to reach the locked item")
        late = other.execute(
            "INSERT INTO labeling_annotation (item_id, project_id, rater_id, actor, provenance, value, created_at) "
            "VALUES (%s, %s, %s, '', 'imported', '\"0\"'::jsonb, now()) RETURNING id",
            [held.pk, project.pk, raters["right"].pk]).fetchone()[0]
        other.commit()
    finally:
        other.close()
    wait_for(lambda: ConsensusRun.objects.get(pk=run.pk).status in ("done", "failed"), timeout=60,
             what="the run to end")
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.max_annotation_id < late
    held.refresh_from_db()
    assert (held.decided_by, held.consensus_run_id) == ("majority", None)  # it has a label the run never saw
    assert QueueItem.objects.filter(project=project, consensus_run=run).count() == 9
