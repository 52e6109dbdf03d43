"""The payload parser names the line and the field of every problem, and reads what is well formed."""
import io
from datetime import datetime, timezone

import orjson
import pytest

from collection.parsing import PayloadError, PayloadParser


def parse(body: bytes, fmt: str = "ndjson"):
    parser = PayloadParser(io.BytesIO(body), fmt, max_json_bytes=1_000_000)
    return list(parser), parser


def ndjson(*records) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records) + b"\n"


def rec(i, **features):
    return {"external_id": f"r{i}", "features": features or {"x": i}}


def error_of(body: bytes, fmt: str = "ndjson") -> PayloadError:
    with pytest.raises(PayloadError) as caught:
        parse(body, fmt)
    return caught.value


def test_ndjson_records_are_read_with_their_lines_times_and_labels():
    body = ndjson(rec(1), {"external_id": "r2", "features": {"x": 2.5, "c": "a", "b": True, "n": None},
                           "observed_at": "2026-11-01T10:00:00", "label": "spam"})
    records, parser = parse(body)
    assert [r.external_id for r in records] == ["r1", "r2"]
    assert [r.line for r in records] == [1, 2]
    assert records[1].observed_at == datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
    assert records[1].label == "spam"
    assert parser.columns == {"x": "float", "__label": "str", "c": "str", "b": "bool", "n": "null"}


def test_malformed_json_names_the_line_and_the_nearest_field():
    body = ndjson(rec(1)) + b'{"external_id": "r2", "features": {"x": 1, "y": tru}}\n'
    err = error_of(body)
    assert err.line == 2
    assert err.field == "features.y"
    assert "malformed JSON" in err.message


def test_non_finite_numbers_are_refused_by_name():
    err = error_of(ndjson(rec(1)) + b'{"external_id": "r2", "features": {"x": NaN}}\n')
    assert (err.line, err.field) == (2, "features.x")
    assert "non-finite number NaN" in err.message


def test_a_missing_external_id_is_refused():
    err = error_of(ndjson({"features": {"x": 1}}))
    assert (err.line, err.field) == (1, "external_id")
    assert "missing" in err.message


@pytest.mark.parametrize("bad", [17, "", None, ["a"]])
def test_an_external_id_that_is_not_a_non_empty_string_is_refused(bad):
    err = error_of(ndjson(rec(1), {"external_id": bad, "features": {"x": 1}}))
    assert (err.line, err.field) == (2, "external_id")


def test_a_duplicate_external_id_names_both_lines():
    err = error_of(ndjson(rec(1), rec(2), rec(1)))
    assert (err.line, err.field, err.value) == (3, "external_id", "r1")
    assert "line 1" in err.message


def test_nested_feature_values_are_refused():
    err = error_of(ndjson({"external_id": "a", "features": {"deep": {"x": 1}}}))
    assert err.field == "features.deep"


def test_an_unexpected_record_field_is_named():
    err = error_of(ndjson({"external_id": "a", "features": {}, "lable": "x"}))
    assert err.field == "lable"


def test_reserved_feature_names_are_refused():
    err = error_of(ndjson({"external_id": "a", "features": {"__line": 1}}))
    assert err.field == "features.__line"


def test_a_bad_timestamp_is_refused_with_its_value():
    err = error_of(ndjson({"external_id": "a", "features": {}, "observed_at": "yesterday"}))
    assert (err.field, err.value) == ("observed_at", "yesterday")


@pytest.mark.parametrize(
    ("record", "field"),
    [({"external_id": "a\x00b", "features": {}}, "external_id"),
     ({"external_id": "a", "features": {"text": "x\x00"}}, "features.text"),
     ({"external_id": "a", "features": {"n\x00me": 1}}, "features.n\\u0000me"),
     ({"external_id": "a", "features": {}, "label": ["ok", "\x00"]}, "label")],
    ids=["id", "feature-value", "feature-name", "label"],
)
def test_a_nul_character_is_refused_naming_line_and_field(record, field):
    # PostgreSQL stores no NUL in text or jsonb: refused at upload, not failed in the worker's COPY.
    body = ndjson(rec(1), record)
    assert b"\\u0000" in body
    for fmt, payload, unit in (("ndjson", body, "line"), ("json", orjson.dumps([rec(1), record]), "record")):
        err = error_of(payload, fmt)
        assert (err.unit, err.line, err.field) == (unit, 2, field)
        assert "NUL" in err.message


def test_text_that_only_looks_like_an_escaped_nul_is_kept():
    records, _ = parse(ndjson({"external_id": "a", "features": {"text": "\\u0000"}}))
    assert records[0].features == {"text": "\\u0000"}


def test_csv_nul_characters_are_refused_by_column():
    err = error_of(b"external_id,x\na,1\nb,o\x00k\n", "csv")
    assert (err.line, err.field) == (3, "x") and "NUL" in err.message
    assert error_of(b"external_id,b\x00d\na,1\n", "csv").line == 1


def test_a_json_array_is_read_and_its_errors_name_the_record():
    records, _ = parse(orjson.dumps([rec(1), rec(2)]), "json")
    assert [r.line for r in records] == [1, 2]
    err = error_of(orjson.dumps([rec(1), {"external_id": "x", "features": 3}]), "json")
    assert (err.unit, err.line, err.field) == ("record", 2, "features")


def test_a_json_array_syntax_error_names_its_line():
    err = error_of(b'[\n{"external_id": "a", "features": {}},\n{"external_id": "b" "features": {}}\n]', "json")
    assert err.line == 3


def test_a_json_array_larger_than_its_limit_is_refused_before_parsing():
    with pytest.raises(PayloadError, match="NDJSON or CSV"):
        list(PayloadParser(io.BytesIO(b"[" + b" " * 100 + b"]"), "json", max_json_bytes=50))


def test_csv_cells_become_numbers_text_or_missing():
    body = b"external_id,amount,country,label,observed_at\na,1.5,DE,ok,2026-11-01T00:00:00Z\nb,,FR,,\nc,7,,bad,\n"
    records, parser = parse(body, "csv")
    assert [r.features for r in records] == [
        {"amount": 1.5, "country": "DE"}, {"amount": None, "country": "FR"}, {"amount": 7, "country": None}]
    assert [r.label for r in records] == ["ok", None, "bad"]
    assert records[0].observed_at.year == 2026
    assert parser.columns["amount"] == "float"


def test_csv_row_with_the_wrong_number_of_fields_names_its_line():
    err = error_of(b"external_id,x\na,1\nb,2,3\n", "csv")
    assert err.line == 3
    assert "3 fields" in err.message


def test_csv_without_an_external_id_column_is_refused():
    err = error_of(b"id,x\na,1\n", "csv")
    assert (err.line, err.field) == (1, "header")


def test_csv_non_finite_numbers_are_refused_by_column():
    err = error_of(b"external_id,x\na,1\nb,inf\n", "csv")
    assert (err.line, err.field, err.value) == (3, "x", "inf")


def test_csv_that_is_not_utf8_is_refused():
    err = error_of(b"external_id,x\na,1\nb,\xff\xfe\n", "csv")
    assert "UTF-8" in err.message


def test_csv_lines_count_quoted_newlines():
    records, _ = parse(b'external_id,text\na,"two\nlines"\nb,x\n', "csv")
    assert [r.line for r in records] == [3, 4]
