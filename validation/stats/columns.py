"""Turn a pandas column into the arrays profiling needs: floats with NaN, or category codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

MISSING_CODE = -1


def numeric_values(series: pd.Series) -> np.ndarray:
    """float64 values with every missing entry (NaN, None, NA, NaT) as NaN; datetimes in seconds."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        values = series.to_numpy(dtype="datetime64[ns]")
        out = values.view("int64").astype(np.float64) / 1e9
        out[np.isnat(values)] = np.nan
        return out
    if dtype == np.float64:
        return series.to_numpy()
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _list_text(value):
    """A list value as its JSON text (so each distinct list is one category); other values as they are."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False, default=str)
    return value


def category_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes (some signed int type) into the distinct present values as strings; -1 marks None,
    NaN and ""."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        # Dictionary-encoded data (Parquet with read_dictionary, pandas category) skips hashing.
        codes = series.cat.codes.to_numpy()
        uniques = series.cat.categories
    else:
        try:
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
        except TypeError:  # lists (multi-label labels, list features) cannot be hashed: each list is its JSON text
            codes, uniques = pd.factorize(series.map(_list_text), use_na_sentinel=True)
    names = [u if isinstance(u, str) else str(u) for u in uniques]
    empty = [i for i, u in enumerate(names) if u == ""]
    if empty:
        # An empty string is a missing value, never a category.
        codes = np.where(np.isin(codes, empty), MISSING_CODE, codes)
    return codes, names


def vocab_lookup(uniques: list[str], vocab: tuple[str, ...]) -> np.ndarray:
    """Map each distinct value to its vocabulary index, len(vocab) ("other") when absent."""
    if not uniques:
        return np.zeros(0, dtype=np.int64)
    idx = pd.Index(vocab, dtype=object).get_indexer(pd.Index(uniques, dtype=object))
    return np.where(idx < 0, len(vocab), idx).astype(np.int64)


def label_codes(series: pd.Series, classes: tuple[str, ...]) -> np.ndarray:
    """Per-row label column index: 0..L-1 a known class, L an unseen class, L+1 a missing label."""
    codes, uniques = category_codes(series)
    lut = np.append(vocab_lookup(uniques, classes), len(classes) + 1)
    # codes == -1 indexes the appended "missing" slot.
    return lut[codes]
