"""Gzip bombs and huge lines: an upload is limited once uncompressed (413) and per record (400 naming the line),
refused early, read in bounded memory, and nothing of it is kept."""
import gzip
import io
import zlib
from pathlib import Path

import pytest
import requests

from collection import services
from collection.parsing import PayloadError, PayloadParser
from collection.storage import BodyTooLarge, ContentTooLarge
from tests.conftest import start_web
from tests.factories import post_batch, stored_payloads

RECORD = b'{"external_id": "a", "features": {"x": 1}}\n'
MB = 1024 * 1024


def gzip_of(*parts: tuple[bytes, int]) -> bytes:
    """A gzip body of each (piece, times) in turn, compressed as it is made: never the whole content in memory."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = []
    for piece, times in parts:
        block = piece * max(1, MB // len(piece))
        whole, rest = divmod(times, max(1, MB // len(piece)))
        out.extend(packer.compress(block) for _ in range(whole))
        out.append(packer.compress(piece * rest))
    out.append(packer.flush())
    return b"".join(out)


class Endless(io.RawIOBase):
    """`size` bytes of `fill` (then a record), counting how much was read."""

    def __init__(self, fill: bytes, size: int):
        self.fill, self.left, self.read_bytes = fill, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            return 0
        n = min(len(buffer), self.left)
        buffer[:n] = self.fill * n
        self.left -= n
        self.read_bytes += n
        return n


def test_an_ndjson_line_longer_than_the_limit_is_refused_naming_it_before_the_rest_is_read():
    raw = Endless(b" ", 1 << 40)  # a terabyte of spaces on the third line
    chained = io.BufferedReader(_Chain(io.BytesIO(RECORD + b"\n"), raw))
    with pytest.raises(PayloadError) as caught:
        list(PayloadParser(chained, "ndjson", max_json_bytes=1000, max_record_bytes=10_000))
    assert caught.value.line == 3 and "longer than the limit of 10000 bytes" in str(caught.value)
    assert raw.read_bytes < 1 * MB


def test_a_line_of_exactly_the_limit_is_read_and_one_byte_more_is_refused():
    line = RECORD.rstrip(b"\n")
    records = list(PayloadParser(io.BytesIO(line + b"\n"), "ndjson", max_json_bytes=1, max_record_bytes=len(line)))
    assert [r.external_id for r in records] == ["a"]
    padded = b" " + line
    with pytest.raises(PayloadError) as caught:
        list(PayloadParser(io.BytesIO(padded), "ndjson", max_json_bytes=1, max_record_bytes=len(line)))
    assert caught.value.line == 1


def test_a_csv_record_longer_than_the_limit_is_refused_naming_its_first_line():
    long_cell = b"x" * 5000
    body = b"external_id,note\na,short\nb," + long_cell + b"\n"
    with pytest.raises(PayloadError) as caught:
        list(PayloadParser(io.BytesIO(body), "csv", max_json_bytes=1, max_record_bytes=1000))
    assert caught.value.line == 3 and "longer than the limit" in str(caught.value)
    # Quoted newlines spread one record over many short lines: the record as a whole is bounded.
    spread = b"external_id,note\na,short\nb,\"" + b"y\n" * 3000 + b"\"\n"
    with pytest.raises(PayloadError) as caught:
        list(PayloadParser(io.BytesIO(spread), "csv", max_json_bytes=1, max_record_bytes=1000))
    assert caught.value.line == 3
    ok = b"external_id,note\na,\"two\nlines\"\n"
    assert [r.features["note"] for r in PayloadParser(io.BytesIO(ok), "csv", max_json_bytes=1,
                                                      max_record_bytes=1000)] == ["two\nlines"]


def test_a_csv_line_that_is_not_utf8_is_named():
    with pytest.raises(PayloadError) as caught:
        list(PayloadParser(io.BytesIO(b"external_id,c\na,1\nb,\xff\n"), "csv", max_json_bytes=1))
    assert caught.value.line == 3 and "not UTF-8" in str(caught.value)


def test_a_gzip_body_is_limited_once_uncompressed_and_nothing_is_kept(api, settings, source):
    settings.SIEVE_MAX_UNCOMPRESSED_BYTES = 4 * MB
    bomb = gzip_of((b" " * 1023 + b"\n", 8 * 1024), (RECORD, 1))  # 8 MB of blank lines in a few kB
    assert len(bomb) < 100_000
    response = post_batch(api, bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413, response.content
    assert response.json()["error"] == "too_large" and response.json()["limit"] == 4 * MB
    assert "uncompressed" in response.json()["detail"]
    assert stored_payloads(source) == []
    small = gzip.compress(b" " * 1000 + b"\n" + RECORD)
    assert post_batch(api, small, **{"Content-Encoding": "gzip"}).status_code == 202


def test_the_uncompressed_limit_applies_to_what_the_parser_left(settings, source):
    settings.SIEVE_MAX_UNCOMPRESSED_BYTES = 2 * MB
    body = gzip_of((b"[" + RECORD.rstrip() + b"]", 1), (b" ", 4 * MB))  # a JSON array with trailing spaces
    with pytest.raises(ContentTooLarge) as caught:
        services.batch_receive(source=source, body=io.BytesIO(body), fmt="json", gzipped=True)
    assert isinstance(caught.value, BodyTooLarge)
    assert stored_payloads(source) == []


def test_a_record_over_the_limit_is_a_400_naming_the_line_and_nothing_is_kept(api, settings, source):
    settings.SIEVE_MAX_RECORD_BYTES = 1000
    body = RECORD + b" " * 5000 + RECORD.replace(b'"a"', b'"b"')
    response = post_batch(api, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_payload" and response.json()["line"] == 2
    assert "SIEVE_MAX_RECORD_BYTES" in response.json()["detail"]
    assert stored_payloads(source) == []


class _Chain(io.RawIOBase):
    """One stream after another."""

    def __init__(self, *streams):
        self.streams = list(streams)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self.streams:
            chunk = self.streams[0].read(len(buffer))
            if chunk:
                buffer[: len(chunk)] = chunk
                return len(chunk)
            self.streams.pop(0)
        return 0


def gunicorn_workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.fixture
def web(transactional_db, tmp_path, data_dir, celery_queue):
    proc, url = start_web(tmp_path, data_dir=data_dir, queue=celery_queue,
                          SIEVE_MAX_UNCOMPRESSED_BYTES=64 * MB)
    yield proc, url
    proc.stop()


def test_gzip_bombs_leave_the_web_workers_in_bounded_memory(web, source_key, source):
    proc, url = web
    headers = {"Authorization": f"Bearer {source_key}", "Content-Type": "application/x-ndjson",
               "Content-Encoding": "gzip"}
    one_line = gzip_of((b" ", 256 * MB), (RECORD, 1))  # a quarter GiB of spaces before one record
    many_lines = gzip_of((b" " * 1023 + b"\n", 128 * 1024), (RECORD, 1))  # 128 MiB of blank lines
    assert len(one_line) < 2 * MB and len(many_lines) < 2 * MB

    requests.get(f"{url}/api/v1/batches", headers=headers, timeout=10).raise_for_status()
    workers = gunicorn_workers(proc.proc.pid)
    before = {pid: peak_rss_mb(pid) for pid in workers}
    line_answer = requests.post(f"{url}/api/v1/batches", data=one_line, headers=headers, timeout=30)
    size_answer = requests.post(f"{url}/api/v1/batches", data=many_lines, headers=headers, timeout=30)
    grown = {pid: peak_rss_mb(pid) - before[pid] for pid in workers}
    assert max(grown.values()) < 64, grown  # MB: read in pieces of about a megabyte

    assert line_answer.status_code == 400, line_answer.text
    assert line_answer.json()["error"] == "invalid_payload" and line_answer.json()["line"] == 1
    assert size_answer.status_code == 413, size_answer.text
    assert size_answer.json()["error"] == "too_large" and size_answer.json()["limit"] == 64 * MB
    assert stored_payloads(source) == []
