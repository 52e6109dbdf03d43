"""Each record's label under the set's policy, best source first.

Order: a gold item's known answer, an adjudicated label, a consensus at or above the policy's
confidence, the latest process-feedback label, then the label that arrived with the batch. Among
the set's projects, a record labeled in several takes the best (then the most confident, then the
lowest project id). Consensus confidence is the project's (majority share or Dawid-Skene posterior);
gold and adjudicated labels are certain (1.0); feedback and batch labels have no confidence (null).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
from django.db import connection

from labeling.models import Annotation, QueueItem

GOLD, ADJUDICATED, CONSENSUS, FEEDBACK, BATCH, NONE = "gold", "adjudicated", "consensus", "feedback", "batch", "none"
ORIGINS = (GOLD, ADJUDICATED, CONSENSUS, FEEDBACK, BATCH, NONE)
_RANK = {GOLD: 0, ADJUDICATED: 1, CONSENSUS: 2, FEEDBACK: 3}
_DECIDED_BY_CONSENSUS = (QueueItem.Decided.MAJORITY, QueueItem.Decided.DAWID_SKENE)


def label_text(value) -> str | None:
    """A label as JSON text, keys sorted: how manifests and diffs compare labels."""
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _json(value) -> bytes:
    return orjson.dumps(value)


def _item_rows(project_ids: list[int], lo: int, hi: int):
    """The queue items of a range of records, labels left as JSON text.

    Plain SQL: through the ORM, decoding every item's consensus and gold answer as JSON took 9 of a
    1M-row build's seconds (docs/benchmarks.md, "Training sets"); only the chosen label is decoded.
    """
    table = QueueItem._meta.db_table
    marks = ", ".join(["%s"] * len(project_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, record_id, project_id, state, decided_by, CAST(consensus AS text), confidence, is_gold, "
            f"CAST(gold_answer AS text), consensus_run_id, submitted_count FROM {table} "
            f"WHERE project_id IN ({marks}) AND record_id BETWEEN %s AND %s", [*project_ids, lo, hi])
        yield from cursor


@dataclass
class ChunkLabels:
    """Per row of a chunk: the label, its confidence and where it came from; `drop` marks rows left out."""

    values: list
    confidence: list
    origin: list
    item_id: list
    project_id: list
    run_id: list
    drop_gold: np.ndarray
    raters: list  # the chosen item's human raters, None without an item


@dataclass
class LabelPolicy:
    project_ids: list[int]
    gold: bool = True
    adjudicated: bool = True
    consensus: bool = True
    min_confidence: float = 0.7
    feedback: bool = True
    batch_labels: bool = True

    @classmethod
    def of(cls, training_set, project_ids: list[int]) -> LabelPolicy:
        return cls(project_ids, training_set.use_gold, training_set.use_adjudicated, training_set.use_consensus,
                   training_set.min_confidence, training_set.use_feedback, training_set.use_batch_labels)

    def _item_candidate(self, state, decided, consensus, confidence, gold_answer, is_gold):
        """(origin, label as JSON text, confidence) of what an item offers under the policy, or None."""
        consensus = None if consensus == "null" else consensus
        if is_gold and gold_answer not in (None, "null"):
            return (GOLD, gold_answer, 1.0) if self.gold else None
        if state != QueueItem.State.COMPLETE or consensus is None:
            return None
        if decided == QueueItem.Decided.ADJUDICATED:
            return (ADJUDICATED, consensus, 1.0 if confidence is None else confidence) if self.adjudicated else None
        if (decided in _DECIDED_BY_CONSENSUS and self.consensus and confidence is not None
                and confidence >= self.min_confidence):
            return CONSENSUS, consensus, confidence
        return None

    def resolve(self, table: pa.Table) -> ChunkLabels:
        """The labels of one chunk of records (ordered by id) in three queries at most."""
        record_ids = table.column("__r").to_numpy()
        n = len(record_ids)
        best: dict[int, tuple] = {}
        gold_records: set[int] = set()
        if self.project_ids and n:
            lo, hi = int(record_ids[0]), int(record_ids[-1])
            for iid, rid, pid, state, decided, consensus, confidence, is_gold, answer, run, raters in \
                    _item_rows(self.project_ids, lo, hi):
                if is_gold:
                    gold_records.add(rid)
                found = self._item_candidate(state, decided, consensus, confidence, answer, is_gold)
                if found is None:
                    continue
                origin, value, conf = found
                key = (_RANK[origin], -conf, pid)
                if rid not in best or key < best[rid][0]:
                    best[rid] = (key, origin, value, conf, iid, pid, run if origin == CONSENSUS else None, raters)
            if self.feedback:
                latest = (Annotation.objects
                          .filter(project_id__in=self.project_ids, provenance=Annotation.Provenance.PROCESS_FEEDBACK,
                                  undone_at__isnull=True, item__record_id__gte=lo, item__record_id__lte=hi)
                          .order_by("created_at", "id")
                          .values_list("item__record_id", "item_id", "project_id", "value"))
                for rid, iid, pid, value in latest:
                    key = (_RANK[FEEDBACK], 0.0, 0)  # the latest feedback label wins among feedback labels
                    if value is not None and (rid not in best or key <= best[rid][0]):
                        best[rid] = (key, FEEDBACK, _json(value), None, iid, pid, None, None)
        texts = table.column("__l").to_pylist() if self.batch_labels else [None] * n
        out = ChunkLabels([None] * n, [None] * n, [NONE] * n, [None] * n, [None] * n, [None] * n,
                          np.zeros(n, dtype=bool), [None] * n)
        for i, rid in enumerate(record_ids.tolist()):
            if not self.gold and rid in gold_records:
                out.drop_gold[i] = True
                continue
            chosen = best.get(rid)
            if chosen is not None:
                _, origin, value, conf, iid, pid, run, raters = chosen
                out.values[i], out.confidence[i], out.origin[i] = orjson.loads(value), conf, origin
                out.item_id[i], out.project_id[i], out.run_id[i], out.raters[i] = iid, pid, run, raters
            elif texts[i] is not None:
                value = orjson.loads(texts[i])
                if value is not None:
                    out.values[i], out.origin[i] = value, BATCH
        return out


def as_arrow(values: list, kind: str, arrow_type: pa.DataType) -> pa.Array:
    """Label values as the label column's type: values of another JSON type become JSON text in a text
    column; in a typed column they cannot be written, so they become JSON text only where text is allowed."""
    if kind in ("str", "mixed"):
        return pa.array([v if v is None or isinstance(v, str) else label_text(v) for v in values], pa.string())
    if kind == "list":
        return pa.array([None if v is None else [x if isinstance(x, str) else label_text(x) for x in v]
                         if isinstance(v, list) else [v if isinstance(v, str) else label_text(v)] for v in values],
                        arrow_type)
    return pa.array(values, arrow_type)
