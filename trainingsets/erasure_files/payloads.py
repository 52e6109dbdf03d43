"""Masking the records at given lines of a raw payload (NDJSON, CSV, JSON array; gzipped or not), streamed."""
from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import json
import re
import shutil
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from .replace import ErasureFileError, replacing

CHUNK = 1024 * 1024
GZIP_LEVEL = 6  # the gzip module's default (9) is several times slower for a few percent of size
ERASED_KEY = "__erased"
CSV_MARK = "__erased:"

Matches = Callable[[str], bool]


@dataclass
class PayloadMasked:
    masked: int = 0          # units masked by this run
    already: int = 0         # units found masked already (by an earlier run)
    bytes_in: int = 0        # the stored file's size before
    bytes_out: int = 0       # and after
    seconds: float = 0.0
    rewritten: bool = False  # False: nothing left to mask, the file was not replaced
    # The external ids found at the masked units: kept in memory only, they let the Parquet copy and the
    # versions' lineage be searched by value instead of hashing every row.
    external_ids: set = field(default_factory=set)

    def as_dict(self) -> dict:
        out = asdict(self)
        del out["external_ids"]
        out["seconds"] = round(self.seconds, 4)
        return out


def _open_in(path: Path, gzipped: bool):
    return gzip.open(path, "rb") if gzipped else open(path, "rb", buffering=CHUNK)


@contextlib.contextmanager
def _open_out(path: Path, gzipped: bool):
    with open(path, "wb", buffering=CHUNK) as raw:
        if not gzipped:
            yield raw
            return
        # mtime 0: the same content masked twice gives the same bytes
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) as zipped:
            yield zipped


def mask_payload(path: Path, *, fmt: str, gzipped: bool, lines: Collection[int], erasure_id: int,
                 matches: Matches) -> PayloadMasked:
    """Mask the records at `lines` (line numbers of NDJSON and CSV, positions in a JSON array, from 1).

    Each unit must hold the erased record (its external id `matches`) or be masked already; anything
    else raises ErasureFileError and leaves the file as it was. The original is replaced only when a
    unit was masked by this run.
    """
    started = time.perf_counter()
    result = PayloadMasked(bytes_in=path.stat().st_size)
    wanted = sorted(set(lines))
    maskers = {"ndjson": _NdjsonMasker, "csv": _CsvMasker, "json": _JsonArrayMasker}
    if fmt not in maskers:
        raise ErasureFileError(f"unknown payload format {fmt!r}")
    if wanted:
        with replacing(path) as (temp, commit):
            with _open_in(path, gzipped) as src, _open_out(temp, gzipped) as out:
                maskers[fmt](wanted, erasure_id, matches, result).run(src, out)
            if result.masked:
                commit()
                result.rewritten = True
    result.bytes_out = path.stat().st_size
    result.seconds = time.perf_counter() - started
    return result


class _Masker:
    def __init__(self, wanted: list[int], erasure_id: int, matches: Matches, result: PayloadMasked):
        self.wanted = wanted
        self.erasure_id = erasure_id
        self.matches = matches
        self.result = result
        self.marker = orjson.dumps({ERASED_KEY: erasure_id})

    def json_unit(self, number: int, text: bytes, unit: str) -> bytes | None:
        """The marker that replaces one JSON record, or None when it is masked already."""
        if not text.strip():
            raise ErasureFileError(f"{unit} {number} is empty")
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ErasureFileError(f"{unit} {number} is not a JSON record") from None
        if isinstance(obj, dict) and ERASED_KEY in obj:
            self.result.already += 1
            return None
        external_id = obj.get("external_id") if isinstance(obj, dict) else None
        if not isinstance(external_id, str) or not self.matches(external_id):
            raise ErasureFileError(f"{unit} {number} does not hold the erased record")
        self.result.masked += 1
        self.result.external_ids.add(external_id)
        return self.marker


class _NdjsonMasker(_Masker):
    """Lines as the NDJSON parser counts them (split at b"\\n"); the chunks between them are copied whole."""

    def run(self, src, out) -> None:
        line = 1  # the number of the line that starts at buf[0]
        buf = b""
        targets = iter(self.wanted)
        target = next(targets, None)
        while target is not None:
            chunk = src.read(CHUNK)
            eof = not chunk
            buf = buf + chunk if buf else chunk
            while target is not None:
                skip = target - line
                if skip > 0:
                    complete = buf.count(b"\n")
                    if complete < skip:  # the line is further on: pass every complete line of the buffer
                        cut = buf.rfind(b"\n") + 1
                        out.write(buf[:cut])
                        buf, line = buf[cut:], line + complete
                        break
                    pos = 0
                    for _ in range(skip):
                        pos = buf.index(b"\n", pos) + 1
                    out.write(buf[:pos])
                    buf, line = buf[pos:], target
                end = buf.find(b"\n")
                if end < 0 and not eof:
                    break  # the line goes on in the next chunk
                body, rest = (buf, b"") if end < 0 else (buf[:end], buf[end:])
                replacement = self.json_unit(target, body, "line")
                if replacement is not None and body.endswith(b"\r"):
                    replacement += b"\r"
                out.write(body if replacement is None else replacement)
                # `rest` starts with this line's own b"\n": the next line still counts from `target`.
                buf, line = rest, target
                target = next(targets, None)
            if eof and target is not None:
                raise ErasureFileError(f"line {target} is past the end of the payload")
        out.write(buf)
        shutil.copyfileobj(src, out, CHUNK)


class _CsvMasker(_Masker):
    """Rows as the CSV parser reads them (csv.reader over the same text stream, so quoted newlines and line
    numbers agree with ingest's); a row's physical lines are copied as they are unless it is masked."""

    def run(self, src, out) -> None:
        text = io.TextIOWrapper(src, encoding="utf-8", newline="", errors="strict")
        pending: list[str] = []

        def physical():
            for piece in text:
                pending.append(piece)
                yield piece

        reader = csv.reader(physical(), strict=True)
        wanted = set(self.wanted)
        try:
            header = next(reader, None)
            if header is None or "external_id" not in header:
                raise ErasureFileError("the CSV has no header with external_id")
            id_at, width = header.index("external_id"), len(header)
            out.write("".join(pending).encode())
            pending.clear()
            mark = 0  # pending[mark:] are the lines of the row being read
            for row in reader:
                if reader.line_num in wanted:
                    wanted.discard(reader.line_num)
                    replacement = self._row(reader.line_num, row, id_at, width, pending[mark:])
                    if replacement is not None:
                        out.write(("".join(pending[:mark]) + replacement).encode())
                        pending.clear()
                if len(pending) >= 4096 or not wanted:
                    out.write("".join(pending).encode())
                    pending.clear()
                mark = len(pending)
                if not wanted:
                    break
            while piece := text.read(CHUNK):  # the rest, as text: no more rows to look at
                out.write(piece.encode())
        except csv.Error as exc:
            raise ErasureFileError(f"the CSV does not parse at line {reader.line_num} ({type(exc).__name__})") \
                from None
        except UnicodeDecodeError:
            raise ErasureFileError(f"the CSV is not UTF-8 near line {reader.line_num + 1}") from None
        finally:
            text.detach()
        if wanted:
            raise ErasureFileError(f"line {min(wanted)} is not the last line of a CSV row")

    def _row(self, number: int, row: list[str], id_at: int, width: int, physical: list[str]) -> str | None:
        if len(row) != width:
            raise ErasureFileError(f"line {number} does not have the header's {width} fields")
        external_id = row[id_at]
        if external_id.startswith(CSV_MARK):
            self.result.already += 1
            return None
        if not self.matches(external_id):
            raise ErasureFileError(f"line {number} does not hold the erased record")
        self.result.masked += 1
        self.result.external_ids.add(external_id)
        last = physical[-1]
        ending = next((e for e in ("\r\n", "\n", "\r") if last.endswith(e)), "")
        fields = [""] * width
        # As many physical lines as the row had, so that the rows after it keep their numbers.
        fields[id_at] = f"{CSV_MARK}{self.erasure_id}:{number}" + "\n" * (len(physical) - 1)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=ending).writerow(fields)
        return buffer.getvalue()


_SPACE = re.compile(r"[ \t\r\n]*")


class _JsonArrayMasker(_Masker):
    """Elements of the top-level array by position, each found by the json module's C scanner (`raw_decode`
    on the text read so far) and copied as it was unless it is masked; the whitespace around it stays."""

    def run(self, src, out) -> None:
        wanted = set(self.wanted)
        raw_decode = json.JSONDecoder().raw_decode
        decode = codecs.getincrementaldecoder("utf-8")(errors="strict").decode
        buf, eof = "", False
        at = i = position = 0  # buf[:at] is written, buf[at:i] scanned; position: elements read so far
        expect = "["
        while expect != "done":
            i = _SPACE.match(buf, i).end()
            if i < len(buf):
                char = buf[i]
                if expect != "element" or (char == "]" and position == 0):
                    if (expect, char) in (("[", "["), (",", ",")):
                        expect = "element"
                    elif char == "]" and expect in (",", "element"):
                        expect = "done"
                    else:
                        raise ErasureFileError(f"the JSON array does not parse after record {position}")
                    i += 1
                    continue
                try:
                    end = raw_decode(buf, i)[1]
                except json.JSONDecodeError:
                    end = None
                if end is not None and (end < len(buf) or eof):  # else the chunk's end may have cut it: read on
                    position += 1
                    if position in wanted:
                        wanted.discard(position)
                        replacement = self.json_unit(position, buf[i:end].encode(), "record")
                        if replacement is not None:
                            out.write(buf[at:i].encode() + replacement)
                            at = end
                    i, expect = end, ","
                    if i - at > CHUNK:  # keep the buffer short: write what is settled
                        out.write(buf[at:i].encode())
                        buf, i, at = buf[i:], 0, 0
                    continue
            if eof:
                raise ErasureFileError(f"the JSON array is cut after record {position}")
            chunk = src.read(CHUNK)
            eof = not chunk
            buf, i, at = buf[at:] + decode(chunk, final=eof), i - at, 0  # buf[:at] was written already
        out.write(buf[at:].encode())
        shutil.copyfileobj(src, out, CHUNK)  # after the array: whitespace only, as it was
        if wanted:
            raise ErasureFileError(f"record {min(wanted)} is past the end of the JSON array")
