"""Serving a version's files: which file a request names, byte ranges, conditional requests, and a real server."""
import hashlib
import uuid

import pytest
import requests
from django.contrib.auth.models import User
from django.core.signals import request_finished
from django.db import close_old_connections
from django.test import RequestFactory

from tests.conftest import start_web
from trainingsets import files
from trainingsets.files import UNSATISFIABLE, byte_range, file_response, version_file
from trainingsets.models import TrainingSetVersion
from trainingsets.services import FileMissing, FormatNotBuilt, UnknownSplit, VersionNotReady, version_request


@pytest.mark.parametrize("header, size, expected", [
    ("bytes=0-9", 100, (0, 9)),
    ("bytes=90-", 100, (90, 99)),
    ("bytes=90-500", 100, (90, 99)),
    ("bytes=-10", 100, (90, 99)),
    ("bytes=-500", 100, (0, 99)),
    ("bytes=99-99", 100, (99, 99)),
    ("BYTES = 5-6", 100, (5, 6)),
    ("bytes=100-", 100, UNSATISFIABLE),
    ("bytes=100-200", 100, UNSATISFIABLE),
    ("bytes=-0", 100, UNSATISFIABLE),
    ("bytes=0-", 0, UNSATISFIABLE),
    ("bytes=9-5", 100, None),
    ("bytes=0-1,5-6", 100, None),
    ("items=0-9", 100, None),
    ("bytes=a-b", 100, None),
    ("bytes=-", 100, None),
    ("bytes=5", 100, None),
])
def test_a_range_header_is_read_as_rfc_9110_says(header, size, expected):
    assert byte_range(header, size) == expected


def test_a_split_s_file_is_found_through_the_manifest(built_version):
    wanted = version_file(built_version, "train", "parquet")
    entry = built_version.manifest["files"]["train.parquet"]
    assert wanted.sha256 == entry["sha256"] == hashlib.sha256(wanted.path.read_bytes()).hexdigest()
    assert wanted.size == entry["bytes"]
    assert wanted.download_name == f"{built_version.training_set.name}-v1-train.parquet"
    assert wanted.etag == f'"{entry["sha256"]}"'
    assert wanted.content_type == "application/vnd.apache.parquet"


def test_files_of_an_unknown_split_or_an_unbuilt_format_are_refused(built_version):
    with pytest.raises(UnknownSplit):
        version_file(built_version, "holdout", "parquet")
    with pytest.raises(FormatNotBuilt):
        version_file(built_version, "train", "xlsx")
    built_version.manifest["files"].pop("train.jsonl")
    with pytest.raises(FormatNotBuilt):
        version_file(built_version, "train", "jsonl")


@pytest.mark.parametrize("status", ["queued", "building", "failed", "rejected"])
def test_a_version_that_is_not_readable_serves_no_file(built_version, status):
    built_version.status = status
    with pytest.raises(VersionNotReady):
        version_file(built_version, "train", "parquet")


def test_a_file_gone_from_disk_is_named_as_missing(built_version):
    version_file(built_version, "test", "csv").path.unlink()
    with pytest.raises(FileMissing):
        version_file(built_version, "test", "csv")


def body(response) -> bytes:
    """The response's bytes, then closed as Django's test client does: without closing the test's connection."""
    request_finished.disconnect(close_old_connections)
    try:
        return b"".join(response.streaming_content)
    finally:
        response.close()
        request_finished.connect(close_old_connections)


def test_a_range_response_holds_exactly_the_slice(built_version):
    wanted = version_file(built_version, "train", "csv")
    data = wanted.path.read_bytes()
    response = file_response(RequestFactory().get("/", HTTP_RANGE="bytes=10-49"), wanted)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-49/{len(data)}" and response["Content-Length"] == "40"
    assert body(response) == data[10:50]


def test_a_slice_larger_than_a_chunk_is_read_whole(built_version, monkeypatch):
    monkeypatch.setattr(files, "CHUNK", 7)
    wanted = version_file(built_version, "train", "jsonl")
    data = wanted.path.read_bytes()
    response = file_response(RequestFactory().get("/", HTTP_RANGE="bytes=3-"), wanted)
    assert body(response) == data[3:]


def test_if_none_match_takes_the_weak_comparison_and_a_star(built_version):
    wanted = version_file(built_version, "train", "parquet")
    for header in (wanted.etag, f"W/{wanted.etag}", f'"other", {wanted.etag}', "*"):
        response = file_response(RequestFactory().get("/", HTTP_IF_NONE_MATCH=header), wanted)
        assert response.status_code == 304 and response["ETag"] == wanted.etag
    response = file_response(RequestFactory().get("/", HTTP_IF_NONE_MATCH='"other"'), wanted)
    assert response.status_code == 200 and body(response) == wanted.path.read_bytes()


def test_if_range_with_a_date_or_a_weak_tag_sends_the_whole_file(built_version):
    wanted = version_file(built_version, "train", "parquet")
    for if_range in ("Wed, 21 Oct 2015 07:28:00 GMT", f"W/{wanted.etag}"):
        response = file_response(RequestFactory().get("/", HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=if_range), wanted)
        assert response.status_code == 200
        assert body(response) == wanted.path.read_bytes()


def test_a_download_over_gunicorn_is_the_built_file_whole_and_in_ranges(transactional_db, built_version, tmp_path,
                                                                       data_dir, celery_queue):
    password = uuid.uuid4().hex
    User.objects.create_user(username="downloader", password=password, is_staff=True)
    web, url = start_web(tmp_path, data_dir=data_dir, queue=celery_queue)
    try:
        wanted = version_file(built_version, "train", "parquet")
        data = wanted.path.read_bytes()
        link = f"{url}/api/v1/training-sets/{built_version.training_set_id}/versions/1/files/train.parquet"
        auth = ("downloader", password)
        whole = requests.get(link, auth=auth, timeout=30)
        assert whole.status_code == 200, whole.text
        assert whole.content == data and hashlib.sha256(whole.content).hexdigest() == wanted.sha256
        assert whole.headers["ETag"] == wanted.etag and whole.headers["Accept-Ranges"] == "bytes"
        assert whole.headers["Content-Length"] == str(len(data))
        assert whole.headers["Content-Disposition"] == f'attachment; filename="{wanted.download_name}"'
        tail = requests.get(link, auth=auth, headers={"Range": "bytes=-100"}, timeout=30)
        assert tail.status_code == 206 and tail.content == data[-100:]
        same = requests.get(link, auth=auth, headers={"If-None-Match": whole.headers["ETag"]}, timeout=30)
        assert same.status_code == 304 and same.content == b""
    finally:
        web.stop()
    assert TrainingSetVersion.objects.get(pk=built_version.pk).status == "published"


def test_a_queued_version_has_no_file_to_serve(built_version):
    queued = version_request(training_set=built_version.training_set)
    with pytest.raises(VersionNotReady):
        version_file(queued, "train", "parquet")
