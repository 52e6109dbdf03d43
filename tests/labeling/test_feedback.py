"""Process feedback becomes labels by a project's rules: mapping, idempotence, consensus, preview, conflicts."""
import pytest

from labeling import services
from labeling.labels import rule_applies
from labeling.models import Annotation, FeedbackRule, QueueItem
from labeling.selectors import feedback_conflicts
from tests.factories import feedback_make


@pytest.fixture
def rules(project):
    return [
        services.feedback_rule_create(project=project, signal="rating", op="gte", threshold=4, label="positive"),
        services.feedback_rule_create(project=project, signal="rating", op="lte", threshold=2, label="negative"),
        services.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold=False, label="negative"),
        services.feedback_rule_create(project=project, signal="correction", use_event_value=True),
    ]


@pytest.mark.parametrize(("op", "threshold", "value", "applies"), [
    ("gte", 4, 4, True), ("gte", 4, 3.5, False), ("gt", 4, "5", False), ("lt", 2, True, False),
    ("eq", "Positive ", "positive", True), ("ne", "a", "b", True), ("in", ["a", "b"], "b", True),
    ("in", "ab", "a", False), ("any", None, None, True), ("eq", False, False, True),
])
def test_a_rule_condition_compares_like_values_only(op, threshold, value, applies):
    assert rule_applies(op, threshold, value) is applies


def test_feedback_is_mapped_to_labels_once_with_the_pseudonymous_actor(project, queued, source, rules):
    first, second = queued[0].record, queued[1].record
    feedback_make(source, first, "rating", 5, actor="a")
    feedback_make(source, first, "thumbs", False, actor="b")
    feedback_make(source, second, "rating", 3)  # between the rules: no label
    feedback_make(source, second, "correction", "neutral", actor="c")
    feedback_make(source, second, "correction", "not-a-choice")  # a correction the project cannot take
    feedback_make(source, second, "click", True)  # no rule for clicks
    assert services.feedback_apply_rules(project=project) == {"created": 3, "unmappable": 1}
    assert services.feedback_apply_rules(project=project) == {"created": 0, "unmappable": 1}
    labels = sorted(Annotation.objects.filter(provenance="process_feedback").values_list("item_id", "value", "actor"))
    assert labels == [(queued[0].pk, "negative", "pseudo-b"), (queued[0].pk, "positive", "pseudo-a"),
                      (queued[1].pk, "neutral", "pseudo-c")]
    assert QueueItem.objects.get(pk=queued[0].pk).feedback_count == 2
    assert QueueItem.objects.get(pk=queued[0].pk).state == "open"  # the project does not count feedback


def test_feedback_counts_toward_consensus_only_when_the_project_says_so(project, queued, source, rules, make_rater):
    item = queued[0]
    for actor in ("a", "b", "c"):
        feedback_make(source, item.record, "rating", 5, actor=actor)
    services.feedback_apply_rules(project=project)
    assert QueueItem.objects.get(pk=item.pk).state == "open"
    project.feedback_counts = True
    project.save()
    feedback_make(source, item.record, "rating", 1, actor="d")
    services.feedback_apply_rules(project=project)
    item = QueueItem.objects.get(pk=item.pk)
    assert (item.state, item.consensus, item.agreement) == ("complete", "positive", 0.75)


def test_the_preview_shows_what_rules_would_make_and_writes_nothing(project, queued, source, rules):
    feedback_make(source, queued[0].record, "rating", 5)
    feedback_make(source, queued[0].record, "rating", 1)
    feedback_make(source, queued[1].record, "thumbs", True)
    unsaved = FeedbackRule(project=project, signal="thumbs", op="eq", threshold=True, label="positive", position=9)
    preview = services.feedback_rules_preview(project=project, rules=[*rules, unsaved])
    assert (preview["matched"], preview["unmatched"], preview["unmappable"]) == (3, 0, 0)
    assert preview["labels"] == {"'positive'": 2, "'negative'": 1}
    assert all(row["in_queue"] for row in preview["rows"])
    assert not Annotation.objects.exists() and FeedbackRule.objects.count() == 4


def test_a_rule_label_that_does_not_fit_the_project_is_refused(project):
    with pytest.raises(services.InvalidLabel) as refused:
        services.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold=True, label="great")
    assert refused.value.field == "label"
    rule = services.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold=True, label="positive")
    with pytest.raises(services.InvalidLabel):
        services.feedback_rule_update(rule=rule, label="great")
    assert services.feedback_rule_update(rule=rule, threshold=False, label="negative").threshold is False


def test_conflicts_list_items_where_feedback_disagrees_with_the_raters(project, queued, source, rules, make_rater):
    raters = [make_rater() for _ in range(3)]
    for rater in raters:
        lease = services.item_next(rater=rater, project=project)
        services.assignment_submit(assignment=lease, value="negative")
    agreeing_item = queued[1]
    lease = services.item_next(rater=raters[0], project=project)
    services.assignment_submit(assignment=lease, value="positive")
    feedback_make(source, queued[0].record, "rating", 5, actor="x")
    feedback_make(source, queued[0].record, "rating", 4, actor="y")
    feedback_make(source, agreeing_item.record, "rating", 5, actor="z")
    services.feedback_apply_rules(project=project)
    conflicts = feedback_conflicts(project=project)
    assert [(c["item"].pk, c["human"], c["feedback"], c["human_votes"], c["feedback_votes"]) for c in conflicts] == [
        (queued[0].pk, "negative", "positive", 3, 2)]
