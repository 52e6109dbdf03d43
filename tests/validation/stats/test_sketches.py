"""Sketches: exact quantiles below EXACT_CAP, stride-fed KLL past it, and the capped-exact/HLL distinct count."""

import numpy as np

from validation.stats.sketches import EXACT_CAP, DistinctCount, QuantileSketch


def _sketch(values, stride=8, k=400, chunks=1):
    sketch = QuantileSketch(k, stride)
    for part in np.array_split(values, chunks):
        sketch.add_sorted([np.sort(part)])
    return sketch


def test_stride_sampled_quantiles_stay_within_the_documented_rank_error():
    values = np.random.default_rng(0).lognormal(size=300_000)
    for chunks in (1, 7):
        sketch = _sketch(values, chunks=chunks)
        points = np.quantile(values, np.linspace(0.01, 0.99, 99))
        true = np.searchsorted(np.sort(values), points, side="right") / values.size
        # KLL bound plus stride/2 ranks per chunk (see docs/validation.md).
        bound = sketch.rank_error() + chunks * 4 / values.size
        assert np.abs(sketch.cdf(points) - true).max() <= bound


def test_stride_one_on_a_small_sample_is_exact():
    values = np.arange(100.0)
    sketch = _sketch(values, stride=1)
    assert list(sketch.quantiles(np.array([0.0, 1.0]))) == [0.0, 99.0]


def test_quantile_sketch_merge_does_not_change_its_operands():
    a, b = _sketch(np.arange(5000.0)), _sketch(np.arange(5000.0, 10000.0))
    before = a.sketch.serialize()
    merged = a.merge(b)
    assert a.sketch.serialize() == before
    assert merged.sketch.n == a.sketch.n + b.sketch.n
    small = _sketch(np.arange(10.0))
    kept = small.exact.copy()
    small.merge(_sketch(np.arange(10.0, 20.0)))
    assert np.array_equal(small.exact, kept)


def test_below_the_cap_every_value_is_kept_and_quantiles_are_exact():
    values = np.random.default_rng(1).normal(size=EXACT_CAP)
    sketch = _sketch(values, chunks=9)
    assert sketch.is_exact and sketch.rank_error() == 0.0
    ranks = np.linspace(0.001, 1, 50)
    assert np.array_equal(sketch.quantiles(ranks), np.quantile(values, ranks, method="inverted_cdf"))
    points = np.sort(values)
    assert np.allclose(sketch.cdf(points), np.arange(1, values.size + 1) / values.size)


def test_small_chunks_past_the_cap_keep_their_tops():
    """Runs of 100 lost their top 4 values each to the stride (100 % 8 = 4); kept exactly and handed to the
    KLL in runs of more than EXACT_CAP values, their merge tracks the whole."""
    values = np.random.default_rng(3).lognormal(size=100_000)
    merged = _sketch(values[:100])
    for start in range(100, values.size, 100):
        merged = merged.merge(_sketch(values[start:start + 100]))
    points = np.quantile(values, np.linspace(0.01, 0.99, 99))
    true = np.searchsorted(np.sort(values), points, side="right") / values.size
    assert np.abs(merged.cdf(points) - true).max() <= merged.rank_error() + 100 * 4 / values.size


def test_a_small_sketch_serialises_to_the_same_bytes_every_time():
    values = np.random.default_rng(2).normal(size=500)
    first, second = _sketch(values, chunks=3), _sketch(values, chunks=3)
    assert first.to_dict() == second.to_dict()
    assert np.array_equal(QuantileSketch.from_dict(first.to_dict()).exact, np.sort(values))


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
