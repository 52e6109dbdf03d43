"""`make run`'s embedded default: SQLite and kombu's filesystem broker, no server at all, end to end."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Process, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

# A custom labeling client on the demo's SQLite database: token, projects, next (with its record),
# the same lease again, a label, the assignment read back. Prints one line of what it saw.
API_CLIENT = """
from django.test import Client
c = Client(HTTP_HOST="127.0.0.1")
token = c.post("/api/v1/token", {"username": "rater-enduser", "password": "sieve-demo"},
               content_type="application/json").json()["token"]
auth = {"HTTP_AUTHORIZATION": "Token " + token}
project = c.get("/api/v1/projects", **auth).json()[0]
lease = c.get(f"/api/v1/projects/{project['id']}/next", **auth)
again = c.get(f"/api/v1/projects/{project['id']}/next", **auth)
body = lease.json()
label = c.post(f"/api/v1/assignments/{body['id']}/annotation", {"value": project["choices"][0]["value"]},
               content_type="application/json", **auth)
read = c.get(f"/api/v1/assignments/{body['id']}", **auth)
print("api", lease.status_code, again.json()["id"] == body["id"], sorted(body["record"]["features"]) != [],
      isinstance(body["record"]["observed_at"], (str, type(None))), label.status_code, read.json()["state"])
"""

# Label quality on the same database, as staff and as the expert who adjudicates: the quality pages (with the
# history imported by the demo and its Dawid-Skene run), the adjudication queue and page, the labels export,
# and a consensus run requested through the API (for the worker). Prints one line of what it saw.
QUALITY_CLIENT = """
from django.test import Client
from labeling.models import LabelingProject, Rater
project = LabelingProject.objects.get(name="demo: is this order fraud?")
staff, expert = Client(HTTP_HOST="127.0.0.1"), Client(HTTP_HOST="127.0.0.1")
assert staff.login(username="admin", password="sieve-demo")
assert expert.login(username="rater-expert", password="sieve-demo")
base = f"/label/admin/projects/{project.pk}/quality/"
quality = staff.get(base).content.decode()
cy = staff.get(f"{base}raters/{Rater.objects.get(user__username='history-cy').pk}/").content.decode()
queue = staff.get(f"/api/v1/projects/{project.pk}/adjudication")
page = expert.get(f"/label/projects/{project.pk}/adjudicate/")
csv = staff.get(f"/api/v1/projects/{project.pk}/labels.csv")
rows = b"".join(csv.streaming_content).decode().splitlines()
run = staff.post(f"/api/v1/projects/{project.pk}/consensus-runs", {}, content_type="application/json")
print("quality", "Krippendorff" in quality and "α" in quality, "Dawid-Skene figures from run" in quality,
      "history-ann" in quality, "Dawid-Skene accuracy" in cy, queue.status_code, queue.json()["waiting"],
      sorted({len(i["labels"]) for i in queue.json()["results"]}), page.status_code,
      "history-bo" in page.content.decode(),
      csv.status_code, sum(",imported," in r for r in rows), run.status_code, run.json()["status"], run.json()["id"])
"""

# The demo's training set as staff see it: its first version's page and its train.parquet, checked against the
# manifest's hash. Prints one line of what it saw.
TRAININGSET_CLIENT = """
import hashlib
from django.test import Client
from trainingsets.models import TrainingSetVersion
version = TrainingSetVersion.objects.get(training_set__name="demo-orders", number=1)
staff = Client(HTTP_HOST="127.0.0.1")
assert staff.login(username="admin", password="sieve-demo")
base = f"/training-sets/{version.training_set_id}/versions/1/"
page = staff.get(base)
train = staff.get(f"/api/v1/training-sets/{version.training_set_id}/versions/1/files/train.parquet")
body = b"".join(train.streaming_content) if train.streaming else train.content
print("trainingset", version.status, page.status_code, train.status_code,
      hashlib.sha256(body).hexdigest() == version.manifest["files"]["train.parquet"]["sha256"])
"""


def test_the_demo_runs_on_sqlite_and_the_filesystem_broker(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SIEVE_DATA_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="config.settings")
    manage = [sys.executable, "manage.py"]
    subprocess.run(manage + ["migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    demo = subprocess.run(manage + ["demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert "login admin / sieve-demo" in demo.stdout and "API key sieve_" in demo.stdout
    assert "/quality/   (label quality" in demo.stdout and "/adjudicate/   (login rater-expert" in demo.stdout
    again = subprocess.run(manage + ["demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert "already there" in again.stdout
    sets = subprocess.run(manage + ["shell", "-c", TRAININGSET_CLIENT], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    assert sets.stdout.strip().splitlines()[-1:] == ["trainingset published 200 200 True"], sets.stderr[-3000:]
    worker = Process([str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "-c", "1", "-l", "info"],
                     env=env, log=tmp_path / "worker.log", ready=" ready.")
    try:
        def status() -> str:
            probe = subprocess.run(
                manage + ["shell", "-c", "from collection.models import Batch; "
                          "print(*[f'{b.status}:{b.ingested_count}' for b in Batch.objects.order_by('pk')])"],
                cwd=ROOT, env=env, capture_output=True, text=True)
            return probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else ""

        wait_for(lambda: status() == "admitted:300 quarantined:300", timeout=120, interval=1,
                 what="the clean demo batch admitted and the drifted one quarantined")
        client = subprocess.run(manage + ["shell", "-c", API_CLIENT], cwd=ROOT, env=env, capture_output=True, text=True)
        assert client.stdout.strip().splitlines()[-1:] == ["api 200 True True True 201 submitted"], client.stderr[-3000:]

        quality = subprocess.run(manage + ["shell", "-c", QUALITY_CLIENT], cwd=ROOT, env=env, capture_output=True,
                                 text=True)
        seen = quality.stdout.strip().splitlines()[-1:]
        expected = "quality True True True True 200 4 [5] 200 True 200 380 202 queued"
        assert seen and seen[0].rsplit(" ", 1)[0] == expected, quality.stderr[-3000:]
        run_id = seen[0].rsplit(" ", 1)[1]

        def run_status() -> str:
            probe = subprocess.run(manage + ["shell", "-c", "from labeling.models import ConsensusRun; "
                                             f"print(ConsensusRun.objects.get(pk={run_id}).status)"],
                                   cwd=ROOT, env=env, capture_output=True, text=True)
            return probe.stdout.strip().splitlines()[-1] if probe.stdout.strip() else ""

        wait_for(lambda: run_status() == "done", timeout=120, interval=1,
                 what="the consensus run requested through the API done by the worker")
    finally:
        worker.stop()
    assert (tmp_path / "var" / "sieve.sqlite3").exists()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> dict:
    """The environment of a migrated embedded default (SQLite, the filesystem broker) in a folder of its own."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SIEVE_DATA_DIR=str(tmp_path_factory.mktemp("embedded") / "var"),
               DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def manage(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=check)


def last_line(done: subprocess.CompletedProcess) -> str:
    """What a `shell -c` printed last (Django's shell may first say what it imported)."""
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


SQLITE_PROBE = """
from django.db import connection
with connection.cursor() as cursor:
    modes = [cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in ("journal_mode", "busy_timeout")]
print(*modes, connection.settings_dict["OPTIONS"].get("transaction_mode"))
"""


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout_and_takes_the_write_lock_up_front(embedded):
    # WAL lets the pages read while the worker writes; a writer waits up to the busy timeout; and a transaction
    # that reads then writes takes the write lock at BEGIN, since SQLite cannot wait for a lock it must upgrade.
    assert last_line(manage(embedded, "shell", "-c", SQLITE_PROBE)).split() == ["wal", "30000", "IMMEDIATE"]


def test_a_command_on_the_embedded_broker_prints_no_hostname_warning(embedded, tmp_path):
    manage(embedded, "source_create", "hostname-check")
    path = tmp_path / "one.ndjson"
    path.write_text('{"external_id": "a", "features": {"x": 1}}\n')
    sent = manage(embedded, "ingest", str(path), "--source", "hostname-check", "--no-wait")
    assert sent.stdout.startswith("batch ") and "received" in sent.stdout
    assert "hostname" not in (sent.stdout + sent.stderr).lower()


def test_batches_sent_together_on_the_embedded_default_all_reach_their_end_state(embedded, tmp_path):
    manage(embedded, "source_create", "together")
    worker = Process([str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "-c", "2", "-l", "info"],
                     env=embedded, log=tmp_path / "worker.log", ready=" ready.")
    try:
        senders = []
        for i in range(4):
            path = tmp_path / f"part-{i}.ndjson"
            path.write_text("".join(f'{{"external_id": "{i}-{n}", "features": {{"x": {n}}}}}\n' for n in range(200)))
            senders.append(subprocess.Popen(
                [sys.executable, "manage.py", "ingest", str(path), "--source", "together", "--timeout", "180"],
                cwd=ROOT, env=embedded, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outcomes = [(sender.wait(timeout=240), sender.communicate()) for sender in senders]
    finally:
        worker.stop()
    for code, (out, err) in outcomes:
        assert code == 0 and "quarantined (no baseline), 200 records" in out, err[-2000:]
    # Each batch was ingested on its first claim: none was given back after a `database is locked`.
    attempts = last_line(manage(embedded, "shell", "-c", "from collection.models import Batch; print(*Batch.objects."
                                "filter(source__name='together').values_list('attempts', flat=True))")).split()
    assert attempts == ["1"] * 4
