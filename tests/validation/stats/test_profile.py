"""Profiles: exact merges, order independence, lossless JSON, chunked and Parquet input."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from validation.stats import Profile, profile_chunks, profile_frame, profile_parquet, spec_from_frame

BASELINE = pd.DataFrame(
    {
        "x": np.linspace(-3, 3, 60),
        "c": ["a", "b", "c"] * 20,
        "y": ["up", "down"] * 30,
    }
)
# Small frames stay under the quantile sketch's capacity: every value is kept, so merges compare exactly.
SPEC = spec_from_frame(BASELINE, label="y", n_bins=6)

numbers = st.one_of(
    st.floats(-5, 5, allow_nan=False), st.just(np.nan), st.just(np.inf), st.sampled_from([0.5, 1.0])
)
categories = st.sampled_from(["a", "b", "c", "new", "", None])
labels = st.sampled_from(["up", "down", "left", None])


@st.composite
def frames(draw, max_rows=40):
    n = draw(st.integers(0, max_rows))
    return pd.DataFrame(
        {
            "x": pd.Series(draw(st.lists(numbers, min_size=n, max_size=n)), dtype="float64"),
            "c": pd.Series(draw(st.lists(categories, min_size=n, max_size=n)), dtype=object),
            "y": pd.Series(draw(st.lists(labels, min_size=n, max_size=n)), dtype=object),
        }
    )


def fingerprint(profile: Profile, sketches: bool = True) -> dict:
    """What must be equal between two profiles of the same data: exact fields exactly."""
    out = {"n_rows": profile.n_rows}
    for name, fp in sorted(profile.features.items()):
        d = fp.to_dict()
        d.pop("distinct")
        d["distinct"] = fp.distinct.estimate()
        if "quantiles" in d:
            d.pop("quantiles")
            sketch = fp.quantiles
            if sketches:
                d["kept"] = (sketch.n, sketch.is_exact)
                d["quantiles"] = None if sketch.empty else list(sketch.quantiles(np.linspace(0, 1, 11)))
            d["mean"] = round(d["mean"], 9)
            d["m2"] = round(d["m2"], 7)
        out[name] = d
    return out


@settings(max_examples=60, deadline=None)
@given(frames(), frames())
def test_profile_of_a_concatenation_equals_the_merge_of_the_profiles(a, b):
    whole = profile_frame(pd.concat([a, b], ignore_index=True), spec=SPEC)
    merged = profile_frame(a, spec=SPEC).merge(profile_frame(b, spec=SPEC))
    assert fingerprint(merged) == fingerprint(whole)


@settings(max_examples=40, deadline=None)
@given(frames(), frames(), frames())
def test_merging_profiles_is_associative_and_order_independent(a, b, c):
    pa, pb, pc = (profile_frame(f, spec=SPEC) for f in (a, b, c))
    left = pa.merge(pb).merge(pc)
    assert fingerprint(left) == fingerprint(pa.merge(pb.merge(pc)))
    assert fingerprint(left) == fingerprint(pc.merge(pa).merge(pb))


@settings(max_examples=40, deadline=None)
@given(frames())
def test_json_round_trips_are_lossless(frame):
    profile = profile_frame(frame, spec=SPEC)
    text = profile.to_json()
    again = Profile.from_json(text)
    assert again.to_json() == text
    assert fingerprint(again) == fingerprint(profile)


def test_missing_values_are_counted_and_never_become_a_category():
    frame = pd.DataFrame({"x": [1.0, np.nan, np.inf, -np.inf], "c": ["a", None, "", np.nan], "y": ["up"] * 4})
    profile = profile_frame(frame, spec=SPEC)
    x, c = profile.features["x"], profile.features["c"]
    assert (x.count, x.missing, x.nonfinite, x.present) == (4, 1, 2, 1)
    assert (c.count, c.missing, c.present) == (4, 3, 1)
    assert c.other_examples == {}


def test_moments_match_numpy():
    values = np.random.default_rng(3).gamma(2.0, size=10_000)
    profile = profile_frame(pd.DataFrame({"x": values}), spec=SPEC)
    x = profile.features["x"]
    assert x.mean == pytest.approx(values.mean(), rel=1e-12)
    assert x.variance == pytest.approx(values.var(), rel=1e-9)
    assert (x.min, x.max) == (values.min(), values.max())


def test_an_unknown_profile_version_is_refused():
    d = profile_frame(BASELINE, spec=SPEC).to_dict()
    d["version"] = 99
    with pytest.raises(ValueError, match="version"):
        Profile.from_dict(d)


def test_a_column_absent_from_a_chunk_counts_as_missing_there():
    a = BASELINE.iloc[:10]
    b = BASELINE.iloc[10:20].drop(columns="c")
    merged = profile_frame(a, spec=SPEC).merge(profile_frame(b, spec=SPEC))
    assert (merged.features["c"].count, merged.features["c"].missing) == (20, 10)


def test_a_column_of_a_new_type_is_profiled_as_what_it_is():
    frame = pd.DataFrame({"x": ["1", "two"], "c": [1.0, None]})
    profile = profile_frame(frame, spec=SPEC)
    assert profile.features["x"].kind == "categorical"
    assert profile.features["c"].kind == "numeric"
    assert profile_frame(pd.DataFrame({"x": [None, None]}, dtype=object), spec=SPEC).features["x"].kind == "numeric"


def test_chunks_and_parquet_give_the_whole_frame_profile(tmp_path):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {"x": rng.normal(size=5000), "c": rng.choice(["a", "b", "c", "d"], 5000), "y": rng.choice(["up", "down"], 5000)}
    )
    whole = fingerprint(profile_frame(frame, spec=SPEC), sketches=False)
    chunks = [frame.iloc[i : i + 1250] for i in range(0, 5000, 1250)]
    assert fingerprint(profile_chunks(chunks, spec=SPEC), sketches=False) == whole
    path = tmp_path / "frame.parquet"
    frame.to_parquet(path, row_group_size=1000)
    from_file = profile_parquet(path, spec=SPEC, batch_rows=1000)
    assert fingerprint(from_file, sketches=False) == whole


def test_profiles_with_different_specs_do_not_merge():
    other = spec_from_frame(BASELINE.assign(x=BASELINE["x"] * 2), label="y", n_bins=6)
    with pytest.raises(ValueError, match="spec"):
        profile_frame(BASELINE, spec=SPEC).merge(profile_frame(BASELINE, spec=other))
