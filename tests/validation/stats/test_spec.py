"""The baseline's binning."""

import numpy as np
import pandas as pd

from validation.stats.spec import CATEGORICAL, NUMERIC, ProfileSpec, quantile_edges, spec_from_frame


def test_quantile_edges_keep_the_baseline_maximum_in_range():
    values = np.arange(100, dtype=float)
    edges = quantile_edges(values, 4)
    assert edges[0] == 0.0 and edges[-1] > 99.0
    assert np.searchsorted(edges, 99.0, side="right") == len(edges) - 1


def test_a_constant_column_gets_a_single_inner_bin():
    edges = quantile_edges(np.full(10, 0.5), 20)
    assert len(edges) == 2 and edges[0] == 0.5


def test_spec_from_frame_picks_kinds_top_k_and_label_classes():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "c"], "flag": [True, False, True, True], "y": [0, 1, 1, 0]})
    spec = spec_from_frame(df, label="y", top_k=2)
    assert spec.features["x"].kind == NUMERIC
    assert spec.features["c"].vocab == ("a", "b")
    assert spec.features["flag"].kind == CATEGORICAL
    assert spec.label_classes == ("0", "1")


def test_spec_round_trips_through_a_dict():
    spec = spec_from_frame(pd.DataFrame({"x": np.linspace(0, 1, 50), "c": list("ab") * 25}))
    assert ProfileSpec.from_dict(spec.to_dict()) == spec
