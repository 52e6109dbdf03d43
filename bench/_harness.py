"""Shared set-up for the collection benches (bench/ingest.py, bench/feedback.py); not a bench itself.

It gives each run its own world: a dedicated PostgreSQL database (dropped and made again, then
migrated), a Redis database, a temporary SIEVE_DATA_DIR and a queue name no other worker listens
to. It starts gunicorn and a Celery worker as children in their own process groups and always
stops them (on return, on an exception, on Ctrl-C and on SIGTERM), and it bounds every wait.
"""
import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python")
# Benches make and drop throwaway databases: they run on the built-in development secrets (as `make bench`
# does), so a plain `.venv/bin/python bench/<name>.py` passes the secrets check.
os.environ.setdefault("SIEVE_DEV", "1")
# A sync gunicorn worker holds one request at a time, and most of a request is spent waiting on
# PostgreSQL; two per core keeps both cores busy without starving PostgreSQL and the worker,
# which share the same two cores. The deployment (Dockerfile, compose) runs 4 as well.
WEB_WORKERS = 4


def arguments(description: str, add) -> argparse.Namespace:
    """The flags every bench has, plus the bench's own (`add(parser)`)."""
    parser = argparse.ArgumentParser(description=description)
    add(parser)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/sieve_bench",
                        help="a dedicated database: one named sieve_bench* is dropped and made again each run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--web-workers", type=int, default=WEB_WORKERS)
    parser.add_argument("--time-limit", type=float, default=1800, help="seconds before the run gives up")
    return parser.parse_args()


def say(message: str) -> None:
    print(message, flush=True)


def verdict(name: str, value: float, floor: float, unit: str, target: float) -> bool:
    """Print a figure, the floor, their ratio and whether the ratio meets its target."""
    ratio = value / floor if floor else float("nan")
    met = ratio >= target
    say(f"{name}: {value:,.0f} {unit}; floor {floor:,.0f} {unit}; ratio {ratio:.2f}x "
        f"(target >= {target}x): {'MET' if met else 'MISSED'}")
    return met


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the bench ran past --time-limit")
        return left


# --- database


def _connect_params(url: str) -> dict:
    from urllib.parse import urlparse

    parts = urlparse(url)
    return {"host": parts.hostname or None, "port": parts.port or None, "user": parts.username or None,
            "password": parts.password or None, "dbname": parts.path.lstrip("/")}


def connect(url: str, **kwargs):
    import psycopg

    return psycopg.connect(**_connect_params(url), **kwargs)


def database_fresh(url: str) -> None:
    """Make the bench database empty: drop and create one named sieve_bench*, else just create if missing."""
    from psycopg import sql

    params = _connect_params(url)
    name = params["dbname"]
    with connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and name.startswith("sieve_bench"):
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def floor_table(conn, like: str, name: str, *, indexes: bool = False) -> None:
    """A table with the columns, types, NOT NULLs and defaults of `like`; its indexes only if asked."""
    including = "INCLUDING ALL" if indexes else "INCLUDING DEFAULTS INCLUDING IDENTITY"
    conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.execute(f"CREATE TABLE {name} (LIKE {like} {including})")
    conn.commit()


# --- the app's processes


class Stack:
    """Environment, database, gunicorn and (optionally) a Celery worker for one bench run."""

    def __init__(self, args, *, worker: bool):
        self.args = args
        self.want_worker = worker
        self.deadline = Deadline(args.time_limit)
        self.data_dir = Path(tempfile.mkdtemp(prefix="sieve-bench-"))
        OUT.mkdir(parents=True, exist_ok=True)
        self.logs = OUT / "logs"
        self.logs.mkdir(exist_ok=True)
        run = uuid.uuid4().hex[:8]
        self.queue = f"bench-{run}"
        self.node = f"bench-{run}@{socket.gethostname()}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "SIEVE_DATA_DIR": str(self.data_dir),
            "SIEVE_QUEUE": self.queue,
            "SIEVE_KEY_RATE": "1000000/min",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.web = None
        self.worker = None
        self._old_term = None

    def __enter__(self):
        # SIGTERM becomes an exception, so `with` still stops the children.
        self._old_term = signal.signal(signal.SIGTERM, _raise_exit)
        signal.signal(signal.SIGALRM, _raise_exit)
        signal.alarm(int(self.args.time_limit) + 60)  # a hard stop past --time-limit, should a wait hang
        try:
            say(f"setting up: database {self.args.database_url}, data dir {self.data_dir}, queue {self.queue}")
            database_fresh(self.args.database_url)
            self.manage("migrate", "--noinput", "-v0")
            self.start_web()
            if self.want_worker:
                self.start_worker()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc):
        for proc in (self.web, self.worker):
            stop(proc)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        signal.alarm(0)
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)
        return False

    def manage(self, *argv: str) -> str:
        done = subprocess.run([PYTHON, "manage.py", *argv], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=min(600, self.deadline.left()))
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def source_key(self, name: str) -> str:
        """A new source of kind app; returns its API key."""
        return self.manage("source_create", name, "--kind", "app").strip().splitlines()[-1]

    def start_web(self) -> None:
        self.web = spawn([str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                          "--workers", str(self.args.web_workers)], self.env, self.logs / "gunicorn.log")
        wait_for(lambda: _http_ok(f"{self.base}/healthz"), 60, "gunicorn to answer /healthz", self.web)

    def start_worker(self) -> None:
        self.worker = spawn([str(BIN / "celery"), "-A", "config", "worker", "-Q", self.queue, "-c", "1",
                             "-n", self.node, "-l", "warning", "--without-gossip", "--without-mingle",
                             "--without-heartbeat"], self.env, self.logs / "worker.log")
        from celery import Celery

        app = Celery(broker=self.args.redis_url)
        wait_for(lambda: app.control.ping(destination=[self.node], timeout=1.0), 60, "the Celery worker to answer",
                 self.worker)

    def worker_children(self) -> list[int]:
        return children(self.worker.pid) if self.worker else []

    def web_children(self) -> list[int]:
        return children(self.web.pid) if self.web else []


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the bench dies, even by SIGKILL (Linux prctl)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "wb")
    try:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)
    finally:
        out.close()


def stop(proc: subprocess.Popen | None, grace: float = 15) -> None:
    """TERM the process's group (it and the children it forked), then KILL what is left after `grace`."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_for(check, seconds: float, what: str, proc: subprocess.Popen | None = None, every: float = 0.2):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"gave up waiting for {what}: the process exited with {proc.returncode} "
                               f"(log in {OUT / 'logs'})")
        with contextlib.suppress(Exception):
            result = check()
            if result:
                return result
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {seconds:.0f} s")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def http_json(method: str, url: str, key: str, body=None, timeout: float = 30):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw[:2000].decode(errors="replace")  # an HTML error page, say


# --- memory of processes


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def vm_hwm_kb(pid: int) -> int:
    """Peak resident set size of a live process (VmHWM), in KiB; 0 once it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class PeakRss:
    """Samples the VmHWM of the processes `pids()` names until stopped; keeps each one's highest."""

    def __init__(self, pids, every: float = 0.25):
        import threading

        self.pids = pids
        self.every = every
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def _run(self):
        while True:
            self.sample()
            if self._stop.wait(self.every):
                self.sample()
                return

    def sample(self):
        for pid in self.pids():
            self.peaks[pid] = max(self.peaks.get(pid, 0), vm_hwm_kb(pid))

    @property
    def peak_mb(self) -> float:
        return max(self.peaks.values(), default=0) / 1024


# --- data


CATEGORIES = [[f"c{c}-{v}" for v in range(5 + 3 * c)] for c in range(10)]
LABELS = ["ok", "spam", "fraud", "unsure"]


def records_file(count: int, seed: int = 7) -> Path:
    """NDJSON of `count` records with 20 features (10 numeric, 10 categorical), made once and kept in bench/out/."""
    import numpy as np
    import orjson

    path = OUT / f"records-{count}-s{seed}.ndjson"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    partial = path.with_suffix(".partial")
    start = 1_767_225_600  # 2026-01-01T00:00:00Z
    with open(partial, "wb") as out:
        for first in range(0, count, 100_000):
            n = min(100_000, count - first)
            floats = np.round(rng.normal(size=(n, 5)) * 100, 4).tolist()
            ints = rng.integers(0, 10_000, size=(n, 5)).tolist()
            cats = [rng.integers(0, len(values), size=n).tolist() for values in CATEGORIES]
            labels = rng.integers(0, len(LABELS), size=n).tolist()
            lines = []
            for i in range(n):
                features = {f"x{j}": floats[i][j] for j in range(5)}
                features.update({f"n{j}": ints[i][j] for j in range(5)})
                features.update({f"c{c}": CATEGORIES[c][cats[c][i]] for c in range(10)})
                number = first + i
                moment = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start + number))
                lines.append(orjson.dumps({"external_id": f"rec-{number:08d}", "features": features,
                                           "observed_at": moment, "label": LABELS[labels[i]]}))
            out.write(b"\n".join(lines) + b"\n")
    partial.replace(path)
    return path


if __name__ == "__main__":
    sys.exit(0)  # `make bench` runs every bench/*.py: this helper has nothing to measure on its own
