"""Staff decisions on a version its gate held, and making a published version its sources' baseline."""
import threading

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from collection import services as collection_services
from collection.parsing import LABEL_COLUMN
from collection.storage import data_path
from tests.factories import admitted_batch, build, checkout_rows, settle
from trainingsets.models import TrainingSet, TrainingSetVersion
from trainingsets.services.decisions import review_subject, version_decide, version_make_baseline
from trainingsets.services.errors import (
    CommentRequired,
    NoProfile,
    NotAllowed,
    NotInReview,
    NotPublished,
    VersionNotFound,
)
from validation import alerts
from validation.models import Alert, AuditEntry, Baseline
from validation.services import baseline_create_from_profile
from validation.stats import Profile, infer_schema, profile_frame

Status = TrainingSetVersion.Status


def a_profile(n: int = 300, seed: int = 0) -> Profile:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"amount": rng.normal(10, 2, n), "country": rng.choice(["DE", "FR"], n),
                          LABEL_COLUMN: rng.choice(["ok", "fraud"], n)})
    return profile_frame(frame, label=LABEL_COLUMN)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("admin", password="pw-12345678", is_staff=True)


@pytest.fixture
def rater(django_user_model):
    return django_user_model.objects.create_user("rater", password="pw-12345678")


@pytest.fixture
def training_set(source):
    training_set = TrainingSet.objects.create(name="fraud")
    training_set.sources.add(source, collection_services.source_create(name="mobile-app", kind="app"))
    return training_set


def version_in(training_set, status: str, number: int = 1, *, profile: Profile | None = None) -> TrainingSetVersion:
    """A built version with one file, its gate's profile and, when held, the review alert the build raises."""
    folder = f"trainingsets/{training_set.pk}/v{number}"
    data_path(folder).mkdir(parents=True, exist_ok=True)
    data_path(f"{folder}/train.parquet").write_bytes(b"PAR1 stand-in")
    version = TrainingSetVersion.objects.create(
        training_set=training_set, number=number, status=status, folder=folder, gate_verdict="fail",
        profile=(profile or a_profile()).to_json(), gate_report={"verdict": "fail", "reasons": ["drift"]})
    if status == Status.REVIEW:
        alerts.alert_raise(kind=Alert.Kind.VERSION_REVIEW, subject=review_subject(version),
                           message=f"{version} held by its gate")
    return version


def review_alert_open(version) -> bool:
    return Alert.objects.filter(kind=Alert.Kind.VERSION_REVIEW, subject=review_subject(version),
                                resolved_at__isnull=True).exists()


def test_approving_a_held_version_needs_a_comment(training_set, staff):
    version = version_in(training_set, Status.REVIEW)
    with pytest.raises(CommentRequired) as refused:
        version_decide(version_id=version.pk, user=staff, approve=True, comment="   ")
    assert (refused.value.code, refused.value.status, refused.value.field) == ("comment_required", 400, "comment")
    version.refresh_from_db()
    assert version.status == Status.REVIEW and version.decided_by is None and review_alert_open(version)


def test_only_staff_decide_on_a_version(training_set, rater):
    version = version_in(training_set, Status.REVIEW)
    with pytest.raises(NotAllowed) as refused:
        version_decide(version_id=version.pk, user=rater, approve=True, comment="fine")
    assert (refused.value.code, refused.value.status) == ("not_allowed", 403)
    with pytest.raises(NotAllowed):
        version_make_baseline(version_id=version.pk, user=rater)
    version.refresh_from_db()
    assert version.status == Status.REVIEW


def test_approving_publishes_the_version_and_keeps_who_when_and_why(training_set, staff):
    version = version_in(training_set, Status.REVIEW, number=2)
    decided = version_decide(version_id=version.pk, user=staff, approve=True, comment="new market, expected")

    assert decided.status == Status.PUBLISHED
    assert (decided.decided_by, decided.decision_comment) == (staff, "new market, expected")
    assert decided.decided_at is not None
    entry = AuditEntry.objects.get(action="version_approved")
    assert (entry.actor, entry.detail) == ("user:admin", "set fraud v2: new market, expected")
    assert not review_alert_open(version)
    assert Alert.objects.get(subject=review_subject(version)).resolved_at is not None


def test_a_second_decision_on_a_version_is_refused(training_set, staff):
    version = version_in(training_set, Status.REVIEW)
    version_decide(version_id=version.pk, user=staff, approve=True, comment="fine")
    with pytest.raises(NotInReview) as refused:
        version_decide(version_id=version.pk, user=staff, approve=False, comment="no, wait")
    assert (refused.value.code, refused.value.status, refused.value.value) == ("not_in_review", 409, "published")
    version.refresh_from_db()
    assert (version.status, version.decision_comment) == (Status.PUBLISHED, "fine")
    assert AuditEntry.objects.filter(action__startswith="version_").count() == 1


def test_a_version_that_was_never_held_cannot_be_decided(training_set, staff):
    version = version_in(training_set, Status.PUBLISHED)
    with pytest.raises(NotInReview):
        version_decide(version_id=version.pk, user=staff, approve=False, comment="")
    with pytest.raises(VersionNotFound):
        version_decide(version_id=version.pk + 1000, user=staff, approve=False, comment="")


def test_rejecting_keeps_the_files_but_marks_the_version_rejected(training_set, staff):
    version = version_in(training_set, Status.REVIEW)
    decided = version_decide(version=version, user=staff, approve=False, comment="")

    assert decided.status == Status.REJECTED and not decided.readable
    assert data_path(f"{version.folder}/train.parquet").read_bytes() == b"PAR1 stand-in"
    assert decided.profile == version.profile and decided.gate_report == version.gate_report
    entry = AuditEntry.objects.get(action="version_rejected")
    assert entry.detail == "set fraud v1"
    assert not review_alert_open(version)


@pytest.mark.django_db(transaction=True)
def test_of_two_staff_deciding_at_once_one_decides_and_the_other_is_told(training_set, staff, django_user_model):
    other = django_user_model.objects.create_user("admin2", password="pw-12345678", is_staff=True)
    version = version_in(training_set, Status.REVIEW)
    start, outcomes = threading.Barrier(2), {}

    def decide(user, approve):
        try:
            start.wait()
            version_decide(version_id=version.pk, user=user, approve=approve, comment="ok")
            outcomes[user.username] = "decided"
        except NotInReview:
            outcomes[user.username] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(staff, True)),
               threading.Thread(target=decide, args=(other, False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["decided", "refused"]
    version.refresh_from_db()
    winner = next(name for name, outcome in outcomes.items() if outcome == "decided")
    assert version.decided_by.username == winner
    assert version.status == (Status.PUBLISHED if winner == "admin" else Status.REJECTED)
    assert AuditEntry.objects.filter(action__startswith="version_").count() == 1


def test_a_published_version_becomes_the_active_baseline_of_each_of_its_sources(training_set, staff, source):
    earlier = baseline_create_from_profile(source=source, profile=a_profile(seed=9), origin=Baseline.Origin.FILE,
                                           detail="reference.csv")
    version = version_in(training_set, Status.PUBLISHED, number=3)

    baselines = version_make_baseline(version_id=version.pk, user=staff)

    assert sorted(b.source.name for b in baselines) == ["checkout-app", "mobile-app"]
    for baseline in baselines:
        assert baseline.is_active and baseline.origin == Baseline.Origin.TRAINING_SET
        assert (baseline.origin_detail, baseline.created_by) == ("fraud v3", staff)
        assert baseline.profile == version.profile  # the kept profile, no new pass
        assert baseline.schema == infer_schema(Profile.from_json(version.profile)).to_dict()
        assert baseline.row_count == 300
    earlier.refresh_from_db()
    assert not earlier.is_active
    assert Baseline.objects.active().filter(source=source).get() in baselines
    assert AuditEntry.objects.filter(action="baseline_created", detail__contains="fraud v3").count() == 2


def test_only_a_published_version_can_become_a_baseline(training_set, staff):
    for status in (Status.REVIEW, Status.REJECTED):
        version = version_in(training_set, status, number=4 if status == Status.REVIEW else 5)
        with pytest.raises(NotPublished) as refused:
            version_make_baseline(version_id=version.pk, user=staff)
        assert refused.value.status == 409
    empty = version_in(training_set, Status.PUBLISHED, number=6,
                       profile=profile_frame(pd.DataFrame({"amount": []}, dtype=float)))
    with pytest.raises(NoProfile):
        version_make_baseline(version_id=empty.pk, user=staff)
    assert not Baseline.objects.exists()


def test_a_built_version_that_drifted_waits_for_staff_and_approving_publishes_it(source, project, labeled_set,
                                                                              built_version, staff):
    # 200 more records whose amounts moved far from the first version's.
    batch = admitted_batch(source, checkout_rows(200, prefix="m", shift=50.0, start=100))
    settle(project, batch, lambda r: "ok")
    second = build(labeled_set)
    assert second.status == Status.REVIEW and review_alert_open(second)
    assert second.gate_report["comparisons"][0]["shift"] in ("covariate", "dataset")

    approved = version_decide(version_id=second.pk, user=staff, approve=True, comment="prices changed")
    assert approved.status == Status.PUBLISHED and not review_alert_open(second)
    [baseline] = version_make_baseline(version_id=second.pk, user=staff)
    assert baseline.profile == second.profile and baseline.row_count == second.manifest["rows"] == 260
