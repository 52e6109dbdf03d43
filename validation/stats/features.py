"""What every feature profile holds: row counts, the feature-bin x label table and distinct count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sketches import DistinctCount


def add_tables(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """Sum two feature-bin x label tables; both sides must agree on having labels."""
    if a is None and b is None:
        return None
    if a is None or b is None:
        raise ValueError("cannot merge a labelled profile with an unlabelled one")
    return a + b


def class_grouping(y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Row order that groups rows by label column, and the group boundaries."""
    counts = np.bincount(y, minlength=n_classes)
    if n_classes <= 16:
        # A few boolean scans beat a full argsort for the usual handful of classes.
        order = np.concatenate(
            [np.flatnonzero(y == c) for c in range(n_classes) if counts[c]] or [np.zeros(0, np.intp)]
        )
    else:
        order = np.argsort(y, kind="stable")
    return order, np.concatenate(([0], np.cumsum(counts)))


@dataclass
class FeatureProfile:
    """Fields and merge rules shared by numeric and categorical feature profiles."""

    count: int
    missing: int
    hist: np.ndarray
    label_hist: np.ndarray | None
    distinct: DistinctCount

    kind = ""

    @property
    def present(self) -> int:
        """Rows with a value (finite for numbers): the histogram's total."""
        return int(self.hist.sum())

    def _merge_common(self, other: FeatureProfile) -> dict:
        if other.kind != self.kind or other.hist.shape != self.hist.shape:
            raise ValueError(f"cannot merge a {self.kind} profile with a {other.kind} one")
        return {
            "count": self.count + other.count,
            "missing": self.missing + other.missing,
            "hist": self.hist + other.hist,
            "label_hist": add_tables(self.label_hist, other.label_hist),
            "distinct": self.distinct.merge(other.distinct),
        }

    def _common_dict(self) -> dict:
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "hist": self.hist.tolist(),
            "label_hist": None if self.label_hist is None else self.label_hist.tolist(),
            "distinct": self.distinct.to_dict(),
        }

    @staticmethod
    def _common_fields(d: dict) -> dict:
        table = d["label_hist"]
        return {
            "count": d["count"],
            "missing": d["missing"],
            "hist": np.asarray(d["hist"], dtype=np.int64),
            "label_hist": None if table is None else np.asarray(table, dtype=np.int64),
            "distinct": DistinctCount.from_dict(d["distinct"]),
        }
