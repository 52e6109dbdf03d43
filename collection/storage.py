"""Where payloads and columnar copies live on disk, and the streams that move an upload there.

An upload is read in chunks straight from the request into a temporary file beside its final place;
on the way the bytes are counted (so an oversized body is refused before it is all read), gunzipped
when the client says gzip (in bounded pieces, and counted again: a small gzip that expands past its
own limit is refused too), and hashed (SHA-256 of the uncompressed content, so the same data sent
compressed or not is the same content). Nothing holds the whole body in memory.
"""
import gzip
import hashlib
import io
import os
import uuid
import zlib
from pathlib import Path

from django.conf import settings

READ_CHUNK = 1024 * 1024


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"the body is larger than the limit of {limit} bytes")
        self.limit = limit


class ContentTooLarge(BodyTooLarge):
    """The uncompressed content of a (gzip) body is larger than its limit."""

    def __init__(self, limit: int):
        Exception.__init__(self, f"the body is larger than the limit of {limit} bytes once uncompressed")
        self.limit = limit


class NotGzip(Exception):
    pass


def data_path(relative: str) -> Path:
    return Path(settings.DATA_DIR) / relative


def payload_relative_path(source_id: int, fmt: str, gzipped: bool) -> str:
    name = f"{uuid.uuid4().hex}.{fmt}{'.gz' if gzipped else ''}"
    return f"payloads/{source_id}/{name}"


def columnar_relative_path(source_id: int, batch_id: int) -> str:
    return f"columnar/{source_id}/{batch_id}.parquet"


class _TeeToFile(io.RawIOBase):
    """Reads the request body, writes each chunk to `sink` as it passes, refuses past `limit` bytes."""

    def __init__(self, source, sink, limit: int):
        self.source = source
        self.sink = sink
        self.limit = limit
        self.count = 0
        self._rest = b""  # what a source returned beyond the size asked for

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._rest or self.source.read(min(len(buffer), READ_CHUNK))
        if not chunk:
            return 0
        chunk, self._rest = chunk[: len(buffer)], chunk[len(buffer):]
        self.count += len(chunk)
        if self.count > self.limit:
            raise BodyTooLarge(self.limit)
        self.sink.write(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)


class _Hashing(io.RawIOBase):
    """Passes bytes through, hashing them and counting how many came; refuses past `limit` bytes."""

    def __init__(self, source, limit: int):
        self.source = source
        self.limit = limit
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            chunk = self.source.read(len(buffer))
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
            raise NotGzip(str(exc) or "the gzip stream ends early") from None
        if not chunk:
            return 0
        self.count += len(chunk)
        if self.count > self.limit:
            raise ContentTooLarge(self.limit)
        self.digest.update(chunk)
        buffer[: len(chunk)] = chunk
        return len(chunk)


class IncomingPayload:
    """The body of one upload, streamed to a temporary file; read `content` to drive it.

    `content` yields the uncompressed bytes. After reading it to its end, call `finish()`: it reads
    whatever the parser left, so the stored file is the whole body and the hash covers all of it.
    `limit` bounds the body as sent, `content_limit` its uncompressed content (BodyTooLarge, ContentTooLarge).
    """

    def __init__(self, body, *, gzipped: bool, limit: int, content_limit: int, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.temp_path = directory / f".incoming-{uuid.uuid4().hex}"
        self._file = open(self.temp_path, "wb")
        self._tee = _TeeToFile(body, self._file, limit)
        raw = io.BufferedReader(self._tee, buffer_size=READ_CHUNK)
        self._hashing = _Hashing(gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw, content_limit)
        self.content = io.BufferedReader(self._hashing, buffer_size=READ_CHUNK)

    def finish(self) -> tuple[str, int, int]:
        """Drain the body; return (sha256 of the content, content bytes, body bytes)."""
        while self.content.read(READ_CHUNK):
            pass
        self._file.close()
        return self._hashing.digest.hexdigest(), self._hashing.count, self._tee.count

    def keep(self, relative: str) -> None:
        target = data_path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.temp_path, target)

    def discard(self) -> None:
        self._file.close()
        self.temp_path.unlink(missing_ok=True)


def open_payload(relative: str, *, gzipped: bool):
    """The uncompressed content of a stored payload, as a buffered binary stream."""
    path = data_path(relative)
    return gzip.open(path, "rb") if gzipped else open(path, "rb", buffering=READ_CHUNK)
