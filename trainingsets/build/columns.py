"""The version's schema: every feature of the batches it draws from, one type each, and the output names."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from collection.columnar import ARROW_TYPES, TIMESTAMP
from collection.parsing import LABEL_COLUMN

# The record's own columns, before the features; the label's three after them.
META = ("external_id", "source", "observed_at")
TAIL = ("label", "label_confidence", "split")
RESERVED = set(META) | set(TAIL)
PROJECT_LABEL_KINDS = {"single_choice": "str", "free_text": "str", "rating": "int", "multiple_choice": "list"}


def unify(a: str, b: str) -> str:
    """One JSON type for two seen in different batches, as ingest's rule does for one batch."""
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    if {a, b} <= {"list", "str"}:
        return "list"
    return "mixed"


@dataclass
class Column:
    name: str       # in the files
    feature: str | None  # in the records (None: a meta column)
    kind: str       # str, int, float, bool, list, mixed, null, timestamp

    @property
    def arrow(self) -> pa.DataType:
        if self.kind == "timestamp":
            return TIMESTAMP
        if self.kind == "null":
            return pa.string()  # a column of nothing but nulls still needs a type readers know
        return ARROW_TYPES[self.kind]

    def to_dict(self) -> dict:
        return {"name": self.name, "type": str(self.arrow), "feature": self.feature}


@dataclass
class VersionSchema:
    features: list[Column]
    label_kind: str

    @property
    def columns(self) -> list[Column]:
        meta = [Column("external_id", None, "str"), Column("source", None, "str"),
                Column("observed_at", None, "timestamp")]
        tail = [Column("label", None, self.label_kind), Column("label_confidence", None, "float"),
                Column("split", None, "str")]
        return meta + self.features + tail

    @property
    def arrow(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow) for c in self.columns])

    def to_list(self) -> list[dict]:
        return [c.to_dict() for c in self.columns]


def version_schema(batch_columns: Iterable[list], project_kinds: Iterable[str], *, batch_labels: bool) -> VersionSchema:
    """The schema from the batches' column types (in order of first appearance) and the projects' label kinds."""
    kinds: dict[str, str] = {}
    label = "null"
    for columns in batch_columns:
        for name, kind in columns:
            if name == LABEL_COLUMN:
                if batch_labels:
                    label = unify(label, kind)
                continue
            kinds[name] = unify(kinds[name], kind) if name in kinds else kind
    for kind in project_kinds:
        label = unify(label, PROJECT_LABEL_KINDS.get(kind, "mixed"))
    features = [Column(f"feature.{name}" if name in RESERVED else name, name, kind) for name, kind in kinds.items()]
    return VersionSchema(features, "str" if label == "null" else label)
