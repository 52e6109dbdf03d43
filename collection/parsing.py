"""Parse and check batch payloads (JSON array, NDJSON, CSV) into records, naming the line and field of any error.

The same parser runs twice: while an upload streams in (so a bad payload is refused with 400 before
it is accepted) and in the ingest worker (which writes what it yields). It reads a binary stream of
uncompressed bytes and keeps only the current line, read in bounded pieces: a line (a CSV record) longer
than `max_record_bytes` is refused, naming it, without reading the rest of it. So payloads of any size
parse in bounded memory; only the external ids seen so far are kept, to refuse duplicates inside a batch.
"""
import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.conf import settings

from .timestamps import TimestampInvalid, timestamp_parse

RECORD_FIELDS = ("external_id", "features", "observed_at", "label")
# Columns the columnar copy adds beside the features; features may not use these names.
META_PREFIX = "__"
MAX_EXTERNAL_ID = 200
SCALARS = (str, int, float, bool)
# Distinct row shapes remembered per batch; past this, rows are checked one by one (slower, still right).
MAX_SHAPES = 10_000
RECORD_KEYS = frozenset(RECORD_FIELDS)
LABEL_COLUMN = "__label"
_KEY_BEFORE = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:')
_NON_FINITE = re.compile(rb"(?<![\w\"])-?(NaN|Infinity|inf|nan)(?![\w\"])")


class PayloadError(ValueError):
    """A payload problem, located: `line` is the line (NDJSON, CSV) or record position (JSON array)."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None, value=None,
                 unit: str = "line"):
        self.message = message
        self.line = line
        self.field = field
        self.value = value
        self.unit = unit
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.unit} {self.line}: " if self.line is not None else ""
        return f"{where}{self.message}"

    def as_dict(self) -> dict:
        out = {"line": self.line, "field": self.field}
        if self.value is not None:
            out["value"] = self.value if isinstance(self.value, (int, float, bool)) else str(self.value)[:200]
        return {k: v for k, v in out.items() if v is not None}


@dataclass(slots=True)
class ParsedRecord:
    line: int
    external_id: str
    features: dict
    observed_at: datetime | None
    label: object


@dataclass
class ColumnTypes:
    """The JSON types seen per column, summarised to one Parquet type per column."""

    seen: dict = field(default_factory=dict)

    def add(self, name: str, value) -> None:
        if value is None:
            self.seen.setdefault(name, set())
        else:
            kinds = self.seen.get(name)
            if kinds is None:
                self.seen[name] = {type(value)}
            else:
                kinds.add(type(value))

    def summary(self) -> dict[str, str]:
        return {name: _kind(kinds) for name, kinds in self.seen.items()}


def _kind(kinds: set) -> str:
    if not kinds:
        return "null"
    if kinds == {bool}:
        return "bool"
    if kinds <= {int, float} and bool not in kinds:
        return "int" if kinds == {int} else "float"
    if kinds == {str}:
        return "str"
    if kinds <= {list, str}:
        return "list"
    return "mixed"


NUL_MESSAGE = "contains a NUL character (\\u0000), which PostgreSQL cannot store in text or JSON"
ESCAPED_NUL = b"\\u0000"  # how a NUL character can appear in JSON text (a raw one is a syntax error)


def _shown(name: str) -> str:
    return name.replace("\x00", "\\u0000")


def nul_field(obj) -> str | None:
    """The field of a decoded record (or feedback event) whose name or text holds a NUL character, or None."""
    if not isinstance(obj, dict):
        return None
    for name, value in obj.items():
        if "\x00" in name:
            return _shown(name)
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key or (isinstance(item, str) and "\x00" in item):
                    return f"{name}.{_shown(key)}"
        elif isinstance(value, str) and "\x00" in value:
            return name
        elif isinstance(value, list) and any(isinstance(v, str) and "\x00" in v for v in value):
            return name
    return None


class RecordChecker:
    """Checks one record at a time and remembers the batch's external ids and column types."""

    def __init__(self, unit: str = "line", *, trusted: bool = False):
        self.unit = unit
        self.trusted = trusted
        self._seen_ids: set[str] = set()
        self.first_line: dict[str, int] = {}
        self.columns = ColumnTypes()
        self._shapes: set = set()
        self._last_moment: tuple = (None, None)

    def fail(self, message: str, line: int, field: str | None = None, value=None):
        raise PayloadError(message, line=line, field=field, value=value, unit=self.unit)

    def check_no_nul(self, obj, line: int) -> None:
        found = nul_field(obj)
        if found is not None:
            self.fail(f"{found} {NUL_MESSAGE}", line, found)

    def check_id(self, external_id, line: int) -> str:
        if external_id is None:
            self.fail("external_id is missing", line, "external_id")
        if not isinstance(external_id, str):
            self.fail(f"external_id must be a string, not {type(external_id).__name__}", line, "external_id",
                      external_id)
        if not external_id or len(external_id) > MAX_EXTERNAL_ID:
            self.fail(f"external_id must have 1 to {MAX_EXTERNAL_ID} characters", line, "external_id", external_id)
        first = self.first_line.setdefault(external_id, line)
        if first != line:
            self.fail(f"duplicate external_id {external_id!r}: already used at {self.unit} {first} of this batch",
                      line, "external_id", external_id)
        return external_id

    def check_features(self, features, line: int) -> dict:
        if type(features) is not dict:
            self.fail("features must be an object of name: value", line, "features")
        # Rows of a batch nearly always repeat a few shapes (names and value types): check a shape once.
        shape = (tuple(features), tuple(map(type, features.values())))
        if shape in self._shapes:
            return features
        known = self.columns.seen
        for name, value in features.items():
            if name not in known and (not name or name.startswith(META_PREFIX)):
                self.fail(f"feature name {name!r} is empty or reserved (names may not start with {META_PREFIX!r})",
                          line, f"features.{name}")
            if value is not None and type(value) not in SCALARS:
                self.fail(f"feature values must be a string, number, boolean or null, not {type(value).__name__}",
                          line, f"features.{name}")
            self.columns.add(name, value)
        if len(self._shapes) < MAX_SHAPES:
            self._shapes.add(shape)
        return features

    def check_observed_at(self, value, line: int) -> datetime | None:
        if value is None or value == "":
            return None
        if value == self._last_moment[0]:
            return self._last_moment[1]
        if not isinstance(value, str):
            self.fail("observed_at must be an ISO 8601 string", line, "observed_at", value)
        try:
            moment = timestamp_parse(value)  # a time without a zone is taken as UTC, as documented in docs/api.md
        except TimestampInvalid as exc:
            self.fail(f"observed_at {exc}", line, "observed_at", value)
        self._last_moment = (value, moment)
        return moment

    def check_label(self, value, line: int):
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(f"non-finite number {value!r}", line, "label", value)
        if value is not None and not isinstance(value, SCALARS):
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                self.fail("label must be a string, number, boolean, null or a list of strings", line, "label")
        self.columns.add(LABEL_COLUMN, value)
        return value

    def check_object(self, obj, line: int) -> ParsedRecord:
        """Check a decoded JSON record. The common, valid case runs inline: this is the ingest hot path."""
        if type(obj) is dict and obj.keys() <= RECORD_KEYS:
            external_id = obj.get("external_id")
            features = obj.get("features")
            if (type(external_id) is str and 0 < len(external_id) <= MAX_EXTERNAL_ID
                    and self.first_line.setdefault(external_id, line) == line
                    and type(features) is dict
                    and (tuple(features), tuple(map(type, features.values()))) in self._shapes):
                observed_at = obj.get("observed_at")
                label = obj.get("label")
                if type(label) is str or label is None:
                    self.columns.add(LABEL_COLUMN, label)
                else:
                    label = self.check_label(label, line)
                return ParsedRecord(line, external_id, features, self.check_observed_at(observed_at, line), label)
        return self._check_object_slowly(obj, line)

    def check_trusted_object(self, obj, line: int) -> ParsedRecord:
        """Re-read a record that was checked at upload: only what guards the database is checked again.

        A payload changed on disk since is still caught: a record that is not one falls through to
        the full checks, and a repeated id is refused, so the batch fails instead of being half-written.
        """
        if type(obj) is dict:
            external_id = obj.get("external_id")
            features = obj.get("features")
            if type(external_id) is str and type(features) is dict:
                if external_id in self._seen_ids:
                    self.fail(f"duplicate external_id {external_id!r}: already used earlier in this batch", line,
                              "external_id", external_id)
                self._seen_ids.add(external_id)
                label = obj.get("label")
                if label is not None and type(label) is not str:
                    label = self.check_label(label, line)
                return ParsedRecord(line, external_id, features, self.check_observed_at(obj.get("observed_at"), line),
                                    label)
        return self._check_object_slowly(obj, line)

    def _check_object_slowly(self, obj, line: int) -> ParsedRecord:
        if not isinstance(obj, dict):
            self.fail(f"a record must be a JSON object, not {type(obj).__name__}", line)
        if not obj.keys() <= RECORD_KEYS:
            extra = next(k for k in obj if k not in RECORD_KEYS)
            self.fail(f"unexpected field {extra!r}; a record has {', '.join(RECORD_FIELDS)}", line, extra)
        features = obj.get("features")
        if features is None:
            self.fail("features is missing", line, "features")
        return ParsedRecord(
            line,
            self.check_id(obj.get("external_id"), line),
            self.check_features(features, line),
            self.check_observed_at(obj.get("observed_at"), line),
            self.check_label(obj.get("label"), line),
        )


def _json_error(exc: orjson.JSONDecodeError, text: bytes, line: int | None, unit: str) -> PayloadError:
    """Turn a JSON syntax error into a message that names the line and the nearest field."""
    pos = exc.pos
    keys = _KEY_BEFORE.findall(text[max(0, pos - 2000):pos])
    near = keys[-1].decode(errors="replace") if keys else None
    if line is None:
        line, unit = exc.lineno, "line"
    bad = _NON_FINITE.search(text, max(0, pos - 1))
    if bad and bad.start() <= pos + 1:
        message = f"non-finite number {bad.group(0).decode()} is not allowed (JSON has no NaN or Infinity)"
    else:
        message = f"malformed JSON: {str(exc).split(':')[0]} at column {exc.colno}"
    field_name = f"features.{near}" if near and near not in RECORD_FIELDS else near
    return PayloadError(message, line=line, field=field_name, unit=unit)


def _too_long(limit: int, line: int, unit: str = "line") -> PayloadError:
    return PayloadError(f"is longer than the limit of {limit} bytes for one record (SIEVE_MAX_RECORD_BYTES)",
                        line=line, unit=unit)


def bounded_lines(stream, limit: int) -> Iterator[bytes]:
    """The lines of a binary stream, each read in at most `limit` + 1 bytes: a line longer than `limit`
    (without its newline) is a PayloadError naming it, raised before the rest of it is read."""
    readline = stream.readline
    number = 0
    while raw := readline(limit + 1):
        number += 1
        if len(raw) > limit and raw[-1:] != b"\n":
            raise _too_long(limit, number)
        yield raw


def iter_ndjson(stream, checker: RecordChecker, *, max_record_bytes: int) -> Iterator[ParsedRecord]:
    loads = orjson.loads
    check = checker.check_trusted_object if checker.trusted else checker.check_object
    for number, raw in enumerate(bounded_lines(stream, max_record_bytes), start=1):
        if not raw.strip():
            continue
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _json_error(exc, raw, number, "line") from None
        if ESCAPED_NUL in raw:  # rare: the (fast) byte search keeps the per-field walk off the hot path
            checker.check_no_nul(obj, number)
        yield check(obj, number)


def iter_json_array(stream, checker: RecordChecker, *, max_bytes: int) -> Iterator[ParsedRecord]:
    text = stream.read(max_bytes + 1)
    if len(text) > max_bytes:
        raise PayloadError(
            f"a JSON array body is parsed whole and may be at most {max_bytes} bytes uncompressed; "
            "send NDJSON or CSV for larger batches", field="body")
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _json_error(exc, text, None, "line") from None
    if not isinstance(items, list):
        raise PayloadError("a JSON body must be an array of records", line=1)
    checker.unit = "record"
    nul = ESCAPED_NUL in text
    for number, obj in enumerate(items, start=1):
        if nul:
            checker.check_no_nul(obj, number)
        yield checker.check_object(obj, number)


def _csv_value(raw: str):
    """CSV cells are text: empty is missing, numbers become numbers, the rest stays text."""
    if raw == "":
        return None
    first = raw[0]
    if first.isdigit() or first in "-+.":
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            number = float(raw)
        except ValueError:
            return raw
        if not math.isfinite(number):
            raise ValueError(raw)
        return number
    if raw.lower() in {"nan", "inf", "infinity"}:
        raise ValueError(raw)
    return raw


class _CsvLines:
    """The decoded lines of a CSV body for csv.reader: each line, and each record (which quoted newlines can
    spread over several lines) since the last `record_done()`, at most `limit` bytes."""

    def __init__(self, stream, limit: int):
        self.lines = bounded_lines(stream, limit)
        self.limit = limit
        self.number = 0
        self.record_bytes = 0
        self.record_line = 1

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = next(self.lines)
        self.number += 1
        if not self.record_bytes:
            self.record_line = self.number
        self.record_bytes += len(raw)
        if self.record_bytes > self.limit + 1:
            raise _too_long(self.limit, self.record_line)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"the CSV is not UTF-8 ({exc.reason})", line=self.number) from None

    def record_done(self) -> None:
        self.record_bytes = 0


def iter_csv(stream, checker: RecordChecker, *, max_record_bytes: int) -> Iterator[ParsedRecord]:
    # The record bound below is what limits a field; csv's own (per process) limit must only not be lower.
    if csv.field_size_limit() < max_record_bytes:
        csv.field_size_limit(max_record_bytes)
    text = _CsvLines(stream, max_record_bytes)
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise PayloadError("the CSV body is empty", line=1, field="header")
        if "external_id" not in header:
            raise PayloadError("the CSV header has no external_id column", line=1, field="header")
        seen = set()
        for name in header:
            if "\x00" in name:
                raise PayloadError(f"CSV header column {_shown(name)!r} {NUL_MESSAGE}", line=1, field=_shown(name))
            if not name or name in seen or name.startswith(META_PREFIX):
                raise PayloadError(f"CSV header column {name!r} is empty, repeated or reserved", line=1, field=name)
            seen.add(name)
        width = len(header)
        id_at = header.index("external_id")
        meta = {"observed_at", "label"}
        feature_cols = [(i, n) for i, n in enumerate(header) if n != "external_id" and n not in meta]
        observed_at = header.index("observed_at") if "observed_at" in header else None
        label_at = header.index("label") if "label" in header else None
        text.record_done()
        for row in reader:
            text.record_done()
            line = reader.line_num
            if not row:
                continue
            if len(row) != width:
                raise PayloadError(f"has {len(row)} fields, the header has {width}", line=line)
            for i, cell in enumerate(row):
                if "\x00" in cell:
                    raise PayloadError(f"{header[i]} {NUL_MESSAGE}", line=line, field=header[i], value=_shown(cell))
            features = {}
            for i, name in feature_cols:
                try:
                    features[name] = _csv_value(row[i])
                except ValueError:
                    raise PayloadError(f"non-finite number {row[i]!r}", line=line, field=name, value=row[i]) from None
            label = None
            if label_at is not None:
                try:
                    label = _csv_value(row[label_at])
                except ValueError:
                    raise PayloadError("non-finite number", line=line, field="label", value=row[label_at]) from None
            yield ParsedRecord(
                line,
                checker.check_id(row[id_at] or None, line),
                checker.check_features(features, line),
                checker.check_observed_at(row[observed_at] if observed_at is not None else None, line),
                checker.check_label(label, line),
            )
    except csv.Error as exc:
        raise PayloadError(f"malformed CSV: {exc}", line=reader.line_num) from None


class PayloadParser:
    """The checked records of one payload in order; once iterated, `columns` maps each column to its type."""

    def __init__(self, stream, fmt: str, *, max_json_bytes: int, max_record_bytes: int | None = None,
                 trusted: bool = False):
        self.stream = stream
        self.fmt = fmt
        self.max_json_bytes = max_json_bytes
        self.max_record_bytes = settings.SIEVE_MAX_RECORD_BYTES if max_record_bytes is None else max_record_bytes
        self.checker = RecordChecker(trusted=trusted)
        self.count = 0

    def __iter__(self) -> Iterator[ParsedRecord]:
        if self.fmt == "ndjson":
            records = iter_ndjson(self.stream, self.checker, max_record_bytes=self.max_record_bytes)
        elif self.fmt == "csv":
            records = iter_csv(self.stream, self.checker, max_record_bytes=self.max_record_bytes)
        elif self.fmt == "json":
            records = iter_json_array(self.stream, self.checker, max_bytes=self.max_json_bytes)
        else:
            raise PayloadError(f"unknown format {self.fmt!r}")
        for record in records:
            self.count += 1
            yield record

    @property
    def columns(self) -> dict[str, str]:
        return self.checker.columns.summary()
