"""Quality suite: seeded drifts of documented sizes are found, controls never flagged.

Sizes (testdata/synthetic.py): numeric large/moderate/subtle = 1 / 0.3 / 0.02 baseline
std of mean shift; categorical = largest share change 0.3 / 0.15 / 0.01; label P(y=1) 0.3 ->
0.7 / 0.42 / 0.31; concept = P(y|x) sign flips with logit slopes 2 (and a +-1.5 category
effect) / 1 / 0.1. Large drifts must be found at 1,000 rows, moderate ones at 1,000,000.
"""

import functools

import pytest

from testdata import synthetic as s
from validation.stats import compare, profile_frame

SIZES = [pytest.param(1_000, id="1k"), pytest.param(1_000_000, id="1M", marks=pytest.mark.slow)]


@functools.cache
def report(scenario: str, n: int):
    pairs = {
        "covariate": lambda: s.covariate_pair(n, 1),
        "concept": lambda: s.concept_pair(n, 2),
        "prior-large": lambda: s.prior_pair(n, 3, "large"),
        "prior-moderate": lambda: s.prior_pair(n, 3, "moderate"),
        "prior-subtle": lambda: s.prior_pair(n, 3, "subtle"),
        "dataset": lambda: s.dataset_pair(n, 4),
    }
    ref, batch = pairs[scenario]()
    base = profile_frame(ref, label="y")
    return compare(profile_frame(batch, spec=base.spec), base)


def flagged(rep, kind):
    return {a.feature for a in rep.anomalies if a.kind == kind}


def assert_no_control_flagged(rep):
    assert not {a.feature for a in rep.anomalies} & set(s.CONTROLS), rep.reasons


@pytest.mark.parametrize("n", SIZES)
def test_covariate_drifts_are_found_by_size_and_named_covariate_shift(n):
    rep = report("covariate", n)
    expected = {"num_large", "cat_large"} | ({"num_moderate", "cat_moderate"} if n > 1_000 else set())
    assert expected <= flagged(rep, "distribution_drift")
    assert not flagged(rep, "distribution_drift") & {"num_subtle", "cat_subtle"}
    assert rep.shift.kind == "covariate" and {"num_large", "cat_large"} <= set(rep.shift.drivers)
    assert not flagged(rep, "concept_drift") and not flagged(rep, "label_drift")
    assert_no_control_flagged(rep)


@pytest.mark.parametrize("n", SIZES)
def test_concept_drifts_are_found_by_size_and_named_concept_shift(n):
    rep = report("concept", n)
    expected = {"num_large", "cat_large"} | ({"num_moderate"} if n > 1_000 else set())
    assert expected <= flagged(rep, "concept_drift")
    assert "num_subtle" not in flagged(rep, "concept_drift")
    assert not flagged(rep, "distribution_drift")
    assert rep.shift.kind == "concept" and {"num_large", "cat_large"} <= set(rep.shift.drivers)
    assert_no_control_flagged(rep)


@pytest.mark.parametrize("n", SIZES)
def test_a_large_label_drift_is_named_prior_shift(n):
    rep = report("prior-large", n)
    assert flagged(rep, "label_drift") == {"y"}
    assert (rep.shift.kind, rep.shift.drivers) == ("prior", ["label"])
    assert not flagged(rep, "concept_drift")
    assert_no_control_flagged(rep)


@pytest.mark.slow
def test_a_moderate_label_drift_is_found_at_a_million_rows():
    rep = report("prior-moderate", 1_000_000)
    assert flagged(rep, "label_drift") == {"y"} and rep.shift.kind == "prior"
    assert_no_control_flagged(rep)


@pytest.mark.parametrize("n", SIZES)
def test_a_subtle_label_drift_stays_below_the_threshold(n):
    rep = report("prior-subtle", n)
    assert rep.verdict == "pass" and rep.shift.kind == "none"


@pytest.mark.parametrize("n", SIZES)
def test_moving_features_and_p_y_given_x_together_is_dataset_shift(n):
    rep = report("dataset", n)
    assert "num_large" in flagged(rep, "distribution_drift")
    assert "num_concept" in flagged(rep, "concept_drift")
    assert rep.shift.kind == "dataset" and {"num_large", "num_concept"} <= set(rep.shift.drivers)
    assert_no_control_flagged(rep)
