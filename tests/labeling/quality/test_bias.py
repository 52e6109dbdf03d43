"""Rater bias: the chi-square test against scipy and by hand, confused pairs, agreement rates."""

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from labeling.quality import agreement_with, confused_pairs, label_distribution_bias


def test_a_rater_who_says_positive_too_often_is_flagged_with_scipys_statistic():
    rater, consensus = [70, 20, 10], [40, 40, 20]
    result = label_distribution_bias(rater, consensus)
    chi2, p, dof, _ = chi2_contingency(np.array([rater, consensus]), correction=False)
    assert (result.chi2, result.p_value, result.dof, result.n) == (pytest.approx(chi2), pytest.approx(p), 2, 200)
    assert result.cramers_v == pytest.approx(math.sqrt(chi2 / 200))
    assert result.p_value < 0.001


def test_two_classes_are_tested_without_yates_correction():
    # By hand: expected counts 15 in every cell, chi2 = 4 * 5^2 / 15.
    result = label_distribution_bias([20, 10], [10, 20])
    assert result.chi2 == pytest.approx(100 / 15) and result.dof == 1
    assert result.cramers_v == pytest.approx(math.sqrt(100 / 15 / 60))


def test_classes_nobody_used_are_dropped_and_a_rater_matching_consensus_is_not_flagged():
    result = label_distribution_bias([30, 0, 10], [30, 0, 10])
    assert result.chi2 == pytest.approx(0) and result.dof == 1 and result.p_value == pytest.approx(1)
    assert result.cramers_v == pytest.approx(0)


def test_the_test_is_undefined_with_one_class_or_an_empty_side():
    for rater, consensus in ([5, 0], [3, 0]), ([0, 0], [3, 4]), ([3, 4], [0, 0]):
        result = label_distribution_bias(rater, consensus)
        assert (result.chi2, result.p_value, result.dof, result.cramers_v) == (None, None, None, None)
    assert label_distribution_bias([0, 0], [3, 4]).n == 7
    with pytest.raises(ValueError):
        label_distribution_bias([1, 2], [1, 2, 3])


def test_confused_pairs_lists_off_diagonal_rates_above_the_floor_biggest_first():
    counts = [[80, 15, 5], [30, 60, 10], [0, 0, 0]]  # no item of the third true class
    pairs = confused_pairs(counts, ["cat", "dog", "fox"], min_rate=0.1)
    assert pairs == [("dog", "cat", pytest.approx(0.3)), ("cat", "dog", pytest.approx(0.15)),
                     ("dog", "fox", pytest.approx(0.1))]
    assert confused_pairs(np.eye(3), ["a", "b", "c"]) == []
    with pytest.raises(ValueError):
        confused_pairs(np.eye(2), ["a", "b", "c"])


def test_agreement_with_leaves_out_positions_missing_on_either_side():
    assert agreement_with(["a", "b", None, "c"], ["a", "c", "b", float("nan")]) == 0.5
    assert agreement_with(np.array([0, 1, -1, 2]), np.array([0, 1, 1, 1]), missing=-1) == pytest.approx(2 / 3)
    assert agreement_with(np.array([0.0, np.nan]), np.array([0.0, 1.0])) == 1.0
    assert agreement_with([None], ["a"]) is None
    with pytest.raises(ValueError):
        agreement_with([1, 2], [1])
