"""Naming the shift, and the concept and class-conditional distances behind it."""

import numpy as np

from validation.stats.shift import class_conditional_distance, classify, concept_distance


def table(rows):
    """feature-bin x (classes..., other, missing) table from per-bin class counts."""
    rows = np.asarray(rows)
    return np.hstack([rows, np.zeros((rows.shape[0], 2), dtype=int)])


def test_nothing_moved_is_no_shift():
    assert classify([], [], False, [], True).kind == "none"


def test_features_moving_with_p_y_given_x_held_is_covariate_shift():
    shift = classify(["a"], [], True, ["a"], True)
    assert (shift.kind, shift.drivers) == ("covariate", ["a"])


def test_label_moving_with_p_x_given_y_held_is_prior_shift():
    shift = classify(["informative"], [], True, [], True)
    assert (shift.kind, shift.drivers) == ("prior", ["label"])


def test_p_y_given_x_moving_alone_is_concept_shift_and_with_features_dataset_shift():
    assert classify([], ["a"], False, ["a"], True).kind == "concept"
    shift = classify(["b"], ["a"], True, ["a", "b"], True)
    assert (shift.kind, shift.drivers) == ("dataset", ["a", "b"])


def test_a_flipped_relation_has_a_large_concept_distance():
    base = table([[900, 100], [100, 900]])
    flipped = table([[100, 900], [900, 100]])
    value, noise = concept_distance(base, flipped, 0.001)
    assert value == 0.8 and noise < 0.1


def test_a_pure_prior_change_is_not_counted_as_concept_drift():
    # P(x | y) identical, P(y=1) from 0.5 to 0.8: P(y | x) moves only through Bayes' rule.
    base = table([[400, 100], [100, 400]])
    batch = table([[200, 200 * 4 * 0.25], [50, 800 * 1.0]]).astype(int)
    per_class_base = base[:, :2] / base[:, :2].sum(axis=0)
    per_class_batch = batch[:, :2] / batch[:, :2].sum(axis=0)
    assert np.allclose(per_class_base, per_class_batch)
    value, _ = concept_distance(base, batch, 0.001)
    assert value < 1e-9
    assert class_conditional_distance(base, batch, 0.001)[0] < 1e-9
