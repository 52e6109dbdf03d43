"""The command-line side: ingest runs the same service as the API (source_create: tests/config/test_commands.py)."""
import gzip
import io

import orjson
import pytest
from django.core.management import CommandError, call_command

from collection.models import Batch, Record


@pytest.mark.worker
def test_ingest_command_follows_the_batch_to_its_verdict(source, tmp_path, worker):
    path = tmp_path / "orders.ndjson.gz"
    path.write_bytes(gzip.compress(b"".join(
        orjson.dumps({"external_id": f"o{i}", "features": {"v": i}}) + b"\n" for i in range(40))))
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest", str(path), "--source", source.name, "--timeout", "120", stdout=out, stderr=err)
    batch = Batch.objects.get()
    # Without a baseline the verdict is "no baseline", which quarantines; the command says so, not "ingested".
    assert batch.status == "quarantined" and batch.gzipped and Record.objects.count() == 40
    assert out.getvalue().startswith(f"batch {batch.pk}: quarantined (no baseline), 40 records, ")
    # Not a terminal: a plain line per step it saw on the way (the first is received), no bar.
    progress = err.getvalue().splitlines()
    assert progress[0].startswith(f"batch {batch.pk}: received (") and progress[-1].startswith(
        f"batch {batch.pk}: quarantined (") and "\r" not in err.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_ingest_command_draws_a_progress_bar_on_a_terminal(source, tmp_path):
    path = tmp_path / "orders.ndjson"
    path.write_bytes(orjson.dumps({"external_id": "o1", "features": {"v": 1}}) + b"\n")
    err = Terminal()
    with pytest.raises(CommandError, match="still received"):
        call_command("ingest", str(path), "--source", source.name, "--timeout", "0.3", stdout=io.StringIO(),
                     stderr=err)
    assert "\r" in err.getvalue() and "0/4 steps" in err.getvalue() and "checking" in err.getvalue()


def test_ingest_command_gives_up_waiting_after_its_timeout_and_says_so(source, tmp_path):
    path = tmp_path / "orders.ndjson"
    path.write_bytes(orjson.dumps({"external_id": "o1", "features": {"v": 1}}) + b"\n")
    out = io.StringIO()
    # No worker here: the batch stays received.
    with pytest.raises(CommandError, match=r"still received after \d+ s; the workers carry on"):
        call_command("ingest", str(path), "--source", source.name, "--timeout", "0.5", stdout=out,
                     stderr=io.StringIO())
    assert Batch.objects.get().status == "received"


def test_ingest_command_without_waiting_only_receives(source, tmp_path):
    path = tmp_path / "orders.ndjson"
    path.write_bytes(orjson.dumps({"external_id": "o1", "features": {"v": 1}}) + b"\n")
    out = io.StringIO()
    call_command("ingest", str(path), "--source", source.name, "--no-wait", stdout=out, stderr=io.StringIO())
    batch = Batch.objects.get()
    assert out.getvalue().startswith(f"batch {batch.pk}: received, 1 records")


def test_ingest_command_names_the_bad_line(source, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("external_id,x\na,1\nb,1,2\n")
    with pytest.raises(CommandError, match="line 3"):
        call_command("ingest", str(path), "--source", source.name, stdout=io.StringIO(), stderr=io.StringIO())
    assert Batch.objects.count() == 0


def test_ingest_command_refuses_an_unknown_source(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("external_id,x\na,1\n")
    with pytest.raises(CommandError, match="no source named 'nope'"):
        call_command("ingest", str(path), "--source", "nope", stdout=io.StringIO(), stderr=io.StringIO())
