"""Label values and consensus as plain functions."""
import pytest

from labeling.labels import InvalidLabel, LabelSpec, consensus
from tests.factories import CHOICES


def test_labels_are_checked_by_kind_and_agree_ignoring_case_spacing_and_order():
    spec = LabelSpec(kind="single_choice", choices=tuple(c["value"] for c in CHOICES))
    assert spec.check("neutral") == "neutral"
    with pytest.raises(InvalidLabel):
        spec.check(["neutral"])
    assert consensus(["A text ", "a  TEXT", "other"]).label == "A text "
    assert consensus(["x", "y"]).tie and consensus([]) is None
    assert consensus([["b", "a"], ["a", "b"], ["c"]]).agreement == pytest.approx(2 / 3)
