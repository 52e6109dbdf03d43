"""Labels in long format, encoded to integer indices: the one input of every quality function."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class LabelMatrix:
    """One row per label: which item, which rater, which class (all int32 indices).

    `item_ids`, `rater_ids` and `classes` map an index back to the original value (position =
    index). A rater may label an item more than once; each label then counts as one observation.
    """

    items: np.ndarray
    raters: np.ndarray
    labels: np.ndarray
    item_ids: tuple
    rater_ids: tuple
    classes: tuple

    def __post_init__(self):
        if not (len(self.items) == len(self.raters) == len(self.labels)):
            raise ValueError("items, raters and labels must have the same length")

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_raters(self) -> int:
        return len(self.rater_ids)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_labels(self) -> int:
        return len(self.labels)


def is_missing(value) -> bool:
    """None, NaN and the empty string are missing, never a class (the house rule for data)."""
    if value is None or (isinstance(value, str) and value == ""):
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _index(values: np.ndarray, order: tuple | None, what: str) -> tuple[np.ndarray, tuple]:
    """Integer codes of `values` and the tuple of distinct values they index.

    With `order` the codes follow it and a value outside it is an error; without, the distinct
    values are sorted (so the encoding does not depend on row order), or kept in order of first
    appearance when they cannot be sorted (mixed types).
    """
    if order is not None:
        order = tuple(order)
        lookup = {v: i for i, v in enumerate(order)}
        if len(lookup) != len(order):
            raise ValueError(f"{what} repeats a value")
        uniques, inverse = _unique(values)
        codes = np.empty(len(uniques), dtype=np.int32)
        for j, v in enumerate(uniques):
            v = v.item() if isinstance(v, np.generic) else v
            if v not in lookup:
                raise ValueError(f"{v!r} is not one of the {what}")
            codes[j] = lookup[v]
        return codes[inverse], order
    uniques, inverse = _unique(values)
    return inverse.astype(np.int32), tuple(v.item() if isinstance(v, np.generic) else v for v in uniques)


def _unique(values: np.ndarray) -> tuple[list | np.ndarray, np.ndarray]:
    if values.dtype != object:
        uniques, inverse = np.unique(values, return_inverse=True)
        return uniques, inverse.reshape(-1)
    try:
        uniques, inverse = np.unique(values, return_inverse=True)
        return uniques, inverse.reshape(-1)
    except TypeError:
        # Mixed types cannot be sorted: first appearance is still deterministic for given rows.
        seen: dict = {}
        inverse = np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.int64, count=len(values))
        return list(seen), inverse


def _as_array(values) -> np.ndarray:
    """A 1-d array of the values; object dtype when numpy would coerce mixed types to strings."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        return values
    if hasattr(values, "__array__"):  # a pandas Series or the like: its own dtype is right
        array = np.asarray(values)
        if array.ndim == 1:
            return array
    values = values if isinstance(values, list | tuple) else list(values)
    array = np.asarray(values)
    if array.ndim != 1 or (array.dtype.kind in "US" and not all(isinstance(v, str) for v in values)):
        array = np.empty(len(values), dtype=object)
        array[:] = values
    return array


def encode(items, raters, values, *, classes=None, item_ids=None, rater_ids=None) -> LabelMatrix:
    """Encode three equal-length iterables (item id, rater id, label value per label).

    `classes` fixes the class order (needed for ordinal and interval agreement); without it the
    classes are the sorted distinct values. `item_ids` / `rater_ids` fix those orders too (and
    may hold items or raters with no label). Labels whose value is missing (None, NaN, "") are
    dropped. A value, item or rater outside a given order raises ValueError naming it.
    """
    items, raters, values = _as_array(items), _as_array(raters), _as_array(values)
    if not (len(items) == len(raters) == len(values)):
        raise ValueError(f"items, raters and values differ in length: {len(items)}, {len(raters)}, {len(values)}")
    if values.dtype.kind in "OUSf":
        keep = ~np.fromiter((is_missing(v) for v in values), dtype=bool, count=len(values))
        if not keep.all():
            items, raters, values = items[keep], raters[keep], values[keep]
    item_codes, item_order = _index(items, item_ids, "item ids")
    rater_codes, rater_order = _index(raters, rater_ids, "rater ids")
    label_codes, class_order = _index(values, classes, "classes")
    return LabelMatrix(item_codes, rater_codes, label_codes, item_order, rater_order, class_order)


def item_votes(m: LabelMatrix) -> np.ndarray:
    """Counts per item and class (n_items x n_classes, int64)."""
    k = m.n_classes
    flat = np.bincount(m.items.astype(np.int64) * k + m.labels, minlength=m.n_items * k)
    return flat.reshape(m.n_items, k)


def rater_label_incidence(m: LabelMatrix) -> sparse.csr_matrix:
    """Sparse n_items x (n_raters * n_classes): how often rater r gave class l to each item.

    Column r * K + l; duplicate labels add up. Dawid-Skene's E-step is this matrix times the
    log confusion entries, and its M-step the transpose times the posteriors.
    """
    k = m.n_classes
    columns = m.raters.astype(np.int64) * k + m.labels
    data = np.ones(m.n_labels, dtype=np.float64)
    matrix = sparse.csr_matrix((data, (m.items, columns)), shape=(m.n_items, m.n_raters * k))
    matrix.sum_duplicates()
    return matrix


def ragged_arange(counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(c) for each c in counts, without a Python loop."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
