"""The training-set API: who reads what, creating and changing sets, publishing, decisions, downloads with ETag and
ranges, the diff of two versions and a row's lineage."""
import hashlib
import uuid

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from labeling import services as labeling_services
from tests.factories import admitted_batch, build, checkout_rows, person, settle
from trainingsets.identity import record_identity
from trainingsets.models import Erasure, TrainingSetVersion
from trainingsets.services import version_request

PARQUET = "application/vnd.apache.parquet"


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def people(built_version):
    """The set of `built_version` owned by `owner` and read by the group of `member` and of a rater; an outsider
    and a staff member."""
    readers = Group.objects.create(name=f"readers-{uuid.uuid4().hex[:6]}")
    training_set = built_version.training_set
    owner = person("owner")
    training_set.owner = owner
    training_set.save(update_fields=["owner"])
    training_set.reader_groups.add(readers)
    rater = labeling_services.rater_create(username=f"rater-{uuid.uuid4().hex[:6]}")
    rater.user.groups.add(readers)
    return {"set": training_set, "version": built_version, "owner": owner, "member": person("member", groups=[readers]),
            "rater": rater, "outsider": person("outsider"), "staff": person("staff", staff=True)}


def base(people) -> str:
    return f"/api/v1/training-sets/{people['set'].pk}"


def file_url(people, name: str = "train.parquet", number: int = 1) -> str:
    return f"{base(people)}/versions/{number}/files/{name}"


# --- who reads what

def test_a_reader_group_member_lists_the_set_with_its_policy_rule_sources_and_latest_version(people, source, project):
    answer = signed_in(people["member"]).get("/api/v1/training-sets")
    assert answer.status_code == 200
    [shown] = answer.json()
    assert shown["name"] == people["set"].name and shown["owner"] == people["owner"].username
    assert shown["sources"] == [{"id": source.pk, "name": source.name}]
    assert shown["projects"] == [{"id": project.pk, "name": project.name}]
    assert shown["policy"]["min_confidence"] == 0.7 and shown["split_rule"]["kind"] == "random"
    assert shown["latest_published"]["number"] == 1
    assert shown["latest_published"]["content_sha256"] == people["version"].content_sha256


@pytest.mark.parametrize("path", ["", "/versions", "/versions/1", "/versions/1/files/train.parquet",
                                  "/versions/1/diff?against=1", "/versions/1/lineage?external_id=r5"])
def test_an_outsider_is_told_the_set_does_not_exist(people, path):
    outsider = signed_in(people["outsider"])
    assert outsider.get("/api/v1/training-sets").json() == []
    answer = outsider.get(base(people) + path)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    missing = outsider.get(f"/api/v1/training-sets/{people['set'].pk + 1000}{path}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_a_rater_s_token_reads_a_set_of_their_group_and_downloads_its_files(people):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {labeling_services.user_token(user=people['rater'].user)}")
    assert [s["id"] for s in client.get("/api/v1/training-sets").json()] == [people["set"].pk]
    answer = client.get(file_url(people))
    assert answer.status_code == 200 and answer["ETag"] and b"".join(answer.streaming_content)
    assert "Sieve-Erased-Rows" not in answer


def test_a_source_s_api_key_and_anonymous_requests_are_401(people, api):
    for client, error in ((api, "source_key_not_accepted"), (APIClient(), "not_authenticated")):
        for path in ("/api/v1/training-sets", base(people), file_url(people)):
            answer = client.get(path)
            assert answer.status_code == 401 and answer.json()["error"] == error


# --- creating and changing sets

def test_staff_create_a_set_and_others_may_not(people, source, project):
    body = {"name": "fraud-2026", "sources": [source.name], "projects": [project.pk],
            "split_fractions": [["train", 0.9], ["test", 0.1]], "formats": ["parquet", "csv"]}
    refused = signed_in(people["member"]).post("/api/v1/training-sets", body, format="json")
    assert refused.status_code == 403 and refused.json()["error"] == "not_allowed"
    made = signed_in(people["staff"]).post("/api/v1/training-sets", body, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["owner"] == people["staff"].username
    assert made.json()["split_rule"] == {"kind": "random", "fractions": [["train", 0.9], ["test", 0.1]]}
    assert made.json()["formats"] == ["parquet", "csv"]


def test_a_bad_split_rule_is_400_naming_the_field(people, source):
    answer = signed_in(people["staff"]).post("/api/v1/training-sets", {
        "name": "bad", "sources": [source.name], "split_fractions": [["train", 0.5], ["test", 0.2]]}, format="json")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_split_rule" and answer.json()["field"] == "split_fractions"


def test_the_owner_changes_the_policy_but_not_the_split_rule_once_published(people):
    owner = signed_in(people["owner"])
    changed = owner.patch(base(people), {"min_confidence": 0.9, "description": "fraud"}, format="json")
    assert changed.status_code == 200 and changed.json()["policy"]["min_confidence"] == 0.9
    locked = owner.patch(base(people), {"split_fractions": [["train", 0.5], ["validation", 0.25], ["test", 0.25]]},
                         format="json")
    assert locked.status_code == 409 and locked.json()["error"] == "split_rule_locked"
    refused = signed_in(people["member"]).patch(base(people), {"description": "mine"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"] == "not_allowed"


# --- publishing

def test_publishing_is_accepted_once_per_idempotency_key_and_refused_while_building(people):
    owner = signed_in(people["owner"])
    first = owner.post(f"{base(people)}/versions", {"comment": "weekly"}, format="json",
                       HTTP_IDEMPOTENCY_KEY="weekly-1")
    assert first.status_code == 202, first.json()
    assert first.json()["number"] == 2 and first.json()["status"] == "queued"
    assert first["Location"].endswith(f"{base(people)}/versions/2")
    again = owner.post(f"{base(people)}/versions", {"comment": "weekly"}, format="json",
                       HTTP_IDEMPOTENCY_KEY="weekly-1")
    assert again.status_code == 200 and again.json()["number"] == 2
    other = owner.post(f"{base(people)}/versions", {}, format="json", HTTP_IDEMPOTENCY_KEY="weekly-2")
    assert other.status_code == 409
    assert other.json()["error"] == "version_building" and other.json()["version"] == 2
    assert TrainingSetVersion.objects.filter(training_set=people["set"]).count() == 2


def test_a_reader_may_not_publish(people):
    answer = signed_in(people["member"]).post(f"{base(people)}/versions", {}, format="json")
    assert answer.status_code == 403 and answer.json()["error"] == "not_allowed"


def test_versions_are_listed_with_their_progress_and_hash(people):
    version_request(training_set=people["set"])
    rows = signed_in(people["member"]).get(f"{base(people)}/versions").json()
    assert [(v["number"], v["status"]) for v in rows] == [(2, "queued"), (1, "published")]
    assert rows[1]["progress"] == {"written": 60, "total": 60} and rows[1]["rows"] == 60
    assert rows[1]["content_sha256"] == people["version"].content_sha256


def test_a_version_shows_its_manifest_and_links_to_its_files(people):
    shown = signed_in(people["member"]).get(f"{base(people)}/versions/1").json()
    assert shown["manifest"]["content_sha256"] == people["version"].content_sha256
    assert shown["erased"] is None and shown["decision"] is None
    links = {f["name"]: f for f in shown["files"]}
    assert set(links) == {f"{s}.{f}" for s in ("train", "validation", "test") for f in ("parquet", "csv", "jsonl")}
    assert links["train.csv"]["url"].endswith(file_url(people, "train.csv"))
    assert links["train.csv"]["sha256"] == people["version"].manifest["files"]["train.csv"]["sha256"]


# --- staff decisions

def test_staff_approve_a_held_version_with_a_comment(people):
    TrainingSetVersion.objects.filter(pk=people["version"].pk).update(status="review")
    url = f"{base(people)}/versions/1/decision"
    refused = signed_in(people["owner"]).post(url, {"decision": "approve", "comment": "ok"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"] == "not_allowed"
    staff = signed_in(people["staff"])
    bare = staff.post(url, {"decision": "approve"}, format="json")
    assert bare.status_code == 400 and bare.json()["error"] == "comment_required"
    approved = staff.post(url, {"decision": "approve", "comment": "drift explained by the sale"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "published"
    assert approved.json()["decision"]["comment"] == "drift explained by the sale"
    twice = staff.post(url, {"decision": "reject"}, format="json")
    assert twice.status_code == 409 and twice.json()["error"] == "not_in_review"


def test_staff_make_a_published_version_the_sources_baseline(people, source):
    refused = signed_in(people["owner"]).post(f"{base(people)}/versions/1/baseline")
    assert refused.status_code == 403
    made = signed_in(people["staff"]).post(f"{base(people)}/versions/1/baseline")
    assert made.status_code == 200, made.json()
    assert [b["source"] for b in made.json()["baselines"]] == [source.name]


def test_only_a_version_marked_by_an_erasure_is_rebuilt(people):
    refused = signed_in(people["owner"]).post(f"{base(people)}/versions/1/rebuild")
    assert refused.status_code == 403 and refused.json()["error"] == "not_allowed"
    unmarked = signed_in(people["staff"]).post(f"{base(people)}/versions/1/rebuild")
    assert unmarked.status_code == 409 and unmarked.json()["error"] == "not_rebuildable"


# --- downloads

def test_a_download_is_the_built_file_with_its_etag_type_and_name(people):
    client = signed_in(people["member"])
    version = people["version"]
    for name, content_type in (("train.parquet", PARQUET), ("test.csv", "text/csv"),
                               ("validation.jsonl", "application/x-ndjson")):
        answer = client.get(file_url(people, name))
        content = b"".join(answer.streaming_content)
        sha = version.manifest["files"][name]["sha256"]
        assert answer.status_code == 200 and answer["Content-Type"] == content_type
        assert hashlib.sha256(content).hexdigest() == sha and answer["ETag"] == f'"{sha}"'
        assert answer["Content-Length"] == str(len(content)) and answer["Accept-Ranges"] == "bytes"
        assert answer["Content-Disposition"] == f'attachment; filename="{people["set"].name}-v1-{name}"'


def test_two_downloads_are_byte_identical(people):
    client = signed_in(people["member"])
    first = b"".join(client.get(file_url(people)).streaming_content)
    second = b"".join(client.get(file_url(people)).streaming_content)
    assert first == second and len(first) > 0


def test_a_client_that_accepts_only_parquet_still_gets_the_file_and_json_errors(people):
    client = signed_in(people["member"])
    answer = client.get(file_url(people), HTTP_ACCEPT=PARQUET)
    assert answer.status_code == 200 and b"".join(answer.streaming_content)
    missing = client.get(file_url(people, "holdout.parquet"), HTTP_ACCEPT=PARQUET)
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_split"


def test_ranges_are_answered_206_with_only_their_bytes(people):
    client = signed_in(people["member"])
    data = b"".join(client.get(file_url(people)).streaming_content)
    size = len(data)
    for header, start, end in (("bytes=0-99", 0, 99), (f"bytes={size - 10}-", size - 10, size - 1),
                               ("bytes=-25", size - 25, size - 1), (f"bytes=5-{size * 2}", 5, size - 1)):
        answer = client.get(file_url(people), HTTP_RANGE=header)
        assert answer.status_code == 206, header
        assert answer["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert b"".join(answer.streaming_content) == data[start:end + 1]


def test_a_range_past_the_end_is_416_with_the_size(people):
    client = signed_in(people["member"])
    size = people["version"].manifest["files"]["train.parquet"]["bytes"]
    answer = client.get(file_url(people), HTTP_RANGE=f"bytes={size}-")
    assert answer.status_code == 416 and answer["Content-Range"] == f"bytes */{size}"
    assert answer.json()["error"] == "range_not_satisfiable"


def test_if_none_match_with_the_etag_is_304_and_if_range_with_another_is_the_whole_file(people):
    client = signed_in(people["member"])
    etag = f'"{people["version"].manifest["files"]["train.parquet"]["sha256"]}"'
    same = client.get(file_url(people), HTTP_IF_NONE_MATCH=etag)
    assert same.status_code == 304 and same["ETag"] == etag
    changed = client.get(file_url(people), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"an-older-file"')
    assert changed.status_code == 200
    assert len(b"".join(changed.streaming_content)) == people["version"].manifest["files"]["train.parquet"]["bytes"]
    resumed = client.get(file_url(people), HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    assert resumed.status_code == 206 and len(b"".join(resumed.streaming_content)) == 10


def test_files_of_a_version_being_built_are_409_and_of_an_unbuilt_format_404(people):
    version_request(training_set=people["set"])
    client = signed_in(people["member"])
    building = client.get(file_url(people, number=2))
    assert building.status_code == 409 and building.json()["error"] == "version_not_ready"
    manifest = people["version"].manifest
    manifest["files"].pop("train.jsonl")
    TrainingSetVersion.objects.filter(pk=people["version"].pk).update(manifest=manifest)
    unbuilt = client.get(file_url(people, "train.jsonl"))
    assert unbuilt.status_code == 404 and unbuilt.json()["error"] == "format_not_built"
    no_version = client.get(file_url(people, number=9))
    assert no_version.status_code == 404 and no_version.json()["error"] == "not_found"


def test_a_version_marked_by_an_erasure_serves_its_files_and_says_how_many_rows_went(people, source):
    erasure = Erasure.objects.create(kind=Erasure.Kind.RECORD, source=source, identity=record_identity(source.pk, "r3"))
    erasure.versions.add(people["version"])
    client = signed_in(people["member"])
    answer = client.get(file_url(people))
    assert answer.status_code == 200 and answer["Sieve-Erased-Rows"] == "1" and answer["Sieve-Erasures"] == "1"
    assert b"".join(answer.streaming_content)
    shown = client.get(f"{base(people)}/versions/1").json()
    assert shown["erased"]["rows"] == 1 and shown["erased"]["erasures"][0]["id"] == erasure.pk


# --- diff and lineage

def test_the_diff_of_two_versions_defaults_to_the_previous_one(people, source, project):
    client = signed_in(people["member"])
    first = client.get(f"{base(people)}/versions/1/diff")
    assert first.status_code == 404 and first.json()["error"] == "no_previous_version"
    settle(project, admitted_batch(source, checkout_rows(4, start=200)), lambda r: "ok")
    assert build(people["set"]).number == 2
    diff = client.get(f"{base(people)}/versions/2/diff")
    assert diff.status_code == 200
    assert (diff.json()["added"], diff.json()["removed"], diff.json()["relabeled"]) == (4, 0, 0)
    assert diff.json()["old"]["number"] == 1
    backwards = client.get(f"{base(people)}/versions/1/diff?against=2").json()
    assert (backwards["added"], backwards["removed"]) == (0, 4)
    bad = client.get(f"{base(people)}/versions/2/diff?against=two")
    assert bad.status_code == 400 and bad.json()["field"] == "against"


def test_lineage_of_a_row_and_of_an_id_not_in_the_version(people, source):
    client = signed_in(people["member"])
    found = client.get(f"{base(people)}/versions/1/lineage?external_id=r5&source={source.name}")
    assert found.status_code == 200
    [row] = found.json()["rows"]
    assert row["external_id"] == "r5" and row["record"]["revision"] == 1 and row["batch"]["status"] == "admitted"
    missing = client.get(f"{base(people)}/versions/1/lineage?external_id=nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    bare = client.get(f"{base(people)}/versions/1/lineage")
    assert bare.status_code == 400 and bare.json()["field"] == "external_id"
