"""The project's label quality figures: which labels count, agreement against the reference implementations,
rater and kind rows, consensus against gold, bias, cost, alpha per week, and the cache that keeps them."""
import json
from datetime import timedelta

import krippendorff
import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from sklearn.metrics import cohen_kappa_score

from collection.models import FeedbackEvent, Record, Source
from labeling import services
from labeling.models import Annotation, Assignment, ConsensusRun, LabelingProject, QueueItem, Rater
from labeling.quality import label_distribution_bias
from labeling.selectors.quality import (
    quality_compute,
    quality_figures,
    quality_figures_refresh,
    rater_quality,
    rater_table,
)
from labeling.selectors.quality_reads import Coder, code_sql
from labeling.selectors.quality_sections import chi_square_many
from tests.factories import CHOICES, batch_of_records

VALUES = ["positive", "negative", "neutral"]


def items_of(project, source, n: int) -> list[QueueItem]:
    services.batch_route(batch_id=batch_of_records(source, n).pk)
    return list(project.items.order_by("id"))


def imported(item, rater, value, *, when=None, **fields) -> Annotation:
    """A label brought in from another tool: counted like a human one, with no lease."""
    return Annotation.objects.create(item=item, project_id=item.project_id, rater=rater, value=value,
                                     provenance=Annotation.Provenance.IMPORTED,
                                     created_at=when or timezone.now(), **fields)


def matrix_labels(project, items, raters, table):
    """table[r][i]: rater r's value on item i (None: no label)."""
    for rater, row in zip(raters, table):
        for item, value in zip(items, row):
            if value is not None:
                imported(item, rater, value)


def reliability(table, classes) -> np.ndarray:
    return np.array([[np.nan if v is None else classes.index(v) for v in row] for row in table], dtype=float)


TABLE = [  # 3 raters x 10 items, with holes
    ["positive", "positive", "negative", "neutral", "positive", "negative", None, "positive", "neutral", "negative"],
    ["positive", "negative", "negative", "neutral", "positive", "negative", "positive", None, "neutral", "positive"],
    ["positive", "positive", "negative", "positive", None, "negative", "positive", "positive", "negative", "negative"],
]


def test_agreement_is_krippendorffs_and_cohens_on_the_counted_labels_only(project, source, make_rater):
    items = items_of(project, source, 12)
    raters = [make_rater(n) for n in ("anna", "ben", "cara")]
    matrix_labels(project, items, raters, TABLE)
    # None of these count: a withdrawn label, a gold answer, process feedback.
    imported(items[10], raters[0], "neutral", undone_at=timezone.now())
    imported(items[11], raters[0], "neutral", is_gold=True, correct=False)
    rule = services.feedback_rule_create(project=project, signal="thumbs", op="any", label="neutral")
    event = FeedbackEvent.objects.create(source=source, record=items[0].record, signal="thumbs", value="up",
                                         actor="a", idempotency_key="k1", occurred_at=timezone.now())
    Annotation.objects.create(item=items[0], project=project, provenance=Annotation.Provenance.PROCESS_FEEDBACK,
                              actor="a", value="neutral", rule=rule, feedback_event_id=event.pk)
    project.kappa_min_shared = 5
    figures = quality_compute(project=project)
    a = figures["agreement"]
    expected = krippendorff.alpha(reliability_data=reliability(TABLE, VALUES), level_of_measurement="nominal")
    assert a["alpha"] == pytest.approx(expected, abs=1e-9)
    assert a["level"] == "nominal" and a["interval"][0] <= a["alpha"] <= a["interval"][1]
    assert figures["counts"] == {"labels": 27, "items": 10, "raters": 3, "gold_answers": 1}
    assert a["fleiss"] is None and a["fleiss_note"] == "not defined: items have 2-3 labels"
    shared = [i for i in range(10) if TABLE[0][i] and TABLE[1][i]]
    anna_ben = cohen_kappa_score([TABLE[0][i] for i in shared], [TABLE[1][i] for i in shared])
    pairs = {(p["a_name"], p["b_name"]): p["kappa"] for p in a["pairs"]["lowest"]}
    assert pairs[("anna", "ben")] == pytest.approx(anna_ben, abs=1e-9)
    assert a["pairs"]["count"] == 3


def test_fleiss_kappa_is_given_when_every_item_has_as_many_labels(project, source, make_rater):
    items = items_of(project, source, 4)
    raters = [make_rater() for _ in range(3)]
    matrix_labels(project, items, raters, [["positive", "negative", "neutral", "positive"],
                                           ["positive", "negative", "positive", "positive"],
                                           ["positive", "neutral", "neutral", "positive"]])
    a = quality_compute(project=project)["agreement"]
    assert a["fleiss"] is not None and a["fleiss_note"] == ""


def test_ratings_get_ordinal_and_interval_alpha_and_weighted_kappa(source, make_rater):
    project = services.project_create(name="stars", label_kind=LabelingProject.LabelKind.RATING, scale_min=1,
                                      scale_max=5, sources=[source], kappa_min_shared=3)
    items = items_of(project, source, 6)
    table = [[1, 2, 3, 4, 5, 5], [1, 3, 3, 5, 4, 5], [2, 2, 4, 4, 5, 4]]
    raters = [make_rater(join=project) for _ in range(3)]
    matrix_labels(project, items, raters, table)
    a = quality_compute(project=project)["agreement"]
    data = np.array(table, dtype=float)
    assert a["level"] == "ordinal"
    assert a["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal",
                                                          value_domain=[1, 2, 3, 4, 5]), abs=1e-9)
    assert a["alpha_interval"] == pytest.approx(krippendorff.alpha(reliability_data=data,
                                                                   level_of_measurement="interval"), abs=1e-9)
    assert a["pairs"]["weights"] == "quadratic"
    lowest = min(cohen_kappa_score(table[x], table[y], weights="quadratic", labels=[1, 2, 3, 4, 5])
                 for x, y in ((0, 1), (0, 2), (1, 2)))
    assert a["pairs"]["lowest"][0]["kappa"] == pytest.approx(lowest, abs=1e-9)


def test_multiple_choice_has_an_alpha_per_choice_and_free_text_compares_normalised_texts(source, make_rater):
    tags = services.project_create(name="tags", label_kind=LabelingProject.LabelKind.MULTIPLE, choices=CHOICES,
                                   sources=[source])
    items = items_of(tags, source, 3)
    raters = [make_rater(join=tags) for _ in range(2)]
    matrix_labels(tags, items, raters, [[["positive"], ["positive", "negative"], ["neutral"]],
                                        [["positive"], ["negative"], ["neutral"]]])
    a = quality_compute(project=tags)["agreement"]
    per_class = {row["value"]: row["alpha"] for row in a["per_class"]}
    assert set(per_class) == {"Positive", "Negative", "Neutral"}
    assert per_class["Neutral"] == pytest.approx(1.0)
    summaries = services.project_create(name="summaries", label_kind=LabelingProject.LabelKind.TEXT,
                                        sources=[source])
    items = items_of(summaries, source, 2)
    raters = [make_rater(join=summaries) for _ in range(2)]
    matrix_labels(summaries, items, raters, [["Great  kettle", "slow"], ["great kettle", "fast"]])
    a = quality_compute(project=summaries)["agreement"]
    assert a["observed"] == pytest.approx(0.5)  # "Great  kettle" and "great kettle" are the same answer


def label_all(project, raters, values, *, seconds: int = 0):
    """Each rater labels what the queue gives them with their value, each label taking `seconds`."""
    for rater, value in zip(raters, values):
        while (lease := services.item_next(rater=rater, project=project)) is not None:
            services.assignment_submit(assignment=lease, value=value, now=lease.leased_at + timedelta(seconds=seconds))


def test_each_rater_has_gold_accuracy_kappa_seconds_and_skip_rate_and_the_kinds_sum_them(
        project, source, make_rater, queued):
    anna, ben = make_rater("anna"), make_rater("ben")
    cara = make_rater("cara", kind=Rater.Kind.EXPERT, domains=["payments"])
    services.assignment_skip(assignment=services.item_next(rater=cara, project=project))
    label_all(project, [anna, ben, cara], ["positive", "positive", "negative"], seconds=12)
    gold = items_of(project, source, 2)[-2:]
    for item in gold:
        services.item_set_gold(item=item, answer="positive")
    for item, value in zip(gold, ["positive", "negative"]):
        lease = Assignment.objects.create(item=item, project=project, rater=anna, is_gold=True,
                                          expires_at=timezone.now() + timedelta(minutes=5))
        lease.project = project
        services.assignment_submit(assignment=lease, value=value)
    figures = quality_compute(project=project)
    rows = {r["username"]: r for r in figures["raters"]}
    assert rows["anna"]["gold_answered"] == 2 and rows["anna"]["gold_accuracy"] == 0.5
    assert rows["anna"]["labels"] == 10 and rows["anna"]["agreement"] == 1.0
    assert rows["cara"]["agreement"] == 0.0 and rows["cara"]["kappa"] is not None and rows["cara"]["kappa"] <= 0
    assert rows["ben"]["median_seconds"] == pytest.approx(12.0)
    assert rows["cara"]["skip_rate"] == pytest.approx(1 / 10)  # 9 submitted, 1 skipped
    kinds = {k["kind"]: k for k in figures["kinds"]}
    assert kinds["generalist"]["raters"] == 2 and kinds["generalist"]["labels"] == 20
    assert kinds["generalist"]["gold_accuracy"] == 0.5 and kinds["expert"]["agreement"] == 0.0
    assert (kinds["expert"]["confused"][0]["true"], kinds["expert"]["confused"][0]["given"]) == ("Positive", "Negative")
    # Cara labels everything "negative" where consensus says "positive": her label mix is biased.
    assert [r["username"] for r in figures["bias"]["raters"]] == ["cara"]
    assert rows["cara"]["p_value"] < 0.01 and rows["cara"]["cramers_v"] >= 0.1


def test_the_rater_table_sorts_by_any_column_with_empty_cells_last(project, source, make_rater, queued):
    anna, ben, _cara = make_rater("anna"), make_rater("ben"), make_rater("cara")
    label_all(project, [anna, ben], ["positive", "negative"])
    figures = quality_compute(project=project)
    assert [r["username"] for r in rater_table(figures=figures, paused={}, sort="-labels")][:2] == ["anna", "ben"]
    by_agreement = rater_table(figures=figures, paused={ben.pk: {"reason": "x"}}, sort="agreement")
    assert by_agreement[-1]["username"] == "cara" and by_agreement[-1]["agreement"] is None
    assert [r["paused"] for r in by_agreement if r["username"] == "ben"] == [True]
    assert rater_table(figures=figures, paused={}, sort="-nonsense")[0]["username"] == "anna"


def test_consensus_against_gold_is_the_raters_majority_on_each_gold_item(project, source, make_rater):
    items = items_of(project, source, 3)
    for item, answer in zip(items, ["positive", "negative", "positive"]):
        services.item_set_gold(item=item, answer=answer)
    raters = [make_rater() for _ in range(3)]
    answers = [["positive", "negative", "negative"], ["positive", "positive", "neutral"],
               ["negative", "negative", "positive"]]
    for rater, row in zip(raters, answers):
        for item, value in zip(items, row):
            imported(item, rater, value, is_gold=True, correct=value == QueueItem.objects.get(pk=item.pk).gold_answer)
    gold = quality_compute(project=project)["gold"]
    assert gold["items"] == 3 and gold["classes"] == ["Positive", "Negative", "Neutral"]
    cells = {row["truth"]: [c["count"] for c in row["cells"]] for row in gold["rows"]}
    # Item 1: majority positive (right); item 2: negative (right); item 3: a tie (no majority).
    assert cells == {"Positive": [1, 0, 0, 1], "Negative": [0, 1, 0, 0]}
    assert gold["accuracy"] == 1.0


def test_feedback_rules_and_model_output_sources_are_judged_against_the_human_majority(project, make_rater):
    model = Source.objects.create(name="classifier-v2", kind=Source.Kind.MODEL_OUTPUT)
    project.sources.add(model)
    batch = batch_of_records(model, 4)
    Record.objects.filter(batch=batch).update(label="positive")
    Record.objects.filter(batch=batch, line__gt=3).update(label="negative")
    services.batch_route(batch_id=batch.pk)
    items = list(project.items.order_by("id"))
    raters = [make_rater() for _ in range(3)]
    matrix_labels(project, items, raters, [["positive"] * 4] * 3)
    rule = services.feedback_rule_create(project=project, name="thumbs up", signal="thumbs", op="eq",
                                         threshold="up", label="positive")
    for n, (item, value) in enumerate(zip(items, ["positive", "positive", "negative", "negative"])):
        event = FeedbackEvent.objects.create(source=model, record=item.record, signal="thumbs", value="up",
                                             actor="a", idempotency_key=f"k{n}", occurred_at=timezone.now())
        Annotation.objects.create(item=item, project=project, provenance=Annotation.Provenance.PROCESS_FEEDBACK,
                                  actor="a", value=value, rule=rule, feedback_event_id=event.pk)
    bias = quality_compute(project=project)["bias"]
    assert bias["rules"] == [{"rule_id": rule.pk, "rule": f"thumbs up ({rule})", "labels": 4, "compared": 4,
                              "agreement": 0.5}]
    [found] = bias["sources"]
    assert (found["source"], found["compared"], found["agreement"]) == ("classifier-v2", 4, 0.75)
    assert found["mistake"] == {"human": "Positive", "model": "Negative", "count": 1}


def test_cost_per_final_label_and_to_finish_come_from_rates_and_measured_seconds(project, source, make_rater, queued):
    raters = [make_rater() for _ in range(3)]
    label_all(project, raters[:3], ["positive"] * 3, seconds=36)
    items_of(project, source, 5)  # five more items, open: 15 labels still needed
    assert quality_compute(project=project)["cost"]["spent"] is None  # no rates set
    project.hourly_rates = {"generalist": 10.0}
    cost = quality_compute(project=project)["cost"]
    # 30 labels x 36 s x 10/h = 3.00 spent over 10 complete items; 15 labels x 0.10 to finish.
    assert cost["spent"] == pytest.approx(3.0) and cost["per_final_label"] == pytest.approx(0.3)
    assert cost["remaining_slots"] == 15 and cost["to_finish"] == pytest.approx(1.5)


def test_alpha_is_given_per_week_of_each_items_latest_label(project, source, make_rater):
    items = items_of(project, source, 4)
    raters = [make_rater() for _ in range(2)]
    old = timezone.now() - timedelta(days=14)
    for item, (a, b) in zip(items, [("positive", "positive"), ("negative", "negative"), ("positive", "negative"),
                                    ("neutral", "neutral")]):
        when = old if item.pk in (items[0].pk, items[1].pk) else timezone.now()
        imported(item, raters[0], a, when=when)
        imported(item, raters[1], b, when=when)
    weeks = quality_compute(project=project)["weeks"]
    assert [w["items"] for w in weeks] == [2, 2]
    assert weeks[0]["alpha"] == pytest.approx(1.0) and weeks[1]["alpha"] < 1.0
    assert weeks[0]["week"] < weeks[1]["week"]


def test_the_figures_are_cached_until_a_new_label_and_then_served_stale_while_recomputed(
        project, source, make_rater, queued):
    raters = [make_rater() for _ in range(3)]
    label_all(project, raters[:2], ["positive", "negative"])
    first = quality_figures(project=project)
    assert not first["stale"]
    with CaptureQueriesContext(connection) as queries:
        again = quality_figures(project=project)
    assert len(queries) == 1 and again["computed_at"] == first["computed_at"]  # the watermark, nothing more
    label_all(project, raters[2:], ["positive"])
    stale = quality_figures(project=project)
    assert stale["stale"] and stale["counts"]["labels"] == first["counts"]["labels"] == 20
    quality_figures_refresh(project=project)  # what the task does
    fresh = quality_figures(project=project)
    assert not fresh["stale"] and fresh["counts"]["labels"] == 30
    assert quality_figures(project=project, fresh=True)["computed_at"] > fresh["computed_at"]


def test_a_consensus_run_changes_the_watermark_and_gives_dawid_skene_accuracy(project, source, make_rater, queued):
    anna, ben, cara = (make_rater(n) for n in ("anna", "ben", "cara"))
    label_all(project, [anna, ben, cara], ["positive", "positive", "negative"])
    before = quality_figures(project=project)
    confusion = [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
    ConsensusRun.objects.create(project=project, status=ConsensusRun.Status.DONE, finished_at=timezone.now(),
                                classes=VALUES, rater_accuracy={str(anna.pk): 0.93, "rule:4": 0.5},
                                rater_confusion={str(anna.pk): confusion})
    after = quality_figures(project=project)
    assert after["stale"]
    rows = {r["username"]: r for r in quality_figures_refresh(project=project)["raters"]}
    assert rows["anna"]["ds_accuracy"] == 0.93 and rows["ben"]["ds_accuracy"] is None
    assert before["run"] is None
    page = rater_quality(project=project, rater=anna)
    assert page["model"]["accuracy"] == 0.93
    assert page["model"]["classes"] == ["Positive", "Negative", "Neutral"]
    assert [c["value"] for c in page["model"]["rows"][0]["cells"]] == [0.9, 0.05, 0.05]


def test_a_raters_page_has_their_confusion_against_consensus_trend_gold_answers_and_bias_test(
        project, source, make_rater, queued):
    anna, ben, cara = (make_rater(n) for n in ("anna", "ben", "cara"))
    label_all(project, [anna, ben, cara], ["positive", "positive", "negative"])
    gold = items_of(project, source, 1)[-1]
    services.item_set_gold(item=gold, answer="negative")
    imported(gold, cara, "negative", is_gold=True, correct=True)
    page = rater_quality(project=project, rater=cara)
    against = {row["truth"]: [c["value"] for c in row["cells"]] for row in page["against"]["rows"]}
    assert against == {"Positive": [0, 10, 0]}  # consensus positive, she said negative, ten times
    assert page["labels"] == 10 and page["agreement"] == 0.0
    assert page["bias"]["biased"] and page["bias"]["rater"] == [0, 10, 0]
    assert sum(w["labels"] for w in page["trend"]) == 10 and page["trend"][-1]["gold_accuracy"] == 1.0
    assert page["gold_answers"][0]["answer"] == "Negative" and page["gold_answers"][0]["correct"]
    assert page["model"] is None


def test_the_bias_test_of_many_raters_at_once_equals_the_quality_packages_one_at_a_time():
    rng = np.random.default_rng(4)
    rater = rng.integers(0, 40, size=(200, 4))
    consensus = rng.integers(0, 40, size=(200, 4))
    rater[:20, 1] = consensus[:20, 1] = 0  # a class nobody used: dropped
    rater[20:25] = 0  # a rater without labels: undefined
    rater[25:30, 1:] = consensus[25:30, 1:] = 0  # one class only: undefined
    many = chi_square_many(rater, consensus)
    for i in range(200):
        one = label_distribution_bias(rater[i], consensus[i])
        if one.chi2 is None:
            assert np.isnan(many["chi2"][i]) and np.isnan(many["p"][i])
            continue
        assert many["chi2"][i] == pytest.approx(one.chi2, abs=1e-9)
        assert many["p"][i] == pytest.approx(one.p_value, abs=1e-12)
        assert many["v"][i] == pytest.approx(one.cramers_v, abs=1e-9)


def test_the_refresh_task_recomputes_a_projects_figures_into_the_cache(project, make_rater, queued):
    from labeling.tasks import refresh_quality_figures

    raters = [make_rater() for _ in range(3)]
    label_all(project, raters[:1], ["positive"])
    assert quality_figures(project=project)["counts"]["labels"] == 10
    label_all(project, raters[1:], ["positive", "negative"])
    assert quality_figures(project=project)["stale"]
    assert refresh_quality_figures(project.pk) > 0  # the seconds it took
    assert quality_figures(project=project)["counts"]["labels"] == 30
    assert refresh_quality_figures(project.pk + 1000) is None  # a project deleted since


@pytest.mark.parametrize("kind, options, values", [
    ("single_choice", {"choices": CHOICES}, ["positive", "neutral", "nope", 3, None, True, ["positive"]]),
    ("rating", {"scale_min": 1, "scale_max": 5}, [1, 5, 3.5, 2.4, 0, 6, "3", True, None, [2]]),
    ("multiple_choice", {"choices": CHOICES}, [["positive"], ["negative", "neutral"], [], ["nope"], ["positive", "x"],
                                             "positive", None]),
    ("free_text", {"text_max_length": 50}, ["A cat", "ünïcode", 12, None, {"a": 1}]),
])
def test_labels_are_coded_in_python_as_postgresql_codes_them(source, kind, options, values):
    """What the embedded default (SQLite) computes in Python equals the SQL coding of the PostgreSQL reads."""
    project = services.project_create(name=f"coding {kind}", label_kind=kind, sources=[source], **options)
    coder = Coder(project)
    code, params = code_sql(project, "v.value")
    with connection.cursor() as cursor:
        for value in values:
            text = json.dumps(value)
            cursor.execute(f"SELECT {code} FROM (SELECT %s::jsonb AS value) v", [*params, text])
            assert coder.code_value(text) == cursor.fetchone()[0], value
