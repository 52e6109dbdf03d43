"""Metrics from profiles against scipy on the raw arrays."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from validation.stats import metrics as m
from validation.stats import profile_frame

RNG = np.random.default_rng(11)
REF = RNG.lognormal(0, 0.7, 200_000)
BATCH = RNG.lognormal(0.15, 0.8, 150_000)


@pytest.fixture(scope="module")
def profiles():
    base = profile_frame(pd.DataFrame({"x": REF}))
    return base, profile_frame(pd.DataFrame({"x": BATCH}), spec=base.spec)


def raw_counts(values, edges):
    """The profile's bins from raw data: underflow, [e_i, e_i+1), overflow."""
    return np.histogram(values, np.concatenate(([-np.inf], edges, [np.inf])))[0]


def test_binned_counts_equal_numpy_histogram_on_the_same_edges(profiles):
    base, batch = profiles
    edges = base.spec.features["x"].edges
    assert np.array_equal(base.features["x"].hist, raw_counts(REF, edges))
    assert np.array_equal(batch.features["x"].hist, raw_counts(BATCH, edges))


def test_jensen_shannon_distance_equals_scipy_on_the_same_bins(profiles):
    base, batch = profiles
    edges = base.spec.features["x"].edges
    expected = distance.jensenshannon(raw_counts(REF, edges), raw_counts(BATCH, edges), base=2)
    assert m.js_distance(base.features["x"].hist, batch.features["x"].hist) == pytest.approx(expected, abs=1e-12)


def test_chi_square_equals_scipy_contingency_test(profiles):
    base, batch = profiles
    p, q = base.features["x"].hist, batch.features["x"].hist
    table = np.vstack([p, q])
    expected = stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
    stat, p_value = m.chi2_pvalue(p, q)
    assert stat == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-300)


def test_ks_statistic_from_sketches_is_within_the_sketch_error_of_scipy(profiles):
    base, batch = profiles
    a, b = base.features["x"].quantiles, batch.features["x"].quantiles
    expected = stats.ks_2samp(REF, BATCH).statistic
    # Each sketch's CDF is within its proven rank bound of its data's, so the sup of the difference too.
    assert abs(m.ks_statistic(a, b) - expected) <= a.rank_error() + b.rank_error()
    assert a.rank_error() + b.rank_error() < 0.003


def test_wasserstein_from_sketches_is_within_the_sketch_bound_of_scipy(profiles):
    base, batch = profiles
    x, y = base.features["x"], batch.features["x"]
    ours = m.wasserstein(x.quantiles, y.quantiles)
    expected = stats.wasserstein_distance(REF, BATCH)
    # Triangle inequality: each sketch is within its transport bound (W1 to its own data) of the data.
    bound = x.quantiles.w1_error() + y.quantiles.w1_error()
    assert abs(ours - expected) <= bound
    assert bound / REF.std() < 0.01


def test_categorical_linf_and_js_equal_direct_computation():
    ref = pd.Series(RNG.choice(list("abcde"), 10_000, p=[0.4, 0.3, 0.1, 0.1, 0.1]))
    bat = pd.Series(RNG.choice(list("abcdf"), 8_000))
    base = profile_frame(pd.DataFrame({"c": ref}))
    batch = profile_frame(pd.DataFrame({"c": bat}), spec=base.spec)
    p, q = base.features["c"].hist, batch.features["c"].hist
    vocab = list(base.spec.features["c"].vocab)
    freq_ref = ref.value_counts(normalize=True).reindex(vocab + ["f"], fill_value=0)
    freq_bat = bat.value_counts(normalize=True).reindex(vocab + ["f"], fill_value=0)
    assert m.linf(p, q) == pytest.approx((freq_ref - freq_bat).abs().max(), abs=1e-12)
    assert m.js_distance(p, q) == pytest.approx(distance.jensenshannon(freq_ref, freq_bat, base=2), abs=1e-12)


def test_psi_smoothing_keeps_empty_bins_finite():
    assert np.isfinite(m.psi(np.array([10, 0]), np.array([0, 10])))
    assert m.psi(np.array([5, 5]), np.array([5, 5])) == 0.0


def test_noise_floors_shrink_with_the_sample_size():
    assert m.js_noise(20, 1000, 10**6, 0.001) > m.js_noise(20, 10**6, 10**6, 0.001)
    assert m.ks_noise(1000, 1000, 0.001, 0.0) == pytest.approx(stats.kstwobign.isf(0.001) * np.sqrt(2 / 1000), rel=1e-3)


def test_a_constant_baseline_norms_wasserstein_by_the_batch_std():
    assert m.normed_wasserstein(0.5, 0.0, 2.0) == 0.25
    assert m.normed_wasserstein(0.0, 0.0, 0.0) == 0.0
    assert m.normed_wasserstein(1.0, 0.0, 0.0) == float("inf")


def test_the_binomial_point_of_the_range_and_domain_floors_is_scipys():
    import itertools

    from scipy.stats import binom

    from validation.stats.metrics import _binomial_point

    for m, p, q in itertools.product([1, 5, 25, 200, 10_000, 1_000_000], [1e-6, 0.001, 0.027, 0.3, 0.9],
                                     [0.99, 0.999]):
        assert _binomial_point(m, p, q) == int(binom.ppf(q, m, p)), (m, p, q)
