"""Sketches: the deterministic quantile sketch (exact below capacity, proven bounds past it) and the
capped-exact/HLL distinct count."""

import base64
import functools

import datasketches as ds
import numpy as np
import pytest
from scipy import stats

from validation.stats.sketches import CAPACITY, DistinctCount, QuantileSketch


def _sketch(values, chunks=1):
    """One sketch fed `chunks` sorted pieces of the values in order."""
    sketch = QuantileSketch()
    sketch.add_sorted([np.sort(part) for part in np.array_split(values, chunks)])
    return sketch


def _merged(values, size):
    """The merge, left to right, of one sketch per piece of `size` values (how daily profiles are made)."""
    parts = [_sketch(values[i:i + size]) for i in range(0, values.size, size)]
    return functools.reduce(lambda a, b: a.merge(b), parts)


def _true_cdf(values, points):
    return np.searchsorted(np.sort(values), points, side="right") / values.size


def _check_bounds(sketch, values):
    """The sketch's CDF is within rank_error() of the data's everywhere, and its W1 to the data within w1_error()."""
    points = np.unique(np.concatenate([values, sketch.weighted()[0]]))
    assert np.abs(sketch.cdf(points) - _true_cdf(values, points)).max() <= sketch.rank_error() + 1e-12
    kept, cumulative = sketch.weighted()
    w1 = stats.wasserstein_distance(values, kept, v_weights=np.diff(cumulative, prepend=0))
    assert w1 <= sketch.w1_error() * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("law", ["lognormal", "normal", "poisson", "uniform_ties"])
def test_one_pass_and_chunked_sketches_stay_within_their_proven_bounds(law):
    rng = np.random.default_rng(0)
    values = {"lognormal": lambda: rng.lognormal(size=300_000), "normal": lambda: rng.normal(size=300_000),
              "poisson": lambda: rng.poisson(4, 300_000).astype(float),
              "uniform_ties": lambda: np.round(rng.uniform(0, 1, 300_000), 2)}[law]()
    for chunks in (1, 7, 40):
        sketch = _sketch(values, chunks)
        assert sketch.n == values.size
        _check_bounds(sketch, values)
        assert sketch.rank_error() < 0.002


def test_a_thousand_merged_chunks_of_a_hundred_stay_within_their_bounds_and_close_to_one_pass():
    values = np.random.default_rng(3).lognormal(size=100_000)
    merged, whole = _merged(values, 100), _sketch(values)
    _check_bounds(merged, values)
    assert merged.rank_error() < 0.005
    points = np.quantile(values, np.linspace(0.01, 0.99, 99))
    assert np.abs(merged.cdf(points) - whole.cdf(points)).max() <= merged.rank_error() + whole.rank_error()


def test_columns_with_few_distinct_values_stay_exact_at_any_size():
    """Equal values coalesce without error: counts, flags and coded categories are kept exactly."""
    values = np.random.default_rng(4).poisson(3, 1_000_000).astype(float)
    sketch = _merged(values, 100_000)
    assert sketch.is_exact and sketch.rank_error() == 0 and sketch.w1_error() == 0
    assert np.array_equal(sketch.values(), np.sort(values))


def test_below_capacity_every_value_is_kept_and_quantiles_are_exact():
    values = np.random.default_rng(1).normal(size=CAPACITY)
    sketch = _sketch(values, chunks=9)
    assert sketch.is_exact and sketch.rank_error() == 0.0
    ranks = np.linspace(0.001, 1, 50)
    assert np.array_equal(sketch.quantiles(ranks), np.quantile(values, ranks, method="inverted_cdf"))
    points = np.sort(values)
    assert np.allclose(sketch.cdf(points), np.arange(1, values.size + 1) / values.size)
    assert np.array_equal(sketch.values(), points)


def test_the_same_values_in_the_same_chunks_give_the_same_bytes_and_merges_commute():
    values = np.random.default_rng(2).lognormal(size=50_000)
    first, second = _merged(values, 700), _merged(values, 700)
    assert first.to_dict() == second.to_dict()
    a, b = _sketch(values[:30_000], 3), _sketch(values[30_000:], 2)
    assert a.merge(b).to_dict() == b.merge(a).to_dict()


def test_quantile_sketch_merge_does_not_change_its_operands():
    a, b = _sketch(np.arange(5000.0)), _sketch(np.arange(5000.0, 10000.0))
    before = a.to_dict()
    merged = a.merge(b)
    assert a.to_dict() == before
    assert merged.n == a.n + b.n


def test_a_sketch_round_trips_through_its_dict():
    sketch = _merged(np.random.default_rng(5).exponential(size=20_000), 3_000)
    again = QuantileSketch.from_dict(sketch.to_dict())
    assert again.to_dict() == sketch.to_dict()
    assert (again.rank_error(), again.w1_error(), again.n) == (sketch.rank_error(), sketch.w1_error(), sketch.n)


def test_a_profile_stored_with_a_kll_before_0_12_still_loads_within_the_kll_bound():
    values = np.random.default_rng(6).normal(size=40_000)
    kll = ds.kll_doubles_sketch(400)
    kll.update(np.sort(values)[4::8])
    extra = np.sort(values)[:10]
    old = {"k": 400, "stride": 8, "kll": base64.b64encode(kll.serialize()).decode(),
           "exact": base64.b64encode(extra.astype("<f8").tobytes()).decode()}
    sketch = QuantileSketch.from_dict(old)
    assert not sketch.is_exact and abs(sketch.n - 40_010) <= 2 * CAPACITY
    points = np.quantile(values, np.linspace(0.05, 0.95, 19))
    assert np.abs(sketch.cdf(points) - _true_cdf(values, points)).max() <= sketch.rank_error()
    assert QuantileSketch.from_dict({"k": 400, "stride": 8, "kll": None, "exact": old["exact"]}).is_exact


def test_an_empty_or_tiny_sketch_answers():
    empty = QuantileSketch()
    assert empty.empty and np.isnan(empty.quantiles(np.array([0.5]))).all()
    one = _sketch(np.array([3.0]))
    assert one.quantiles(np.array([0.0, 1.0])).tolist() == [3.0, 3.0]
    assert one.cdf(np.array([2.0, 3.0])).tolist() == [0, 1]


def test_distinct_count_is_exact_below_the_cap():
    count = DistinctCount(12, 100, 8)
    count.add_strings(["a", "b"])
    count.add_strings(["b", "c"])
    assert count.estimate() == 3.0


def test_distinct_count_of_a_continuous_column_is_close_above_the_cap():
    values = np.random.default_rng(1).normal(size=1_000_000)
    count = DistinctCount(12, 4096, 8)
    count.add_numbers(values, lambda: None)
    # 1/256 hash sample: relative std ~ sqrt(256/1e6) = 1.6%, plus HLL's 1.6%.
    assert abs(count.estimate() / 1_000_000 - 1) < 0.1


def test_distinct_counts_merge_as_a_union():
    a, b = DistinctCount(12, 100, 8), DistinctCount(12, 100, 8)
    a.add_numbers(np.array([1.0, 2.0]), lambda: np.array([1.0, 2.0]))
    b.add_numbers(np.array([2.0, 3.0]), lambda: np.array([2.0, 3.0]))
    merged = a.merge(b)
    assert merged.estimate() == 3.0
    assert DistinctCount.from_dict(merged.to_dict()).to_dict() == merged.to_dict()
