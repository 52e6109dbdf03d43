"""Slow clients do not block the server `make run` starts: the gunicorn command line of bin/run, run as it is,
keeps answering /healthz while clients trickle their headers and bodies in."""
import shlex
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, Process, free_port, service_env, wait_for

SLOW = 3  # connections of each kind, as in issue 13


def run_command_line(port: int) -> list[str]:
    """bin/run's gunicorn command, with the test's port."""
    script = (ROOT / "bin" / "run").read_text().replace("\\\n", " ")
    line = next(line for line in script.splitlines() if line.lstrip().startswith('"$BIN/gunicorn"'))
    args = shlex.split(line.replace("$PORT", str(port)).rstrip(" &"))
    return [str(Path(sys.executable).parent / "gunicorn"), *args[1:]]


@pytest.fixture
def run_server(transactional_db, tmp_path, data_dir, celery_queue):
    port = free_port()
    proc = Process(run_command_line(port), env=service_env(data_dir=data_dir, queue=celery_queue),
                   log=tmp_path / "run-web.log")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _healthy(url), timeout=30, what="bin/run's gunicorn to answer")
    yield url, port
    proc.stop()


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


class Trickle:
    """Connections that each send one more header line, or one more byte of body, every second."""

    def __init__(self, port: int, source_key: str):
        self.port = port
        self.key = source_key
        self.sockets: list[tuple[socket.socket, bytes]] = []
        self.stopped = threading.Event()
        self.rounds = 0  # drips sent on every connection

    def open(self) -> None:
        for i in range(SLOW):
            self._connect("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode(), b"X-Slow-%d: 1\r\n" % i)
            self._connect(
                (f"POST /api/v1/batches HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.key}\r\n"
                 "Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n").encode(), b" ")
        threading.Thread(target=self._drip, daemon=True).start()

    def _connect(self, start: bytes, drip: bytes) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(start)
        self.sockets.append((sock, drip))

    def _drip(self) -> None:
        while not self.stopped.wait(1):
            for sock, drip in self.sockets:
                try:
                    sock.sendall(drip)
                except OSError:
                    pass
            self.rounds += 1

    def close(self) -> None:
        self.stopped.set()
        for sock, _ in self.sockets:
            sock.close()


def test_healthz_answers_at_once_while_slow_clients_send_headers_and_bodies(run_server, source_key):
    url, port = run_server
    trickle = Trickle(port, source_key)
    try:
        trickle.open()
        # Every slow connection is open and has sent more since.
        wait_for(lambda: trickle.rounds >= 1, timeout=10, what="a drip on every slow connection")
        for _ in range(5):
            started = time.monotonic()
            assert requests.get(f"{url}/healthz", timeout=2).status_code == 200
            assert time.monotonic() - started < 2
    finally:
        trickle.close()


def test_the_command_line_is_the_one_bin_run_uses_with_threaded_workers():
    args = run_command_line(8123)
    assert args[1:3] == ["config.wsgi:application", "--config"] and "--bind" in args
    assert args[args.index("--bind") + 1] == "127.0.0.1:8123"
    conf = {}
    exec((ROOT / args[args.index("--config") + 1]).read_text(), conf)
    assert conf["worker_class"] == "gthread" and conf["threads"] >= 2 * SLOW
