"""Training sets: the split rule and the label policy are checked when kept, and the rule is fixed once published."""
import pytest

from trainingsets.models import TrainingSetVersion
from trainingsets.services import (
    PolicyInvalid,
    SplitRuleInvalid,
    SplitRuleLocked,
    trainingset_create,
    trainingset_update,
)


@pytest.mark.parametrize("fields, field, words", [
    ({"split_fractions": [["train", 0.8], ["test", 0.1]]}, "split_fractions", "add up to 0.9"),
    ({"split_fractions": [["train", 0.5], ["train", 0.5]]}, "split_fractions", "must differ"),
    ({"split_fractions": [["Train Set", 1.0]]}, "split_fractions", "lowercase"),
    ({"split_fractions": [["train", -0.2], ["test", 1.2]]}, "split_fractions", "(0, 1]"),
    ({"split_kind": "time", "split_cutoffs": [["old", "2026-02-01"], ["new", "2026-01-01"], ["rest", None]]},
     "split_cutoffs", "must increase"),
    ({"split_kind": "time", "split_cutoffs": [["old", "yesterday"], ["rest", None]]}, "split_cutoffs", "ISO 8601"),
    ({"split_kind": "time", "split_cutoffs": [["old", "2026-01-01"]]}, "split_cutoffs", "give it null"),
    ({"split_kind": "group"}, "split_feature", "needs the feature"),
    ({"split_kind": "hash"}, "split_kind", "one of"),
])
def test_a_bad_split_rule_is_refused_with_the_field_it_concerns(source, fields, field, words):
    with pytest.raises(SplitRuleInvalid) as refused:
        trainingset_create(name="bad", sources=[source], **fields)
    assert refused.value.field == field and words in str(refused.value)


@pytest.mark.parametrize("fields, field", [
    ({"min_confidence": 1.5}, "min_confidence"), ({"unlabeled": "guess"}, "unlabeled"),
    ({"formats": ["csv"]}, "formats"), ({"formats": ["parquet", "xlsx"]}, "formats"), ({"colour": "red"}, "colour"),
])
def test_a_bad_policy_is_refused_with_its_field(source, fields, field):
    with pytest.raises(PolicyInvalid) as refused:
        trainingset_create(name="bad", sources=[source], **fields)
    assert refused.value.field == field


def test_a_set_needs_a_source_and_a_free_name(source):
    with pytest.raises(PolicyInvalid):
        trainingset_create(name="empty", sources=[])
    trainingset_create(name="taken", sources=[source])
    with pytest.raises(PolicyInvalid) as refused:
        trainingset_create(name="taken", sources=[source])
    assert refused.value.field == "name"


def test_the_split_rule_is_fixed_once_a_version_is_published(built_version):
    training_set = built_version.training_set
    with pytest.raises(SplitRuleLocked) as refused:
        trainingset_update(training_set=training_set, split_fractions=[["train", 0.5], ["test", 0.5]])
    assert refused.value.status == 409 and refused.value.field == "split_fractions"
    # The policy may change, and the same rule may be given again.
    trainingset_update(training_set=training_set, min_confidence=0.9, split_kind="random")
    training_set.refresh_from_db()
    assert training_set.min_confidence == 0.9


def test_a_failed_version_does_not_fix_the_rule(labeled_set):
    TrainingSetVersion.objects.create(training_set=labeled_set, number=1, status="failed")
    updated = trainingset_update(training_set=labeled_set, split_fractions=[["train", 0.5], ["test", 0.5]])
    assert updated.split_names() == ["train", "test"]
