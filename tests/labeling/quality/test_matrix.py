"""Encoding labels: class order, missing values, fixed id orders, errors that name the value."""

import numpy as np
import pytest

from labeling.quality import encode, item_votes


def test_classes_are_sorted_unless_an_order_is_given():
    m = encode(["a", "a", "b"], ["r1", "r2", "r1"], ["neg", "pos", "neg"])
    assert m.classes == ("neg", "pos") and m.labels.tolist() == [0, 1, 0]
    m = encode(["a", "a", "b"], ["r1", "r2", "r1"], ["neg", "pos", "neg"], classes=["pos", "neu", "neg"])
    assert m.classes == ("pos", "neu", "neg") and m.labels.tolist() == [2, 0, 2] and m.n_classes == 3
    assert m.items.dtype == m.raters.dtype == m.labels.dtype == np.int32


def test_a_value_outside_the_classes_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'maybe'"):
        encode(["a", "b"], ["r1", "r1"], ["yes", "maybe"], classes=("yes", "no"))
    with pytest.raises(ValueError, match="length"):
        encode(["a"], ["r1", "r2"], [1, 2])


def test_missing_values_are_dropped_never_a_class():
    m = encode(["a", "a", "b", "c"], ["r1", "r2", "r1", "r1"], ["x", None, float("nan"), ""])
    assert m.n_labels == 1 and m.classes == ("x",) and m.item_ids == ("a",)


def test_the_encoding_does_not_depend_on_row_order():
    rows = [("i2", "r1", True), ("i1", "r2", False), ("i1", "r1", True), ("i3", "r2", True)]
    a = encode(*zip(*rows))
    b = encode(*zip(*reversed(rows)))
    assert a.item_ids == b.item_ids == ("i1", "i2", "i3") and a.classes == (False, True)
    assert sorted(zip(a.items, a.raters, a.labels)) == sorted(zip(b.items, b.raters, b.labels))


def test_fixed_id_orders_keep_unlabelled_items_and_mixed_ids_keep_their_types():
    m = encode([3, 1], ["r", "r"], [1, 0], item_ids=[1, 2, 3])
    assert m.n_items == 3 and m.items.tolist() == [2, 0]
    assert item_votes(m).tolist() == [[1, 0], [0, 0], [0, 1]]
    mixed = encode([1, "1"], ["r", "r"], [0, 1])
    assert set(mixed.item_ids) == {1, "1"}
