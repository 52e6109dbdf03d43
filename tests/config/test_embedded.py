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


def test_the_demo_runs_on_sqlite_and_the_filesystem_broker(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(SIEVE_DATA_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="config.settings")
    manage = [sys.executable, "manage.py"]
    subprocess.run(manage + ["migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    demo = subprocess.run(manage + ["demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert "login admin / sieve-demo" in demo.stdout and "API key sieve_" in demo.stdout
    again = subprocess.run(manage + ["demo"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert "already there" in again.stdout
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
    finally:
        worker.stop()
    assert (tmp_path / "var" / "sieve.sqlite3").exists()
