"""Agreement statistics against krippendorff, statsmodels and sklearn on the real crowd sets."""

import itertools
import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from labeling.quality import (
    LabelMatrix,
    cohen_kappa_pairs,
    encode,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_bootstrap,
    multilabel_alpha,
    observed_agreement,
)

TOL = 1e-9


def matrix(s):
    return encode(s.frame["item"], s.frame["worker"], s.frame["label"])


def reliability(frame: pd.DataFrame) -> pd.DataFrame:
    """Raters x items, NaN where a rater did not label an item (the references' input)."""
    return frame.pivot(index="worker", columns="item", values="label").astype(float)


def test_nominal_alpha_equals_the_krippendorff_package_on_every_crowd_set(crowd_set):
    expected = krippendorff.alpha(reliability_data=reliability(crowd_set.frame).to_numpy(),
                                  level_of_measurement="nominal")
    assert krippendorff_alpha(matrix(crowd_set)) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("level", ["ordinal", "interval"])
def test_ordinal_and_interval_alpha_equal_the_krippendorff_package_on_the_numeric_sets(numeric_set, level):
    expected = krippendorff.alpha(reliability_data=reliability(numeric_set.frame).to_numpy(),
                                  level_of_measurement=level)
    assert krippendorff_alpha(matrix(numeric_set), level=level) == pytest.approx(expected, abs=TOL)


def test_fleiss_kappa_equals_statsmodels_where_every_item_has_the_same_number_of_labels(crowd_set):
    per_item = crowd_set.frame.groupby("item")["label"].apply(list)
    ours = fleiss_kappa(matrix(crowd_set))
    if per_item.map(len).nunique() > 1:
        assert crowd_set.name == "face"  # 7 to 9 labels per item
        assert ours is None
        return
    table, _ = aggregate_raters(np.array(per_item.tolist()))
    assert ours == pytest.approx(sm_fleiss_kappa(table, method="fleiss"), abs=TOL)


def sklearn_pairs(frame: pd.DataFrame, min_shared: int, **kwargs) -> dict:
    """Cohen's kappa by sklearn for every pair of workers with at least min_shared items in common."""
    table = reliability(frame)
    present = table.notna().to_numpy().astype(int)
    shared = present @ present.T
    values = table.to_numpy()
    out = {}
    # Thousands of calls: sklearn's per-call argument checks and warnings would dominate the suite.
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in itertools.combinations(range(len(table)), 2):
            if shared[a, b] >= min_shared:
                both = (present[a] & present[b]).astype(bool)
                kappa = cohen_kappa_score(values[a, both], values[b, both], **kwargs)
                out[frozenset((table.index[a], table.index[b]))] = (int(shared[a, b]), kappa)
    return out


def test_cohen_kappa_of_every_pair_sharing_ten_items_equals_sklearn(crowd_set):
    expected = sklearn_pairs(crowd_set.frame, 10)
    ours = {frozenset((p.rater_a, p.rater_b)): p for p in cohen_kappa_pairs(matrix(crowd_set), min_shared=10)}
    assert ours.keys() == expected.keys()
    assert len(ours) > 100
    for key, (n_shared, kappa) in expected.items():
        assert ours[key].n_shared == n_shared
        if np.isnan(kappa):
            assert ours[key].kappa is None
        else:
            assert ours[key].kappa == pytest.approx(kappa, abs=TOL)


@pytest.mark.parametrize("weights", ["linear", "quadratic"])
def test_weighted_cohen_kappa_equals_sklearn_given_the_whole_class_order(crowd, weights):
    face = crowd("face")
    expected = sklearn_pairs(face.frame, 10, weights=weights, labels=[0, 1, 2, 3])
    ours = cohen_kappa_pairs(matrix(face), min_shared=10, weights=weights)
    assert len(ours) == len(expected) > 100
    for pair in ours:
        assert pair.kappa == pytest.approx(expected[frozenset((pair.rater_a, pair.rater_b))][1], abs=TOL)


def test_observed_agreement_weights_each_item_by_its_pairable_labels(crowd_set):
    counts = crowd_set.frame.groupby(["item", "label"]).size()
    per_item = counts.groupby(level="item").sum()
    agreeing = (counts * (counts - 1)).groupby(level="item").sum() / (per_item - 1)
    pairable = per_item >= 2
    expected = agreeing[pairable].sum() / per_item[pairable].sum()
    assert observed_agreement(matrix(crowd_set)) == pytest.approx(expected, abs=TOL)


def test_observed_agreement_is_fleiss_p_bar_when_every_item_has_the_same_count(crowd):
    per_item = crowd("rte").frame.groupby("item")["label"].apply(list)
    table, _ = aggregate_raters(np.array(per_item.tolist()))
    r = table.sum(axis=1)[0]
    p_bar = ((table ** 2).sum(axis=1) - r).mean() / (r * (r - 1))
    assert observed_agreement(matrix(crowd("rte"))) == pytest.approx(p_bar, abs=TOL)


def test_the_bootstrap_interval_matches_resampling_items_one_by_one(crowd):
    m = matrix(crowd("rte"))
    rng = np.random.default_rng(5)
    order = np.argsort(m.items, kind="stable")
    starts = np.searchsorted(m.items[order], np.arange(m.n_items))
    sizes = np.bincount(m.items, minlength=m.n_items)
    naive = []
    for _ in range(300):
        pick = rng.integers(0, m.n_items, m.n_items)
        rows = np.concatenate([order[starts[i]:starts[i] + sizes[i]] for i in pick])
        resampled = LabelMatrix(np.repeat(np.arange(m.n_items), sizes[pick]).astype(np.int32), m.raters[rows],
                                m.labels[rows], m.item_ids, m.rater_ids, m.classes)
        naive.append(krippendorff_alpha(resampled))
    low, high = krippendorff_alpha_bootstrap(m, n_boot=1000, seed=1)
    # Both are Monte Carlo estimates of the same quantiles (the naive one from 300 draws).
    assert low == pytest.approx(np.quantile(naive, 0.025), abs=0.012)
    assert high == pytest.approx(np.quantile(naive, 0.975), abs=0.012)


def test_the_bootstrap_is_reproducible_and_brackets_alpha(crowd):
    m = matrix(crowd("dog"))
    alpha = krippendorff_alpha(m, level="ordinal")
    low, high = krippendorff_alpha_bootstrap(m, level="ordinal", n_boot=500, seed=3)
    assert (low, high) == krippendorff_alpha_bootstrap(m, level="ordinal", n_boot=500, seed=3)
    assert low < alpha < high
    assert high - low < 0.1
    narrow = krippendorff_alpha_bootstrap(m, level="ordinal", n_boot=500, seed=3, ci=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_multilabel_alpha_is_the_nominal_alpha_of_each_class_presence():
    rng = np.random.default_rng(2)
    classes = ["cat", "dog", "bird"]
    rows = []
    for item in range(40):
        truth = {c for c in classes if rng.random() < 0.4}
        for rater in rng.choice(6, 3, replace=False):
            noisy = {c for c in classes if (c in truth) != (rng.random() < 0.15)}
            rows.append((f"i{item}", f"r{rater}", noisy))
    rows.append(("i0", "r9", None))  # no answer: missing, not "nothing applies"
    items, raters, sets = zip(*rows)
    ours = multilabel_alpha(items, raters, sets, classes)
    for c in classes:
        frame = pd.DataFrame([(i, r, float(c in s)) for i, r, s in rows if s is not None],
                             columns=["item", "worker", "label"])
        expected = krippendorff.alpha(reliability_data=reliability(frame).to_numpy(), level_of_measurement="nominal")
        assert ours[c] == pytest.approx(expected, abs=TOL)


def test_statistics_are_none_where_they_are_not_defined():
    one_label_each = encode(["a", "b"], ["r1", "r2"], [1, 2])
    assert observed_agreement(one_label_each) is None
    assert krippendorff_alpha(one_label_each) is None
    assert krippendorff_alpha_bootstrap(one_label_each) is None
    assert fleiss_kappa(one_label_each) is None
    # Every label the same class: chance agreement is 1, so kappa and alpha are 0/0.
    same = encode(["a"] * 2 + ["b"] * 2 + ["c"] * 2, ["r1", "r2"] * 3, ["x"] * 6)
    assert observed_agreement(same) == 1.0
    assert krippendorff_alpha(same) is None
    assert fleiss_kappa(same) is None
    assert cohen_kappa_pairs(same, min_shared=3) == [cohen_kappa_pairs(same, min_shared=3)[0]]
    assert cohen_kappa_pairs(same, min_shared=3)[0].kappa is None
    assert cohen_kappa_pairs(same, min_shared=4) == []


def test_interval_alpha_needs_numeric_classes_and_levels_are_checked():
    m = encode(["a", "a", "b", "b"], ["r1", "r2", "r1", "r2"], ["low", "high", "low", "low"])
    with pytest.raises(ValueError, match="numeric"):
        krippendorff_alpha(m, level="interval")
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(m, level="ratio")
    assert krippendorff_alpha(encode(["a", "a", "b", "b"], ["r1", "r2"] * 2, ["low", "high", "high", "low"],
                                     classes=("low", "high")), level="ordinal") is not None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=2, max_size=15).filter(lambda xs: len(set(xs)) >= 2),
       st.integers(2, 5), st.randoms(use_true_random=False))
def test_alpha_is_one_when_every_rater_gives_each_item_its_class(truth, n_raters, rnd):
    items, raters, values = [], [], []
    for item, value in enumerate(truth):
        for rater in rnd.sample(range(n_raters), rnd.randint(2, n_raters)):
            items.append(item), raters.append(rater), values.append(value)
    m = encode(items, raters, values)
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(m, level=level) == pytest.approx(1.0, abs=1e-12)
    assert observed_agreement(m) == pytest.approx(1.0, abs=1e-12)
