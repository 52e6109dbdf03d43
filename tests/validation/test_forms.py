"""The baseline form offers the thresholds the engine decides with: its per-feature metrics follow
validation/stats/thresholds.py, in the engine's order."""
from validation.forms import BaselineEditForm
from validation.models import Baseline
from validation.stats import infer_schema, profile_frame
from validation.stats.thresholds import DECIDING, METRICS, feature_metrics


def _baseline(source) -> Baseline:
    import pandas as pd

    frame = pd.DataFrame({"amount": [float(i % 17) for i in range(200)],
                          "country": ["DE", "FR", "IT", "ES"] * 50})
    reference = profile_frame(frame)
    return Baseline.objects.create(source=source, origin="file", profile=reference.to_json(),
                                   schema=infer_schema(reference).to_dict(), is_active=True, row_count=200)


def test_the_engine_offers_its_deciding_metrics_with_a_default_first_then_the_missing_rate():
    assert feature_metrics("numeric") == ("wasserstein", "js", "missing_rate")
    assert feature_metrics("categorical") == ("linf", "js", "missing_rate")
    for kind, deciding in DECIDING.items():
        offered = feature_metrics(kind)[:-1]
        assert offered == tuple(m for m in deciding if METRICS[m][0] is not None)
        assert offered[0] == deciding[0]


def test_each_feature_s_threshold_fields_are_the_engine_s_metrics_for_its_kind_in_its_order(source):
    form = BaselineEditForm(baseline=_baseline(source))

    rows = {row["name"]: row for row in form.rows()}

    assert rows["amount"]["kind"] == "numeric" and rows["country"]["kind"] == "categorical"
    for name, row in rows.items():
        assert [field.label for field in row["metrics"]] == [f"{name} {m}" for m in feature_metrics(row["kind"])]
    assert [field.name for field in form.default_fields()] == [f"default-{m}" for m in METRICS]
