"""A version's files over HTTP: which file a URL names, and the response, streamed from disk.

A whole file goes out as a `FileResponse`, which gunicorn sends with sendfile(2) (no copy through Python).
`ETag` is the file's SHA-256 from the manifest, so `If-None-Match` answers 304 without reading the file; a
single byte range (`Range: bytes=a-b`, `a-` or `-n`) answers 206 from a generator that reads only that slice,
and a resumed download with `If-Range` gets the whole file again if the version's file is not the one it had.
"""
import base64
from dataclasses import dataclass
from pathlib import Path

from django.http import FileResponse, HttpResponse, HttpResponseNotModified, JsonResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from collection.storage import data_path

from .models import TrainingSetVersion
from .services.errors import FileMissing, FormatNotBuilt, UnknownSplit, VersionNotReady

CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv", "jsonl": "application/x-ndjson"}
CHUNK = 256 * 1024


@dataclass(frozen=True)
class VersionFile:
    """One built file of a version: where it is, what the manifest says of it, and how it is offered."""

    path: Path
    name: str
    download_name: str
    sha256: str
    size: int
    rows: int | None
    content_type: str

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


def version_file(version: TrainingSetVersion, split: str, fmt: str) -> VersionFile:
    """The file of a split in a format; VersionNotReady (not built, or rejected), UnknownSplit, FormatNotBuilt
    (a format the version was not built in), FileMissing (listed in the manifest but not on disk)."""
    if not version.readable:
        raise VersionNotReady(f"version {version.number} is {version.status}: its files cannot be downloaded",
                              field="status", value=version.status)
    manifest = version.manifest or {}
    splits = manifest.get("splits") or {}
    if split not in splits:
        raise UnknownSplit(f"version {version.number} has no split {split!r} (its splits: {', '.join(splits)})",
                           field="split", value=split)
    name = f"{split}.{fmt}"
    entry = (manifest.get("files") or {}).get(name)
    if fmt not in CONTENT_TYPES or entry is None:
        built = sorted({f.rsplit(".", 1)[1] for f in manifest.get("files") or {} if f.startswith(f"{split}.")})
        raise FormatNotBuilt(f"version {version.number} was not built as {fmt!r} (built: {', '.join(built)})",
                             field="format", value=fmt)
    path = data_path(version.folder) / name
    try:
        size = path.stat().st_size
    except OSError:
        raise FileMissing(f"{name} of version {version.number} is not on disk", field="file", value=name) from None
    return VersionFile(path=path, name=name, download_name=f"{version.training_set.name}-v{version.number}-{name}",
                       sha256=entry["sha256"], size=size, rows=entry.get("rows"), content_type=CONTENT_TYPES[fmt])


def _etags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _not_modified(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" matches "x"; `*` matches any file."""
    if not header:
        return False
    tags = _etags(header)
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


UNSATISFIABLE = "unsatisfiable"


def byte_range(header: str, size: int):
    """One `bytes=` range as (start, end) inclusive, clamped to the file; UNSATISFIABLE when it starts past
    the end (or asks for the last 0 bytes); None when the header is to be ignored: malformed, another unit, or
    several ranges (RFC 9110 lets a server answer those with the whole file)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) \
            or (last and not last.isdigit()):
        return None
    if not first:  # the last n bytes
        length = int(last)
        if length == 0 or size == 0:
            return UNSATISFIABLE
        return max(size - length, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return UNSATISFIABLE
    return start, min(int(last), size - 1) if last else size - 1


def _slice(path: Path, start: int, length: int):
    """The bytes [start, start + length) of a file, a chunk at a time; the file closes when the response does."""
    with open(path, "rb") as handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def _headers(response: HttpResponse, vfile: VersionFile, extra: dict) -> HttpResponse:
    response["ETag"] = vfile.etag
    response["Accept-Ranges"] = "bytes"
    # The digest of the whole file (RFC 9530), also on a range: a client checks what it reassembles.
    response["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(vfile.sha256)).decode()}:"
    # Per-user authorisation: shared caches must not keep it; the browser revalidates with the ETag.
    response["Cache-Control"] = "private, no-cache"
    for name, value in extra.items():
        response[name] = value
    return response


def file_response(request, vfile: VersionFile, *, extra_headers: dict | None = None) -> HttpResponse:
    """The response to a GET (or HEAD) of a version's file: 200 whole, 206 one range, 304 not modified, or
    416 (a JSON error, with `Content-Range: bytes */size`) for a range that starts past the end."""
    extra = extra_headers or {}
    if _not_modified(request.META.get("HTTP_IF_NONE_MATCH"), vfile.etag):
        return _headers(HttpResponseNotModified(), vfile, extra)
    wanted = None
    header = request.META.get("HTTP_RANGE")
    if header:
        if_range = request.META.get("HTTP_IF_RANGE")
        # If-Range takes the strong comparison: another ETag, a weak one or a date means "send it all".
        if if_range is None or if_range.strip() == vfile.etag:
            wanted = byte_range(header, vfile.size)
    if wanted == UNSATISFIABLE:
        response = JsonResponse({"error": "range_not_satisfiable",
                                 "detail": f"the range {header!r} starts past the end of {vfile.size} bytes",
                                 "size": vfile.size}, status=416)
        response["Content-Range"] = f"bytes */{vfile.size}"
        return _headers(response, vfile, extra)
    disposition = content_disposition_header(True, vfile.download_name)
    if wanted is None:
        response = FileResponse(open(vfile.path, "rb"), content_type=vfile.content_type)
        response["Content-Disposition"] = disposition
        return _headers(response, vfile, extra)
    start, end = wanted
    length = end - start + 1
    response = StreamingHttpResponse(_slice(vfile.path, start, length), status=206, content_type=vfile.content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{vfile.size}"
    response["Content-Length"] = str(length)
    response["Content-Disposition"] = disposition
    return _headers(response, vfile, extra)
