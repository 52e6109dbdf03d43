"""Import bodies (a JSON array, NDJSON, CSV) split into numbered lines, and how an import's problems are reported."""
import csv
import io
import json
import math
from dataclasses import dataclass

import orjson
from django.conf import settings

from ...labels import MULTIPLE, RATING

IMPORT_MAX_DEFAULT = 50_000
ERRORS_SHOWN = 100


IMPORT_FIELDS = ("external_id", "source", "rater", "value", "created_at")


class TooManyLabels(Exception):
    """More lines than one import takes (SIEVE_LABEL_IMPORT_MAX)."""

    def __init__(self, limit: int):
        super().__init__(f"an import takes at most {limit} labels; split the file")
        self.limit = limit


class LabelsRejected(Exception):
    """Lines that cannot be imported, each located: nothing was written."""

    code = "invalid_labels"

    def __init__(self, errors: list[dict]):
        self.errors = sorted(errors, key=lambda e: (e["line"], e["field"] or ""))
        self.count = len(errors)
        shown = f"; the first {ERRORS_SHOWN} are listed" if self.count > ERRORS_SHOWN else ""
        super().__init__(f"{self.count} problem(s) in the labels, nothing was imported{shown}")

    @property
    def shown(self) -> list[dict]:
        return self.errors[:ERRORS_SHOWN]

    @property
    def more(self) -> int:
        return max(self.count - ERRORS_SHOWN, 0)


@dataclass
class ImportLine:
    """One line of an import: its number (the line in NDJSON/CSV, the position in a JSON array, from 1), what it
    holds, and whether that came from CSV (cells are text: the value is read by the label kind)."""

    line: int
    data: object
    from_csv: bool = False
    malformed: str | None = None


def import_limit() -> int:
    return int(getattr(settings, "SIEVE_LABEL_IMPORT_MAX", IMPORT_MAX_DEFAULT))


def labels_parse(body: bytes, *, fmt: str, limit: int | None = None) -> list[ImportLine]:
    """Split an import body (fmt: json, ndjson, csv) into lines; a line that is not JSON is kept as malformed
    (reported with the others). TooManyLabels past `limit`; LabelsRejected when the body as a whole is unusable."""
    limit = import_limit() if limit is None else limit
    if fmt == "json":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise LabelsRejected([line_error(exc.lineno, "body", None, "malformed",
                                         f"malformed JSON: {str(exc).split(':')[0]} at column {exc.colno}")]) from None
        if not isinstance(data, list):
            raise LabelsRejected([line_error(1, "body", None, "malformed", "a JSON body is an array of labels")])
        if len(data) > limit:
            raise TooManyLabels(limit)
        return [ImportLine(n, obj) for n, obj in enumerate(data, start=1)]
    if fmt == "ndjson":
        lines = []
        for n, raw in enumerate(body.split(b"\n"), start=1):
            if not raw.strip():
                continue
            if len(lines) == limit:
                raise TooManyLabels(limit)
            try:
                lines.append(ImportLine(n, orjson.loads(raw)))
            except orjson.JSONDecodeError as exc:
                lines.append(ImportLine(n, None, malformed=f"malformed JSON: {str(exc).split(':')[0]}"))
        return lines
    if fmt == "csv":
        return _parse_csv(body, limit)
    raise ValueError(f"unknown import format {fmt!r}")


def _parse_csv(body: bytes, limit: int) -> list[ImportLine]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelsRejected([line_error(1, "body", None, "malformed",
                                         f"the CSV is not UTF-8 ({exc.reason})")]) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    lines = []
    try:
        header = next(reader, None)
        missing = [n for n in ("external_id", "rater", "value") if n not in (header or [])]
        unknown = [n for n in header or [] if n not in IMPORT_FIELDS]
        if missing or unknown or len(set(header)) != len(header):
            raise LabelsRejected([line_error(1, "header", header, "malformed",
                                         f"the header names the columns {list(IMPORT_FIELDS)} once each "
                                         f"(missing {missing}, unknown {unknown})")])
        for row in reader:
            if not row:
                continue
            if len(lines) == limit:
                raise TooManyLabels(limit)
            if len(row) != len(header):
                lines.append(ImportLine(reader.line_num, None,
                                        malformed=f"has {len(row)} fields, the header has {len(header)}"))
                continue
            lines.append(ImportLine(reader.line_num, {k: v for k, v in zip(header, row) if v != ""}, from_csv=True))
    except csv.Error as exc:
        raise LabelsRejected([line_error(reader.line_num, "body", None, "malformed",
                                         f"malformed CSV: {exc}")]) from None
    return lines


def csv_value(kind: str, text: str):
    """A CSV cell as a label of the kind: a rating is a number, a multiple choice a JSON array or `a|b`."""
    if kind == RATING:
        try:
            number = float(text)
        except ValueError:
            return text
        if not math.isfinite(number):
            return text
        return int(number) if number == int(number) else number
    if kind == MULTIPLE:
        if text.lstrip().startswith("["):
            try:
                return json.loads(text)
            except ValueError:
                return text
        return [part.strip() for part in text.split("|")]
    return text


def line_error(line: int, field_name: str | None, value, code: str, detail: str) -> dict:
    """One located problem of an import (a long value is cut short)."""
    if isinstance(value, str) and len(value) > 200:
        value = value[:200] + "…"
    return {"line": line, "field": field_name, "value": value, "code": code, "detail": detail}
