"""The difference between two versions of a set, read from their lineage files (four columns each, with pyarrow):
records added, removed, relabeled and moved between splits, counted per split, with a few examples of each."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from collection.models import Source

from ..models import TrainingSetVersion
from .lineage import label_value, lineage_path

COLUMNS = ["source_id", "external_id", "split", "label"]
KEYS = ["source_id", "external_id"]
KINDS = ("added", "removed", "relabeled", "moved_split")


def _side(version: TrainingSetVersion, side: str) -> pa.Table:
    """A version's lineage as (source_id, external_id, <side>_split, <side>_label, <side>_row): only the columns
    the diff needs are read, so a million-row version costs tens of megabytes, not its whole lineage."""
    table = pq.read_table(lineage_path(version), columns=COLUMNS)
    table = table.rename_columns(["source_id", "external_id", f"{side}_split", f"{side}_label"])
    return table.append_column(f"{side}_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))


def _counts(values: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    counted = pc.value_counts(values)
    return {str(v): int(n) for v, n in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())}


def _examples(table: pa.Table, order: str, names: dict) -> list[dict]:
    """The rows of `table` (a few) in the order of `order`, a row index, so that they are the same every time."""
    table = table.sort_by([(order, "ascending")])
    return [{"external_id": row["external_id"], "source": names.get(row["source_id"], str(row["source_id"])),
             "split": row["new_split"] if row["new_split"] is not None else row["old_split"],
             "old_split": row["old_split"], "new_split": row["new_split"],
             "old_label": label_value(row["old_label"]), "new_label": label_value(row["new_label"])}
            for row in table.to_pylist()]


def version_diff(old: TrainingSetVersion, new: TrainingSetVersion, examples: int = 10) -> dict:
    """What changed from `old` to `new`, matching rows by source and external id: `added` (only in new),
    `removed` (only in old), `relabeled` (in both, another label: JSON text compared, unlabeled counts as a label),
    `moved_split` (in both, another split: always 0 under a stable split rule, reported to prove it), per split
    (added, relabeled and moved_in by the new split; removed and moved_out by the old one), the most frequent
    label changes, and up to `examples` rows of each kind in file order."""
    before, after = _side(old, "old"), _side(new, "new")
    joined = before.join(after, keys=KEYS, join_type="full outer")
    in_old, in_new = pc.is_valid(joined["old_row"]), pc.is_valid(joined["new_row"])
    both = pc.and_(in_old, in_new)
    label_differs = pc.or_(pc.fill_null(pc.not_equal(joined["old_label"], joined["new_label"]), False),
                           pc.xor(pc.is_null(joined["old_label"]), pc.is_null(joined["new_label"])))
    masks = {
        "added": pc.invert(in_old),
        "removed": pc.invert(in_new),
        "relabeled": pc.and_(both, label_differs),
        "moved_split": pc.and_(both, pc.fill_null(pc.not_equal(joined["old_split"], joined["new_split"]), False)),
    }
    picked = {kind: joined.filter(mask) for kind, mask in masks.items()}
    totals = {kind: picked[kind].num_rows for kind in KINDS}
    changed = pc.or_(masks["relabeled"], masks["moved_split"])
    totals["unchanged"] = int(pc.sum(pc.and_(both, pc.invert(changed)).cast(pa.int64())).as_py() or 0)

    old_rows, new_rows = _counts(before["old_split"]), _counts(after["new_split"])
    per_split_counts = {
        "added": _counts(picked["added"]["new_split"]),
        "removed": _counts(picked["removed"]["old_split"]),
        "relabeled": _counts(picked["relabeled"]["new_split"]),
        "moved_in": _counts(picked["moved_split"]["new_split"]),
        "moved_out": _counts(picked["moved_split"]["old_split"]),
    }
    names = list(dict.fromkeys([*old.manifest.get("splits", {}), *new.manifest.get("splits", {}),
                                *old_rows, *new_rows]))
    splits = {name: {"old_rows": old_rows.get(name, 0), "new_rows": new_rows.get(name, 0),
                     **{kind: counts.get(name, 0) for kind, counts in per_split_counts.items()}}
              for name in names}

    pairs = []
    if picked["relabeled"].num_rows:
        grouped = picked["relabeled"].group_by(["old_label", "new_label"], use_threads=False).aggregate(
            [("new_row", "count")])
        pairs = sorted(({"old_label": label_value(r["old_label"]), "new_label": label_value(r["new_label"]),
                         "count": r["new_row_count"]} for r in grouped.to_pylist()),
                       key=lambda p: (-p["count"], json.dumps(p["old_label"]), json.dumps(p["new_label"])))[:examples]

    # The examples' rows first (a few per kind), then the names of their sources in one query.
    samples, ids = {}, set()
    for kind in KINDS:
        order = "old_row" if kind == "removed" else "new_row"
        head = picked[kind]
        if examples <= 0:
            head = head.slice(0, 0)
        elif head.num_rows > examples:
            head = head.take(pc.select_k_unstable(head, k=examples, sort_keys=[(order, "ascending")]))
        samples[kind] = (head, order)
        ids.update(head["source_id"].to_pylist())
    names_by_id = dict(Source.objects.filter(pk__in=ids).values_list("pk", "name"))
    return {
        "old": {"number": old.number, "rows": before.num_rows},
        "new": {"number": new.number, "rows": after.num_rows},
        **totals,
        "splits": splits,
        "relabel_pairs": pairs,
        "examples": {kind: _examples(head, order, names_by_id) for kind, (head, order) in samples.items()},
    }
