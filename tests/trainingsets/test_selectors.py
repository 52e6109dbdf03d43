"""Reads of training sets: who may read which set, a version's diff with another, and a row's lineage."""
import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from collection.models import FeedbackEvent, Record
from collection.services import actor_pseudonym
from labeling.models import Adjudication, Annotation, Assignment, ConsensusRun, ConsensusRunItem, QueueItem, Rater
from tests.factories import admitted_batch, build, checkout_rows, person, settle
from trainingsets import selectors
from trainingsets.identity import record_identity
from trainingsets.models import Erasure
from trainingsets.services import VersionNotReady, trainingset_create, version_request
from validation.models import ValidationRun


@pytest.fixture
def readers(db):
    return Group.objects.create(name=f"readers-{uuid.uuid4().hex[:6]}")


def test_staff_the_owner_and_reader_group_members_read_a_set_and_nobody_else(source, readers):
    owner, member, outsider, staff = person("owner"), person("member", groups=[readers]), person("out"), \
        person("staff", staff=True)
    shared = trainingset_create(name="shared", sources=[source], owner=owner, reader_groups=[readers])
    private = trainingset_create(name="private", sources=[source])

    assert set(selectors.trainingset_list_for(staff)) == {shared, private}
    assert list(selectors.trainingset_list_for(owner)) == [shared]
    assert list(selectors.trainingset_list_for(member)) == [shared]
    assert list(selectors.trainingset_list_for(outsider)) == []
    assert selectors.trainingset_get_for(member, shared.pk) == shared
    assert selectors.trainingset_get_for(member, private.pk) is None
    assert selectors.trainingset_get_for(outsider, shared.pk) is None


def test_a_member_of_two_reader_groups_sees_the_set_once(source, readers):
    other = Group.objects.create(name=f"others-{uuid.uuid4().hex[:6]}")
    member = person("member", groups=[readers, other])
    trainingset_create(name="twice", sources=[source], reader_groups=[readers, other])
    assert selectors.trainingset_list_for(member).count() == 1


def test_only_staff_and_the_owner_may_publish(source, readers):
    owner, member, staff = person("owner"), person("member", groups=[readers]), person("staff", staff=True)
    shared = trainingset_create(name="shared", sources=[source], owner=owner, reader_groups=[readers])
    assert selectors.trainingset_can_publish(owner, shared)
    assert selectors.trainingset_can_publish(staff, shared)
    assert not selectors.trainingset_can_publish(member, shared)


def test_versions_are_listed_newest_first_and_got_by_number(built_version):
    second = version_request(training_set=built_version.training_set)
    assert [v.number for v in selectors.version_list(built_version.training_set)] == [2, 1]
    assert selectors.version_get(built_version.training_set, 2) == second
    assert selectors.version_get(built_version.training_set, 9) is None
    assert selectors.version_in_progress(built_version.training_set) == second
    assert selectors.version_previous(second) == built_version


# --- the diff of two real versions

@pytest.fixture
def two_versions(source, project, labeled_set, built_version):
    """v1 of `labeled_set`, then v2 after: 5 new records (added), 3 whose consensus went away (removed, the policy
    drops unlabeled records) and 4 whose consensus changed (relabeled)."""
    items = {i.record.external_id: i for i in QueueItem.objects.filter(project=project).select_related("record")}
    for name in ("r1", "r2", "r3"):
        QueueItem.objects.filter(pk=items[name].pk).update(state=QueueItem.State.OPEN, consensus=None, confidence=None)
    for name in ("r6", "r7", "r8", "r10"):  # r10 was "fraud" (every fifth), the others "ok"
        QueueItem.objects.filter(pk=items[name].pk).update(consensus="ok" if name == "r10" else "fraud")
    batch = admitted_batch(source, checkout_rows(5, start=100))
    settle(project, batch, lambda r: "ok")
    second = build(labeled_set)
    assert second.status in ("published", "review"), second.error
    return built_version, second


def test_the_diff_counts_records_added_removed_and_relabeled(two_versions):
    first, second = two_versions
    diff = selectors.version_diff(first, second)

    assert (diff["added"], diff["removed"], diff["relabeled"], diff["moved_split"]) == (5, 3, 4, 0)
    assert diff["unchanged"] == 60 - 3 - 4
    assert diff["old"] == {"number": 1, "rows": 60} and diff["new"] == {"number": 2, "rows": 62}
    assert sorted(e["external_id"] for e in diff["examples"]["added"]) == [f"r{i}" for i in range(100, 105)]
    assert sorted(e["external_id"] for e in diff["examples"]["removed"]) == ["r1", "r2", "r3"]
    relabeled = {e["external_id"]: (e["old_label"], e["new_label"]) for e in diff["examples"]["relabeled"]}
    assert relabeled == {"r6": ("ok", "fraud"), "r7": ("ok", "fraud"), "r8": ("ok", "fraud"),
                         "r10": ("fraud", "ok")}
    assert {(p["old_label"], p["new_label"], p["count"]) for p in diff["relabel_pairs"]} == {
        ("ok", "fraud", 3), ("fraud", "ok", 1)}
    assert all(e["source"] == "checkout-app" for e in diff["examples"]["added"])


def test_the_diff_per_split_adds_up_to_its_totals_and_matches_the_manifests(two_versions):
    first, second = two_versions
    diff = selectors.version_diff(first, second)
    splits = diff["splits"]
    assert set(splits) == set(first.manifest["splits"]) | set(second.manifest["splits"])
    for kind in ("added", "removed", "relabeled"):
        assert sum(s[kind] for s in splits.values()) == diff[kind]
    for name, counts in splits.items():
        assert counts["old_rows"] == first.manifest["splits"][name]["rows"]
        assert counts["new_rows"] == second.manifest["splits"][name]["rows"]
        assert counts["new_rows"] == counts["old_rows"] + counts["added"] - counts["removed"]
        assert counts["moved_in"] == counts["moved_out"] == 0


def test_the_diff_shows_at_most_the_asked_number_of_examples_the_same_every_time(two_versions):
    first, second = two_versions
    once = selectors.version_diff(first, second, examples=2)
    assert all(len(rows) <= 2 for rows in once["examples"].values())
    assert len(once["examples"]["added"]) == 2
    assert once == selectors.version_diff(first, second, examples=2)


def test_a_version_against_itself_has_no_difference(built_version):
    diff = selectors.version_diff(built_version, built_version)
    assert (diff["added"], diff["removed"], diff["relabeled"], diff["moved_split"]) == (0, 0, 0, 0)
    assert diff["unchanged"] == 60


def test_a_version_without_files_cannot_be_diffed(built_version):
    queued = version_request(training_set=built_version.training_set)
    with pytest.raises(VersionNotReady):
        selectors.version_diff(built_version, queued)


# --- lineage

@pytest.fixture
def traced(source, project, labeled_set):
    """r5 of `labeled_set` with everything a row can trace to: a validation run, two raters' labels (one undone),
    a process-feedback label, a consensus run with its posterior, an adjudication; then version 1."""
    record = Record.objects.get(source=source, external_id="r5")
    item = QueueItem.objects.get(project=project, record=record)
    run_of_batch = ValidationRun.objects.create(batch=record.batch, verdict="pass", started_at=timezone.now(),
                                                finished_at=timezone.now())
    alice = Rater.objects.create(user=person("alice"), kind=Rater.Kind.EXPERT)
    bob = Rater.objects.create(user=person("bob"))
    lease = Assignment.objects.create(item=item, project=project, rater=alice, state=Assignment.State.SUBMITTED,
                                      expires_at=timezone.now() + timedelta(minutes=5), finished_at=timezone.now())
    Annotation.objects.create(item=item, project=project, rater=alice, assignment=lease, value="fraud")
    Annotation.objects.create(item=item, project=project, rater=bob, value="ok", undone_at=timezone.now(),
                              provenance=Annotation.Provenance.IMPORTED)
    event = FeedbackEvent.objects.create(source=source, idempotency_key="e1", external_id="r5", record=record,
                                         signal="thumbs", value="down", actor=actor_pseudonym("customer-7"),
                                         occurred_at=timezone.now())
    Annotation.objects.create(item=item, project=project, actor=event.actor, feedback_event=event,
                              provenance=Annotation.Provenance.PROCESS_FEEDBACK, value="fraud")
    run = ConsensusRun.objects.create(project=project, status=ConsensusRun.Status.DONE, finished_at=timezone.now())
    ConsensusRunItem.objects.create(run=run, item=item, label="fraud", confidence=0.9, posterior=[0.1, 0.9])
    QueueItem.objects.filter(pk=item.pk).update(consensus_run=run)
    judge = person("judge", staff=True)
    adjudication = Adjudication.objects.create(item=item, project=project, decided_by=judge, value="fraud",
                                               reason="card reported stolen")
    version = build(labeled_set)
    return {"version": version, "record": record, "item": item, "batch_run": run_of_batch, "alice": alice,
            "bob": bob, "run": run, "adjudication": adjudication, "judge": judge}


def test_lineage_traces_a_row_to_its_record_batch_validation_labels_consensus_and_adjudication(traced, source):
    rows = selectors.version_lineage(traced["version"], "r5")
    assert len(rows) == 1
    row = rows[0]
    record, item = traced["record"], traced["item"]
    assert row["source"] == {"id": source.pk, "name": source.name}
    assert row["label"] == "fraud" and row["label_origin"] == "consensus"
    assert row["record"] == {"id": record.pk, "erased": False, "revision": 1, "revisions": 1, "current": True,
                             "observed_at": record.observed_at}
    assert row["batch"]["id"] == record.batch_id and row["batch"]["status"] == "admitted"
    assert row["validation_run"] == {"id": traced["batch_run"].pk, "verdict": "pass"}
    assert row["item_id"] == item.pk
    assert row["consensus_run"]["id"] == traced["run"].pk
    assert row["consensus_run"]["posterior"] == [0.1, 0.9]
    assert [a["id"] for a in row["adjudications"]] == [traced["adjudication"].pk]
    assert row["adjudications"][0]["reason"] == "card reported stolen"
    labels = row["labels"]
    assert [(label["value"], label["provenance"], label["rater_kind"], label["undone"]) for label in labels] == [
        ("fraud", "human", "expert", False), ("ok", "imported", "generalist", True),
        ("fraud", "process_feedback", "process_feedback", False)]
    assert labels[0]["rater"] == actor_pseudonym(f"rater:{traced['alice'].pk}")[:12]
    assert labels[2]["rater"] is None and labels[2]["actor"] == actor_pseudonym("customer-7")


def test_lineage_never_shows_a_rater_s_or_an_adjudicator_s_name(traced):
    text = json.dumps(selectors.version_lineage(traced["version"], "r5"), default=str)
    for user in (traced["alice"].user, traced["bob"].user, traced["judge"]):
        assert user.username not in text
    assert actor_pseudonym(f"user:{traced['judge'].pk}")[:12] in text


def test_lineage_of_a_revised_record_says_which_revision_the_version_holds(traced, source):
    admitted_batch(source, [{"external_id": "r5", "features": {"amount": 99.0, "country": "DE"}}])
    row = selectors.version_lineage(traced["version"], "r5")[0]
    assert row["record"]["revision"] == 1 and row["record"]["revisions"] == 2
    assert row["record"]["current"] is False


def test_lineage_of_an_erased_record_shows_its_tombstone(traced, source):
    record = traced["record"]
    erasure = Erasure.objects.create(kind=Erasure.Kind.RECORD, source=source,
                                     identity=record_identity(source.pk, "r5"), status=Erasure.Status.DONE)
    Record.objects.filter(pk=record.pk).delete()
    row = selectors.version_lineage(traced["version"], "r5")[0]
    assert row["record"]["erased"] is True and row["record"]["id"] == record.pk
    assert row["record"]["erasure"]["id"] == erasure.pk
    assert row["labels"] == [] and row["adjudications"] == []


def test_lineage_of_an_id_that_is_not_in_the_version_is_empty(built_version, source):
    assert selectors.version_lineage(built_version, "nope") == []
    assert selectors.version_lineage(built_version, "r5", source="another-source") == []
    assert len(selectors.version_lineage(built_version, "r5", source=source.name)) == 1


def test_a_version_marked_by_an_erasure_lists_the_marks(built_version, source):
    assert selectors.version_erasure_marks(built_version) is None
    erasure = Erasure.objects.create(kind=Erasure.Kind.RECORD, source=source, identity=record_identity(source.pk, "r1"))
    erasure.versions.add(built_version)
    marks = selectors.version_erasure_marks(built_version)
    assert marks["rows"] == 1 and [e["id"] for e in marks["erasures"]] == [erasure.pk]
