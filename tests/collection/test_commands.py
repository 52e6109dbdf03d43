"""The command-line side: source_create prints a working key, ingest runs the same service as the API."""
import gzip
import io

import orjson
import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from collection.models import Batch, Record, Source


def test_source_create_prints_a_key_that_works(db):
    out, err = io.StringIO(), io.StringIO()
    call_command("source_create", "fraud-model", "--kind", "model_output", "--from-model",
                 "--expected-interval-minutes", "30", stdout=out, stderr=err)
    source = Source.objects.get(name="fraud-model")
    assert source.from_model and source.expected_interval.total_seconds() == 1800
    key = out.getvalue().strip()
    assert key.startswith("sieve_") and "shown once" in err.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/batches").status_code == 200


def test_source_create_refuses_a_taken_name(db):
    call_command("source_create", "app-one", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="name"):
        call_command("source_create", "app-one", stdout=io.StringIO(), stderr=io.StringIO())


def test_ingest_command_ingests_a_file_and_reports_the_status(source, tmp_path):
    path = tmp_path / "orders.ndjson.gz"
    path.write_bytes(gzip.compress(b"".join(
        orjson.dumps({"external_id": f"o{i}", "features": {"v": i}}) + b"\n" for i in range(40))))
    out = io.StringIO()
    call_command("ingest", str(path), "--source", source.name, stdout=out, stderr=io.StringIO())
    batch = Batch.objects.get()
    assert batch.status == "ingested" and batch.gzipped
    assert f"batch {batch.pk}: ingested, 40 records" in out.getvalue()
    assert Record.objects.count() == 40


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
