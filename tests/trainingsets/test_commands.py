"""`manage.py trainingset_publish` and `trainingset_export`, end to end in this process."""
import hashlib
import sys

import pytest
from django.core.management import CommandError, call_command

from trainingsets.files import version_file
from trainingsets.models import TrainingSetVersion
from trainingsets.services import version_request, versions


def test_publish_builds_a_version_and_prints_its_number_status_rows_and_hash(labeled_set, capsys):
    call_command("trainingset_publish", labeled_set.name, "--comment", "first cut", "--no-progress")
    version = TrainingSetVersion.objects.get(training_set=labeled_set)
    assert version.status == "published" and version.comment == "first cut" and version.rows_total == 60
    out = capsys.readouterr().out
    assert f"{labeled_set.name} v1: published, 60 rows, content sha256 {version.content_sha256}" in out
    assert len(version.content_sha256) == 64


def test_publish_shows_a_progress_bar_of_rows(labeled_set, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # tqdm draws only on a terminal
    call_command("trainingset_publish", labeled_set.name)
    err = capsys.readouterr().err
    assert f"{labeled_set.name} v1" in err and "100%" in err and "60.0/60.0" in err


def test_publish_fails_with_the_error_when_another_version_is_building(labeled_set):
    version_request(training_set=labeled_set)
    with pytest.raises(CommandError, match="version_building"):
        call_command("trainingset_publish", labeled_set.name, "--no-progress")


def test_publish_of_an_unknown_set_fails(db):
    with pytest.raises(CommandError, match="no training set named 'nope'"):
        call_command("trainingset_publish", "nope", "--no-progress")


def test_publish_exits_non_zero_with_the_error_when_the_build_fails(labeled_set, monkeypatch):
    def no_space(**kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(versions, "build_files", no_space)
    with pytest.raises(CommandError, match=f"{labeled_set.name} v1 failed: OSError: .*No space left on device"):
        call_command("trainingset_publish", labeled_set.name, "--no-progress")
    assert TrainingSetVersion.objects.get(training_set=labeled_set).status == "failed"


def test_export_copies_the_file_to_the_default_name_and_checks_it(built_version, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    name = built_version.training_set.name
    call_command("trainingset_export", name, "1", "--no-progress")
    copied = tmp_path / f"{name}-v1-train.parquet"
    sha = built_version.manifest["files"]["train.parquet"]["sha256"]
    assert hashlib.sha256(copied.read_bytes()).hexdigest() == sha
    assert f"sha256 {sha} (matches the manifest)" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == [copied.name]


def test_export_writes_another_split_and_format_where_asked(built_version, tmp_path):
    target = tmp_path / "out.csv"
    call_command("trainingset_export", built_version.training_set.name, "1", "--split", "test", "--format", "csv",
                 "--out", str(target), "--no-progress")
    assert hashlib.sha256(target.read_bytes()).hexdigest() == built_version.manifest["files"]["test.csv"]["sha256"]
    call_command("trainingset_export", built_version.training_set.name, "1", "--out", str(tmp_path), "--no-progress")
    assert (tmp_path / f"{built_version.training_set.name}-v1-train.parquet").is_file()


def test_export_refuses_a_file_that_differs_from_the_manifest_and_leaves_nothing(built_version, tmp_path):
    on_disk = version_file(built_version, "train", "jsonl").path
    on_disk.write_bytes(on_disk.read_bytes() + b"{}\n")
    target = tmp_path / "train.jsonl"
    with pytest.raises(CommandError, match="differs from the manifest"):
        call_command("trainingset_export", built_version.training_set.name, "1", "--format", "jsonl", "--out",
                     str(target), "--no-progress")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_export_refuses_a_version_that_is_not_readable_or_a_format_not_built(built_version, tmp_path):
    name = built_version.training_set.name
    version_request(training_set=built_version.training_set)
    with pytest.raises(CommandError, match="version_not_ready"):
        call_command("trainingset_export", name, "2", "--out", str(tmp_path), "--no-progress")
    manifest = built_version.manifest
    manifest["files"].pop("train.csv")
    TrainingSetVersion.objects.filter(pk=built_version.pk).update(manifest=manifest)
    with pytest.raises(CommandError, match="format_not_built"):
        call_command("trainingset_export", name, "1", "--format", "csv", "--out", str(tmp_path), "--no-progress")
    with pytest.raises(CommandError, match="has no version 7"):
        call_command("trainingset_export", name, "7", "--no-progress")
    assert list(tmp_path.iterdir()) == []
