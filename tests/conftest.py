"""Fixtures shared by the suite: a data folder, sources with keys, uploads, and real worker and server processes;
the objects themselves come from tests/factories.py."""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests import factories

ROOT = Path(__file__).resolve().parent.parent
# The suite runs on the built-in secrets, and so do the gunicorn, Celery and manage.py processes it starts.
os.environ["SIEVE_DEV"] = "1"


def pytest_collection_modifyitems(config, items):
    """The suite is about real services: refuse to run it on SQLite by mistake."""
    engine = settings.DATABASES["default"]["ENGINE"]
    needs_db = any("django_db" in item.keywords or "db" in getattr(item, "fixturenames", ()) for item in items)
    if needs_db and "postgresql" not in engine:
        raise pytest.UsageError("The suite runs on PostgreSQL: run `make test`, or set DATABASE_URL to a server.")


@pytest.fixture(autouse=True, scope="session")
def data_dir(tmp_path_factory) -> Path:
    """Payloads and Parquet copies of the whole session go to one folder, shared with worker processes."""
    path = tmp_path_factory.mktemp("sieve-data")
    settings.DATA_DIR = path
    return path


@pytest.fixture(scope="session")
def celery_queue() -> str:
    """A queue of this session's own, so a worker of `make run` or another run never takes its tasks."""
    from config.celery import app

    queue = f"sieve-test-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    return queue


@pytest.fixture
def source(db):
    return factories.source_make(name="checkout-app")


@pytest.fixture
def source_key(source):
    return factories.source_key_make(source)


@pytest.fixture
def api(source_key):
    """A DRF client that sends the source's key."""
    return factories.api_client(source_key)


@pytest.fixture
def upload(api):
    """upload(body, **headers) -> batch id: post an NDJSON batch through the API with the source's key."""
    def post(body: bytes, **headers) -> int:
        response = factories.post_batch(api, body, **headers)
        assert response.status_code == 202, response.content
        return response.json()["id"]
    return post


@pytest.fixture
def quarantined_batch(source, tmp_path):
    """A drifted batch of `source`, quarantined against its baseline by the services in this process."""
    return factories.quarantined_batch(source, tmp_path)


DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """docs/screenshots/ when SIEVE_SCREENSHOTS=1 (to refresh the docs' pictures), else a temporary folder."""
    folder = DOCS_SCREENSHOTS if os.environ.get("SIEVE_SCREENSHOTS") == "1" else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def imports_without_django(package: str) -> int:
    """Import a pure library and every submodule in a fresh interpreter; fails if Django got imported.
    Returns how many submodules it imported."""
    module = __import__(package, fromlist=["__file__"])
    folder = Path(module.__file__).parent
    modules = sorted(f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for name in {[package, *modules]!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr
    return len(modules)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_database_url() -> str:
    """The URL of the test database pytest-django made, for processes started by the tests."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


test_database_url.__test__ = False


class Process:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, args: list[str], *, env: dict, log: Path, ready: str | None = None, timeout: float = 60):
        self.log = log
        self.handle = open(log, "ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.handle, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if ready:
            wait_for(lambda: ready in self.output() or self.proc.poll() is not None, timeout=timeout,
                     what=f"{args[2] if len(args) > 2 else args[0]} to be ready")
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited early:\n{self.output()[-4000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self, sig=signal.SIGKILL) -> None:
        """Signal the whole group: a Celery worker's pool children die with their parent."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.handle.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def run_on_sqlite(tmp_path: Path, module: str, story: str, *, apps: tuple[str, ...] = ()) -> dict:
    """Run the function `story` of test module `module` in a subprocess on a new, migrated SQLite database (as
    `make run` keeps its data) and return what it returned, through JSON. `apps` limits the migration."""
    import json

    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'sieve.sqlite3'}", SIEVE_DATA_DIR=str(tmp_path / "var"),
               DJANGO_SETTINGS_MODULE="config.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", *apps, "--noinput", "-v0"], cwd=ROOT, env=env,
                   check=True)
    code = ("import django, json; django.setup(); from django.db import connection; "
            "assert connection.vendor == 'sqlite', connection.vendor; "
            f"from {module} import {story}; print(json.dumps({story}()))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def service_env(*, data_dir: Path, queue: str, redis_url: str | None = None, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        REDIS_URL=redis_url or settings.REDIS_URL,
        SIEVE_DATA_DIR=str(data_dir),
        SIEVE_QUEUE=queue,
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(tmp_path: Path, *, data_dir: Path, queue: str, beat: bool = False, concurrency: int = 1,
                 redis_url: str | None = None, imports: tuple[str, ...] = (), **extra) -> Process:
    """A real Celery worker on the session's queue (with beat, and test-only task modules `imports`); `extra` are
    environment variables (settings) of its own."""
    name = f"w{uuid.uuid4().hex[:6]}"
    args = [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "-Q", queue, "-c", str(concurrency),
            "-n", f"{name}@%h", "-l", "info", "--without-gossip", "--without-mingle"]
    for module in imports:
        args += ["-I", module]
    if beat:
        args += ["--beat", "--schedule", str(tmp_path / f"beat-{name}")]
    env = service_env(data_dir=data_dir, queue=queue, redis_url=redis_url, **extra)
    return Process(args, env=env, log=tmp_path / f"worker-{name}.log", ready=" ready.")


def start_web(tmp_path: Path, *, data_dir: Path, queue: str, redis_url: str | None = None, **extra) -> tuple:
    port = free_port()
    args = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--access-logfile", "-"]
    env = service_env(data_dir=data_dir, queue=queue, redis_url=redis_url, **extra)
    proc = Process(args, env=env, log=tmp_path / f"web-{port}.log", ready="Booting worker")
    url = f"http://127.0.0.1:{port}"
    import requests

    wait_for(lambda: _answers(requests, url), timeout=30, what="gunicorn to answer")
    return proc, url


def _answers(requests, url) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def worker(transactional_db, tmp_path, data_dir, celery_queue):
    """A real Celery worker on the test database and the session's queue."""
    proc = start_worker(tmp_path, data_dir=data_dir, queue=celery_queue)
    yield proc
    proc.stop()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser). Missing: skipped, but
    a failure under CI=true, where .ci/run has installed it."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around
    # it are still synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def log_in(page, base_url: str, username: str, password: str, next_url: str = "/quality/") -> None:
    page.goto(f"{base_url}/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
