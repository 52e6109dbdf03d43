"""Column conversion: what counts as missing, non-finite or unseen."""

import numpy as np
import pandas as pd

from validation.stats.columns import category_codes, label_codes, numeric_values


def test_none_nan_and_empty_strings_are_missing_never_a_category():
    codes, uniques = category_codes(pd.Series(["a", None, np.nan, "", "b", "a"], dtype=object))
    assert uniques.count("") == 0 or codes[3] == -1
    assert list(codes == -1) == [False, True, True, True, False, False]
    assert {uniques[c] for c in codes if c >= 0} == {"a", "b"}


def test_categorical_dtype_uses_its_codes_and_still_treats_empty_as_missing():
    codes, uniques = category_codes(pd.Series(["x", "", None, "y"], dtype="category"))
    assert list(codes == -1) == [False, True, True, False]
    assert [uniques[c] for c in codes if c >= 0] == ["x", "y"]


def test_nullable_integers_and_datetimes_become_floats_with_nan():
    ints = numeric_values(pd.Series([1, None, 3], dtype="Int64"))
    assert np.isnan(ints[1]) and ints[2] == 3.0
    times = numeric_values(pd.Series(pd.to_datetime(["1970-01-01T00:00:10", None])))
    assert times[0] == 10.0 and np.isnan(times[1])


def test_label_codes_put_unseen_and_missing_labels_in_their_own_columns():
    y = label_codes(pd.Series(["up", "down", "sideways", None, ""]), ("down", "up"))
    assert list(y) == [1, 0, 2, 3, 3]
