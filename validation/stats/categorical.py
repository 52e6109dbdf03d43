"""Profile of a categorical feature: counts over the baseline's top-K plus "other"."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .columns import category_codes, vocab_lookup
from .features import FeatureProfile
from .privacy import PrivacyCounts, mask_examples, scan
from .sketches import DistinctCount
from .spec import CATEGORICAL, ProfileSpec

# How many values outside the vocabulary are kept by name, so a report can show examples.
OTHER_EXAMPLES = 20


def _top_examples(counter: Counter) -> dict[str, int]:
    """The most frequent unseen values, ties by name, so merges are deterministic."""
    best = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:OTHER_EXAMPLES]
    return dict(best)


@dataclass
class CategoricalProfile(FeatureProfile):
    """hist[i] counts vocabulary entry i; the last slot counts every other present value.

    `privacy` (None when the privacy check was off) counts the personal data found (validation/stats/privacy.py).
    Any example that is personal data is kept masked; a feature whose share of personal data reaches the floor keeps
    no raw value at all: no example, and its distinct count drops its exact values (the HLL estimate only).
    """

    other_examples: dict[str, int]
    privacy: PrivacyCounts | None = None

    kind = CATEGORICAL

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        """Profile of both inputs; counts exact, other_examples the top names of each side."""
        examples = Counter(self.other_examples)
        examples.update(other.other_examples)
        privacy = other.privacy if self.privacy is None else self.privacy.merge(other.privacy)
        return _without_personal(CategoricalProfile(
            **self._merge_common(other), other_examples=_top_examples(examples), privacy=privacy
        ))

    def to_dict(self) -> dict:
        """Plain JSON-ready form ("privacy" only when the check ran)."""
        d = self._common_dict()
        d["other_examples"] = dict(self.other_examples)
        if self.privacy is not None:
            d["privacy"] = self.privacy.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> CategoricalProfile:
        """Inverse of to_dict (profiles from before the privacy check have no "privacy")."""
        privacy = PrivacyCounts.from_dict(d["privacy"]) if d.get("privacy") is not None else None
        return cls(**cls._common_fields(d), other_examples=dict(d["other_examples"]), privacy=privacy)


def _without_personal(fp: CategoricalProfile) -> CategoricalProfile:
    """A profile whose feature is flagged as personal data keeps none of its raw values."""
    if fp.privacy is not None and fp.privacy.flagged:
        fp.other_examples = {}
        fp.distinct.exact = None
    return fp


def profile_categorical(
    series: pd.Series,
    vocab: tuple[str, ...],
    spec: ProfileSpec,
    y: np.ndarray | None = None,
    *,
    privacy: bool = True,
) -> CategoricalProfile:
    """Profile a column of labels/strings; None, NaN and "" are missing, never a category.

    With `privacy`, the distinct values are checked for personal data (a sample of them) and examples masked.
    """
    codes, uniques = category_codes(series)
    n_uniques = len(uniques)
    lut = vocab_lookup(uniques, vocab)
    # Shift codes by one so the missing code -1 lands in slot 0 of the same bincount; one
    # array updated in place, because fresh 8 MB temporaries cost page faults per column.
    shifted = codes.astype(np.intp)
    shifted += 1
    if y is None:
        per_unique = np.bincount(shifted, minlength=n_uniques + 1)
        table = None
    else:
        n_cols = spec.n_label_columns
        shifted *= n_cols
        shifted += y
        flat = np.bincount(shifted, minlength=(n_uniques + 1) * n_cols)
        by_unique = flat.reshape(n_uniques + 1, n_cols)
        per_unique = by_unique.sum(axis=1)
        table = np.zeros((len(vocab) + 1, n_cols), dtype=np.int64)
        np.add.at(table, lut, by_unique[1:])
    counts = per_unique[1:]
    hist = np.bincount(lut, weights=counts, minlength=len(vocab) + 1).astype(np.int64)
    seen = [u for u, c in zip(uniques, counts) if c > 0]
    distinct = DistinctCount(spec.hll_lg_k, spec.distinct_exact_cap, spec.distinct_sample_bits)
    distinct.add_strings(seen)
    unseen = Counter(
        {u: int(c) for u, c, slot in zip(uniques, counts, lut) if c > 0 and slot == len(vocab)}
    )
    examples = _top_examples(unseen)
    return _without_personal(CategoricalProfile(
        count=int(shifted.size),
        missing=int(per_unique[0]),
        hist=hist,
        label_hist=table,
        distinct=distinct,
        other_examples=mask_examples(examples) if privacy else examples,
        privacy=scan(uniques, counts) if privacy else None,
    ))
