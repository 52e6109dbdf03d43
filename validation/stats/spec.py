"""Binning fixed by the baseline: numeric edges, category vocabularies and label classes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .columns import category_codes, numeric_values
from .privacy import scan_series

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class FeatureSpec:
    """How one feature is binned: edges for a numeric one, a vocabulary for a categorical one."""

    kind: str
    edges: tuple[float, ...] = ()
    vocab: tuple[str, ...] = ()

    @property
    def n_bins(self) -> int:
        """Histogram length: under/overflow around the edges, or the vocabulary plus "other"."""
        return len(self.edges) + 1 if self.kind == NUMERIC else len(self.vocab) + 1

    def to_dict(self) -> dict:
        """Plain JSON-ready form."""
        return {"kind": self.kind, "edges": list(self.edges), "vocab": list(self.vocab)}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        """Inverse of to_dict."""
        return cls(d["kind"], tuple(float(e) for e in d["edges"]), tuple(d["vocab"]))


@dataclass(frozen=True)
class ProfileSpec:
    """Everything that must be identical for two profiles to merge or be compared bin by bin."""

    features: dict[str, FeatureSpec] = field(default_factory=dict)
    label: str | None = None
    label_classes: tuple[str, ...] = ()
    # Items per level of the quantile sketch (sketches.QuantileSketch): exact up to this many values.
    quantile_capacity: int = 2048
    hll_lg_k: int = 12
    # Distinct values are kept exactly up to this many; past it an HLL of a 1/256 hash sample.
    distinct_exact_cap: int = 4096
    distinct_sample_bits: int = 8

    @property
    def n_label_columns(self) -> int:
        """Columns of a feature-bin x label table: the classes, "other" and "missing"."""
        return len(self.label_classes) + 2

    def feature(self, name: str) -> FeatureSpec | None:
        """The spec of a feature, or None if the baseline never saw it."""
        return self.features.get(name)

    def to_dict(self) -> dict:
        """Plain JSON-ready form."""
        d = asdict(self)
        d["features"] = {k: v.to_dict() for k, v in self.features.items()}
        d["label_classes"] = list(self.label_classes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ProfileSpec:
        """Inverse of to_dict."""
        d = dict(d)
        for legacy in ("kll_k", "kll_stride"):  # the KLL's settings, before 0.12
            d.pop(legacy, None)
        d["features"] = {k: FeatureSpec.from_dict(v) for k, v in d["features"].items()}
        d["label_classes"] = tuple(d["label_classes"])
        return cls(**d)


def kind_of(series: pd.Series) -> str:
    """Numeric for numbers and datetimes; everything else (strings, booleans, objects) categorical."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return NUMERIC
    return CATEGORICAL


def quantile_edges(values: np.ndarray, n_bins: int) -> tuple[float, ...]:
    """Distinct quantile cut points; the last is nudged above the maximum so it stays in range."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ()
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, n_bins + 1)))
    # Bins are [e_i, e_i+1); nudging the top edge keeps the baseline maximum out of overflow.
    top = np.nextafter(edges[-1], np.inf)
    if edges.size == 1:
        edges = np.append(edges, top)
    else:
        edges[-1] = top
    return tuple(float(e) for e in edges)


def top_categories(series: pd.Series, top_k: int) -> tuple[str, ...]:
    """The top_k most frequent present values as strings, ties broken by value for determinism."""
    codes, uniques = category_codes(series)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    order = sorted(range(len(uniques)), key=lambda i: (-counts[i], uniques[i]))
    return tuple(uniques[i] for i in order[:top_k] if counts[i] > 0)


def spec_from_frame(
    df: pd.DataFrame,
    *,
    label: str | None = None,
    n_bins: int = 20,
    top_k: int = 100,
    privacy: bool = True,
    **sketch_options,
) -> ProfileSpec:
    """Derive the baseline's binning from a frame (or a sample of it): quantile edges, top-K.

    With `privacy`, a text feature whose share of personal data reaches the floor (privacy.py) gets no
    vocabulary, so no raw value of it is kept in the spec: every value of it is counted as "other".
    """
    features = {}
    for name in df.columns:
        col = df[name]
        if name == label:
            features[name] = FeatureSpec(CATEGORICAL, vocab=top_categories(col, top_k))
        elif kind_of(col) == NUMERIC:
            features[name] = FeatureSpec(NUMERIC, edges=quantile_edges(numeric_values(col), n_bins))
        elif privacy and scan_series(col).flagged:
            features[name] = FeatureSpec(CATEGORICAL)
        else:
            features[name] = FeatureSpec(CATEGORICAL, vocab=top_categories(col, top_k))
    # A reference without its label column has no classes: label and concept drift cannot be checked.
    classes = features[label].vocab if label in features else ()
    return ProfileSpec(features, label, classes, **sketch_options)
