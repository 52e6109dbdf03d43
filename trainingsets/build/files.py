"""One version's files from the database (a build), or from an earlier version's files (a rebuild)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.db.models import Exists, OuterRef

from collection.models import Batch, Record

from ..identity import record_identity
from .columns import VersionSchema, version_schema
from .derived import WRITERS
from .labels import NONE, LabelPolicy, as_arrow, label_text
from .rows import eligible, record_chunks
from .splits import SplitRule
from .writer import LINEAGE_FILE, SplitCounts, VersionWriter, content_sha256, file_entries

Progress = Callable[[int, int], None]


@dataclass
class Built:
    """What a build learned on the way, for the manifest."""

    schema: VersionSchema
    splits: dict
    rows: int
    excluded: Counter = field(default_factory=Counter)
    batch_ids: set = field(default_factory=set)
    consensus_runs: set = field(default_factory=set)
    raters: Counter = field(default_factory=Counter)
    files: dict = field(default_factory=dict)
    content_sha256: str = ""

    def split_paths(self, folder: Path) -> dict[str, Path]:
        return {name: folder / f"{name}.parquet" for name in self.splits}


def _list_values(texts: list) -> list:
    """A list feature as lists of text: the database sends each value's JSON text."""
    out = []
    for text in texts:
        if text is None:
            out.append(None)
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = text  # a plain string value
        items = value if isinstance(value, list) else [value]
        out.append([x if isinstance(x, str) else orjson.dumps(x).decode() for x in items])
    return out


def _schema(training_set, source_ids: list[int]) -> VersionSchema:
    has_current = Record.objects.filter(batch_id=OuterRef("pk"), is_current=True)
    columns = (Batch.objects.filter(source_id__in=source_ids, status=Batch.Status.ADMITTED)
               .filter(Exists(has_current)).order_by("id").values_list("columns", flat=True))
    kinds = training_set.projects.values_list("label_kind", flat=True)
    return version_schema(columns, kinds, batch_labels=training_set.use_batch_labels)


def build_files(*, training_set, folder: Path, erased: set[str], progress: Progress | None = None) -> Built:
    """Write the version's split files and lineage into `folder` from the database's eligible records."""
    sources = dict(training_set.sources.values_list("id", "name"))
    source_ids = sorted(sources)
    schema = _schema(training_set, source_ids)
    policy = LabelPolicy.of(training_set, list(training_set.projects.values_list("id", flat=True)))
    rule = SplitRule.of(training_set)
    keep_unlabeled = training_set.unlabeled == "keep"
    total = eligible(source_ids).count()
    group_column = rule.feature if rule.kind == "group" else None
    if group_column and group_column not in {c.feature for c in schema.features}:
        group_column = None  # no batch has the group feature: every record lacks a group
    built = Built(schema, {}, 0)
    writer = VersionWriter(folder, schema, rule.names)
    done = 0
    try:
        for table in record_chunks(schema, source_ids):
            n = table.num_rows
            labels = policy.resolve(table)
            split, missing = rule.assign(table, group_column)
            texts = [label_text(v) for v in labels.values]
            keep = ~labels.drop_gold & ~missing
            if erased:
                ids = zip(table.column("__s").to_pylist(), table.column("__e").to_pylist())
                gone = np.fromiter((record_identity(s, e) in erased for s, e in ids), dtype=bool, count=n)
                built.excluded["erased"] += int((gone & keep).sum())
                keep &= ~gone
            unlabeled = np.fromiter((t is None for t in texts), dtype=bool, count=n)
            if not keep_unlabeled:
                built.excluded["no_label"] += int((unlabeled & keep).sum())
                keep &= ~unlabeled
            built.excluded["gold"] += int(labels.drop_gold.sum())
            built.excluded["no_observed_at" if rule.kind == "time" else "no_group"] += int(
                (missing & ~labels.drop_gold).sum())
            done += n
            if keep.any():
                _add_rows(writer, built, table, labels, texts, split, keep, schema, sources, rule)
            if progress:
                progress(done, total)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    built.splits = {name: counts.to_dict() for name, counts in writer.counts.items()}
    built.rows = sum(c.rows for c in writer.counts.values())
    return built


def _add_rows(writer, built, table, labels, texts, split, keep, schema, sources, rule) -> None:
    where = pa.array(keep)
    table = table.filter(where)
    index = np.flatnonzero(keep)
    split = split[index]
    pick = index.tolist()
    values = [labels.values[i] for i in pick]
    confidence = [labels.confidence[i] for i in pick]
    origins = [labels.origin[i] for i in pick]
    kept_texts = [texts[i] for i in pick]
    items = [labels.item_id[i] for i in pick]
    runs = [labels.run_id[i] for i in pick]
    source_ids = table.column("__s").to_pylist()
    columns = {"external_id": table.column("__e"), "source": pa.array([sources[s] for s in source_ids], pa.string()),
               "observed_at": table.column("__o")}
    for column in schema.features:
        raw = table.column(column.feature)
        columns[column.name] = pa.array(_list_values(raw.to_pylist()), column.arrow) if column.kind == "list" else raw
    columns["label"] = as_arrow(values, schema.label_kind, schema.columns[-3].arrow)
    columns["label_confidence"] = pa.array(confidence, pa.float64())
    names = np.asarray(rule.names, dtype=object)
    columns["split"] = pa.array(names[split].tolist(), pa.string())
    rows = pa.table([columns[f.name] for f in writer.arrow], schema=writer.arrow)
    lineage = {"source_id": source_ids, "external_id": table.column("__e"), "record_id": table.column("__r"),
               "batch_id": table.column("__b"), "item_id": items, "project_id": [labels.project_id[i] for i in pick],
               "label_origin": origins, "consensus_run_id": runs, "label": kept_texts, "label_confidence": confidence}
    writer.add(rows, lineage, split)
    writer.count(split, kept_texts, origins)
    built.batch_ids.update(table.column("__b").unique().to_pylist())
    built.consensus_runs.update(r for r in set(runs) if r is not None)
    # Only the rows kept: a record left out (no observed time, erased, ...) says nothing of the version.
    built.raters.update(labels.raters[i] for i in pick if labels.raters[i] is not None)


def rebuild_files(*, old_folder: Path, split_names: list[str], folder: Path, erased: set[str],
                  feedback_items: set[int] = frozenset(), progress: Progress | None = None) -> tuple[dict, int, int]:
    """Copy an earlier version's files without the rows whose record identity is in `erased`, and without
    the rows labeled by feedback on `feedback_items` (an actor's erased feedback).

    Returns (split counts, rows kept, rows dropped). The lineage file is filtered the same way and its
    row positions renumbered; labels and origins come from it, so the counts need no database.
    """
    lineage = pq.read_table(old_folder / LINEAGE_FILE)
    sources = lineage.column("source_id").to_pylist()
    ids = lineage.column("external_id").to_pylist()
    gone = np.fromiter((record_identity(s, e) in erased for s, e in zip(sources, ids)), dtype=bool,
                       count=lineage.num_rows)
    if feedback_items:
        origins = lineage.column("label_origin").to_pylist()
        items = lineage.column("item_id").to_pylist()
        gone |= np.fromiter((o == "feedback" and i in feedback_items for o, i in zip(origins, items)), dtype=bool,
                            count=lineage.num_rows)
    counts = {}
    kept_lineage = []
    total, done = lineage.num_rows, 0
    for name in split_names:
        mine = pc.equal(lineage.column("split"), name)
        positions = np.flatnonzero(mine.to_numpy(zero_copy_only=False))
        order = np.argsort(lineage.column("row").filter(mine).to_numpy(), kind="stable")
        part = lineage.filter(mine).take(pa.array(order))
        keep = ~gone[positions][order]
        source = pq.ParquetFile(old_folder / f"{name}.parquet")
        with pq.ParquetWriter(folder / f"{name}.parquet", source.schema_arrow) as out:
            offset = 0
            for group in range(source.num_row_groups):
                table = source.read_row_group(group)
                mask = keep[offset:offset + table.num_rows]
                offset += table.num_rows
                out.write_table(table.filter(pa.array(mask)))
                done += table.num_rows
                if progress:
                    progress(done, total)
        part = part.filter(pa.array(keep))
        part = part.set_column(part.schema.get_field_index("row"), "row", pa.array(np.arange(part.num_rows)))
        kept_lineage.append(part)
        split_counts = SplitCounts(rows=part.num_rows)
        for text, origin in zip(part.column("label").to_pylist(), part.column("label_origin").to_pylist()):
            split_counts.add(text, origin)
        counts[name] = split_counts.to_dict()
    pq.write_table(pa.concat_tables(kept_lineage), folder / LINEAGE_FILE)
    return counts, sum(c["rows"] for c in counts.values()), int(gone.sum())


def finish_files(*, folder: Path, splits: dict, formats: list[str]) -> tuple[dict, str]:
    """Write the derived formats, then hash every data file: (files entry of the manifest, content hash)."""
    names = []
    for split in splits:
        names.append(f"{split}.parquet")
        for fmt in formats:
            if fmt in WRITERS:
                WRITERS[fmt](folder / f"{split}.parquet", folder / f"{split}.{fmt}")
                names.append(f"{split}.{fmt}")
    rows = {split: counts["rows"] for split, counts in splits.items()}
    files = file_entries(folder, names, rows)
    return files, content_sha256(files)


__all__ = ["Built", "NONE", "build_files", "finish_files", "rebuild_files"]
