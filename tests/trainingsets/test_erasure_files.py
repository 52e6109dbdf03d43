"""Masking payload lines and dropping Parquet rows: streamed, in place, idempotent, every other record as it was."""
import csv
import gzip
import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collection.parsing import PayloadParser
from trainingsets import erasure_files
from trainingsets.erasure_files import ErasureFileError, drop_parquet_rows, mask_payload


def is_erased(external_id: str) -> bool:
    return external_id in {"b", "d"}


def records(ids) -> list[dict]:
    return [{"external_id": i, "features": {"n": n, "who": f"name of {i}"}} for n, i in enumerate(ids)]


def ndjson(rows) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def parsed_ids(data: bytes, fmt: str) -> list[tuple[int, str]]:
    return [(r.line, r.external_id) for r in PayloadParser(io.BytesIO(data), fmt, max_json_bytes=2**30)]


def test_ndjson_lines_are_masked_in_place_and_the_other_lines_keep_their_bytes_and_numbers(tmp_path):
    original = ndjson(records("abcde"))
    path = tmp_path / "p.ndjson"
    path.write_bytes(original)
    result = mask_payload(path, fmt="ndjson", gzipped=False, lines=[2, 4], erasure_id=7, matches=is_erased)
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == lines[3] == b'{"__erased":7}'
    kept = original.split(b"\n")
    assert [lines[i] for i in (0, 2, 4, 5)] == [kept[i] for i in (0, 2, 4, 5)]
    assert (result.masked, result.already, result.rewritten) == (2, 0, True)
    assert result.external_ids == {"b", "d"}
    assert b"name of b" not in path.read_bytes() and b"name of d" not in path.read_bytes()
    assert not list(tmp_path.glob(".*partial"))


def test_masking_again_finds_the_lines_masked_and_leaves_the_file_alone(tmp_path):
    path = tmp_path / "p.ndjson"
    path.write_bytes(ndjson(records("abcde")))
    mask_payload(path, fmt="ndjson", gzipped=False, lines=[2, 4], erasure_id=7, matches=is_erased)
    before = path.read_bytes(), path.stat().st_mtime_ns
    again = mask_payload(path, fmt="ndjson", gzipped=False, lines=[2, 4], erasure_id=7, matches=is_erased)
    assert (again.masked, again.already, again.rewritten) == (0, 2, False)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_lines_across_chunk_boundaries_crlf_endings_and_a_last_line_without_newline_are_masked(tmp_path, monkeypatch):
    monkeypatch.setattr(erasure_files.payloads, "CHUNK", 7)  # every line spans several reads
    body = b"\r\n".join(orjson.dumps(r) for r in records("abcd"))  # no newline after the last line
    path = tmp_path / "p.ndjson"
    path.write_bytes(body)
    mask_payload(path, fmt="ndjson", gzipped=False, lines=[2, 4], erasure_id=3, matches=is_erased)
    assert path.read_bytes().split(b"\r\n") == [orjson.dumps(records("a")[0]), b'{"__erased":3}',
                                                orjson.dumps(records("abc")[2]), b'{"__erased":3}']


def test_a_gzipped_payload_stays_gzipped(tmp_path):
    path = tmp_path / "p.ndjson.gz"
    path.write_bytes(gzip.compress(ndjson(records("abcde"))))
    mask_payload(path, fmt="ndjson", gzipped=True, lines=[4], erasure_id=1, matches=is_erased)
    text = gzip.decompress(path.read_bytes())
    assert text.split(b"\n")[3] == b'{"__erased":1}'
    assert [i for _, i in parsed_ids(text.replace(b'{"__erased":1}\n', b""), "ndjson")] == ["a", "b", "c", "e"]


def test_a_line_that_holds_another_record_is_refused_and_the_file_kept(tmp_path):
    original = ndjson(records("abcde"))
    path = tmp_path / "p.ndjson"
    path.write_bytes(original)
    with pytest.raises(ErasureFileError) as refused:
        mask_payload(path, fmt="ndjson", gzipped=False, lines=[2, 3], erasure_id=1, matches=is_erased)
    assert str(refused.value) == "line 3 does not hold the erased record"
    assert "c" not in str(refused.value).split()
    with pytest.raises(ErasureFileError, match="line 9 is past the end"):
        mask_payload(path, fmt="ndjson", gzipped=False, lines=[9], erasure_id=1, matches=is_erased)
    assert path.read_bytes() == original
    assert not list(tmp_path.glob(".*partial"))


def test_csv_rows_are_emptied_but_for_a_unique_marker_and_later_rows_keep_their_line_numbers(tmp_path):
    original = ('external_id,who,n\r\na,"Ann",1\r\nb,"Bob\nBobson",2\r\nc,Cy,3\r\nd,"Di, D",4\r\ne,Ed,5\r\n')
    before = parsed_ids(original.encode(), "csv")
    assert before == [(2, "a"), (4, "b"), (5, "c"), (6, "d"), (7, "e")]
    path = tmp_path / "p.csv"
    path.write_text(original, newline="")
    result = mask_payload(path, fmt="csv", gzipped=False, lines=[4, 6], erasure_id=9, matches=is_erased)
    data = path.read_bytes()
    assert b"Bob" not in data and b"Di" not in data
    after = parsed_ids(data, "csv")
    assert after == [(2, "a"), (4, "__erased:9:4\n"), (5, "c"), (6, "__erased:9:6"), (7, "e")]
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[4] == ["__erased:9:6", "", ""] and rows[1] == ["a", "Ann", "1"]
    assert data.startswith(b'external_id,who,n\r\na,"Ann",1\r\n') and data.endswith(b"e,Ed,5\r\n")
    assert result.masked == 2
    assert mask_payload(path, fmt="csv", gzipped=False, lines=[4, 6], erasure_id=9, matches=is_erased).already == 2


def test_json_array_elements_are_masked_by_position(tmp_path, monkeypatch):
    monkeypatch.setattr(erasure_files.payloads, "CHUNK", 5)
    rows = records("abcde")
    rows[1]["features"]["who"] = 'tricky ] , { " \\ text'  # brackets and quotes inside a string
    original = b"[\n  " + b",\n  ".join(orjson.dumps(r) for r in rows) + b"\n]\n"
    path = tmp_path / "p.json"
    path.write_bytes(original)
    mask_payload(path, fmt="json", gzipped=False, lines=[2, 4], erasure_id=5, matches=is_erased)
    items = orjson.loads(path.read_bytes())
    assert items[1] == items[3] == {"__erased": 5}
    assert [items[i] for i in (0, 2, 4)] == [rows[i] for i in (0, 2, 4)]
    assert path.read_bytes().count(b"\n") == original.count(b"\n")
    assert mask_payload(path, fmt="json", gzipped=False, lines=[2, 4], erasure_id=5, matches=is_erased).already == 2


def test_the_first_and_last_elements_of_a_json_array_can_be_masked(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes(orjson.dumps(records(["b", "x", "d"])))
    mask_payload(path, fmt="json", gzipped=False, lines=[1, 3], erasure_id=2, matches=is_erased)
    assert orjson.loads(path.read_bytes()) == [{"__erased": 2}, records(["b", "x"])[1], {"__erased": 2}]
    with pytest.raises(ErasureFileError, match="record 4 is past the end"):
        mask_payload(path, fmt="json", gzipped=False, lines=[4], erasure_id=2, matches=is_erased)


def parquet_copy(path, ids, *, group: int):
    table = pa.table({"__external_id": pa.array(ids, pa.string()), "n": pa.array(range(len(ids)), pa.int64())})
    table = table.replace_schema_metadata({b"origin": b"test"})
    pq.write_table(table, path, row_group_size=group, compression="zstd")


def test_parquet_rows_are_dropped_group_by_group_keeping_schema_and_compression(tmp_path):
    path = tmp_path / "c.parquet"
    parquet_copy(path, list("abcdefg"), group=3)
    result = drop_parquet_rows(path, external_ids={"b", "d"})
    table = pq.read_table(path)
    assert table.column("__external_id").to_pylist() == list("acefg")
    assert table.column("n").to_pylist() == [0, 2, 4, 5, 6]
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2, 2, 1]
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert table.schema.metadata == {b"origin": b"test"}
    assert (result.rows, result.rows_removed, result.rewritten) == (7, 2, True)
    again = drop_parquet_rows(path, external_ids={"b", "d"})
    assert (again.rows_removed, again.rewritten) == (0, False)


def test_without_the_ids_parquet_rows_are_found_by_the_predicate_and_an_emptied_group_goes(tmp_path):
    path = tmp_path / "c.parquet"
    parquet_copy(path, ["a", "b", "d", "e"], group=1)
    result = drop_parquet_rows(path, matches=is_erased)
    assert pq.read_table(path).column("__external_id").to_pylist() == ["a", "e"]
    assert (result.rows_removed, result.row_groups) == (2, 2)


def test_lineage_is_searched_by_id_or_by_predicate_and_by_items(tmp_path):
    path = tmp_path / "lineage.parquet"
    pq.write_table(pa.table({
        "source_id": pa.array([1, 1, 2], pa.int64()), "external_id": ["a", "b", "b"],
        "item_id": pa.array([10, None, 12], pa.int64()), "label_origin": ["consensus", "feedback", "none"]}), path)
    assert erasure_files.lineage_holds_record(path, source_id=2, external_ids=["b"])
    assert not erasure_files.lineage_holds_record(path, source_id=2, external_ids=["a"])
    assert erasure_files.lineage_holds_record(path, source_id=1, matches=lambda e: e == "b")
    assert erasure_files.lineage_holds_items(path, item_ids=[12])
    assert not erasure_files.lineage_holds_items(path, item_ids=[11])
    assert erasure_files.lineage_holds_items(path, item_ids=[], records=[(1, "b")])
    assert not erasure_files.lineage_holds_items(path, item_ids=[], records=[(2, "b")])  # not a feedback label


def test_values_are_counted_in_the_parquet_copy_by_column_lists_included(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"__external_id": ["a", "b", "c"], "city": ["Rome", "Rome", "Oslo"],
                             "tags": pa.array([["x", "y"], ["y"], None], pa.list_(pa.string())), "n": [1, 2, 3]}),
                   path, row_group_size=2)
    counts = erasure_files.value_counts(path, {"city": {"Rome", "Oslo"}, "tags": {"y"}, "n": {"1"}, "gone": {"q"}})
    assert counts == {("city", "Rome"): 2, ("city", "Oslo"): 1, ("tags", "y"): 2, ("n", "1"): 0, ("gone", "q"): 0}
