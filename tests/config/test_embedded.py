"""`make run`'s embedded default: SQLite and kombu's filesystem broker, no server at all, end to end."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Process, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


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
    finally:
        worker.stop()
    assert (tmp_path / "var" / "sieve.sqlite3").exists()
