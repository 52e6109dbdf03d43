"""Rewriting the files that hold an erased record: raw payloads masked line by line, Parquet copies without its rows.

Pure file code (no Django): the callers say which lines to mask and how to recognise the erased record
(`matches(external_id) -> bool`, a keyed-hash comparison, so no external id needs to be kept anywhere).
Every rewrite streams: a payload is read in chunks, a Parquet file one row group at a time, into a
temporary file beside the original, which is flushed to disk and renamed over it; a reader sees the old
file or the new one, never half of one. Each rewrite is idempotent: a masked line stays masked, a
removed row stays removed, and a file with nothing left to change is left as it is.

What a masked unit becomes (every other record keeps its line number or position, the file still
parses as its format):
- NDJSON: the line becomes `{"__erased": <erasure id>}` (its line ending kept).
- JSON array: the element becomes `{"__erased": <erasure id>}` (the whitespace around it kept).
- CSV: every field of the row becomes empty except `external_id`, which becomes `__erased:<erasure id>:<line>`
  (unique per line, so the file still has no duplicate ids). A row that spanned k lines (quoted newlines)
  keeps k lines: its marker carries k - 1 newlines.
"""
from .parquet import ParquetRewritten, drop_parquet_rows, lineage_holds_items, lineage_holds_record, value_counts
from .payloads import CSV_MARK, ERASED_KEY, PayloadMasked, mask_payload
from .replace import ErasureFileError

__all__ = ["CSV_MARK", "ERASED_KEY", "ErasureFileError", "ParquetRewritten", "PayloadMasked", "drop_parquet_rows",
           "lineage_holds_items", "lineage_holds_record", "mask_payload", "value_counts"]
