"""A client's timestamp is accepted only if Python can read it back (0001-01-02 to 9999-12-30 in UTC): everywhere
one is parsed, a time PostgreSQL would store but Python could not read is refused with a located 400, not a 500."""
import datetime as dt
import io

import orjson
import pytest
from rest_framework.test import APIClient

from collection.models import Batch, FeedbackEvent
from collection.parsing import PayloadError, PayloadParser
from collection.timestamps import TimestampInvalid, day_minus, day_parse, timestamp_parse

UNREADABLE = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:30:00-01:00", "0001-01-01T23:59:59Z",
              "9999-12-31T00:00:00Z"]
BAD = [*UNREADABLE, "2026-01-01T00:00:00+25:00"]


@pytest.mark.parametrize("text, utc", [
    ("0001-01-02T00:00:00Z", dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc)),
    ("0001-01-02T13:00:00+13:00", dt.datetime(1, 1, 2, tzinfo=dt.timezone.utc)),
    ("9999-12-30T23:59:59Z", dt.datetime(9999, 12, 30, 23, 59, 59, tzinfo=dt.timezone.utc)),
    ("9999-12-31T00:30:00+01:00", dt.datetime(9999, 12, 30, 23, 30, tzinfo=dt.timezone.utc)),
    ("2026-03-01T10:00:00", dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone.utc)),
])
def test_a_time_inside_the_range_is_read_in_utc(text, utc):
    assert timestamp_parse(text) == utc


@pytest.mark.parametrize("text", [*BAD, "noon", "", None, 17])
def test_a_time_outside_the_range_or_not_a_time_is_refused(text):
    with pytest.raises(TimestampInvalid):
        timestamp_parse(text)


def test_a_day_is_refused_outside_the_range_and_counting_back_stops_at_its_start():
    assert day_parse("9999-12-30") == dt.date(9999, 12, 30)
    for text in ("9999-12-31", "0001-01-01", "2026-13-45"):
        with pytest.raises(TimestampInvalid):
            day_parse(text)
    assert day_minus(dt.date(1, 1, 5), 89) == dt.date(1, 1, 2)
    assert day_minus(dt.date(2026, 1, 10), 9) == dt.date(2026, 1, 1)


@pytest.mark.parametrize("moment", BAD)
def test_the_parser_refuses_an_unreadable_observed_at_with_its_line_field_and_value(moment):
    body = (b'{"external_id": "a", "features": {"x": 1}, "observed_at": "2026-01-01T00:00:00Z"}\n'
            + orjson.dumps({"external_id": "b", "features": {"x": 2}, "observed_at": moment}) + b"\n")
    with pytest.raises(PayloadError) as refused:
        list(PayloadParser(io.BytesIO(body), "ndjson", max_json_bytes=1_000_000))
    assert (refused.value.line, refused.value.field, refused.value.value) == (2, "observed_at", moment)
    csv = f"external_id,x,observed_at\na,1,2026-01-01\nb,2,{moment}\n".encode()
    with pytest.raises(PayloadError) as refused:
        list(PayloadParser(io.BytesIO(csv), "csv", max_json_bytes=1_000_000))
    assert (refused.value.line, refused.value.field) == (3, "observed_at")


@pytest.mark.parametrize("moment", UNREADABLE)
def test_an_upload_with_an_unreadable_observed_at_is_a_located_400(api, moment):
    body = orjson.dumps({"external_id": "a", "features": {"x": 1}, "observed_at": moment}) + b"\n"
    answer = api.post("/api/v1/batches", data=body, content_type="application/x-ndjson")
    assert answer.status_code == 400
    error = answer.json()
    assert (error["error"], error["line"], error["field"], error["value"]) == ("invalid_payload", 1, "observed_at",
                                                                              moment)
    assert "0001-01-02" in error["detail"] and Batch.objects.count() == 0


@pytest.mark.parametrize("moment", BAD)
def test_feedback_with_an_unreadable_occurred_at_is_a_located_400(api, moment):
    event = {"external_id": "r1", "signal": "rating", "value": 1, "occurred_at": moment}
    answer = api.post("/api/v1/feedback", data=orjson.dumps([event]), content_type="application/json")
    assert answer.status_code == 400
    assert (answer.json()["index"], answer.json()["field"], answer.json()["value"]) == (0, "occurred_at", moment)
    assert FeedbackEvent.objects.count() == 0


@pytest.mark.parametrize("name", ["received_after", "received_before"])
@pytest.mark.parametrize("moment", BAD)
def test_a_batch_list_bound_that_cannot_be_read_is_a_400(api, name, moment):
    answer = api.get("/api/v1/batches", {name: moment})
    assert answer.status_code == 400
    assert (answer.json()["error"], answer.json()["field"], answer.json()["value"]) == ("invalid_payload", name,
                                                                                       moment)


def test_a_bound_inside_the_range_still_filters(api):
    assert api.get("/api/v1/batches", {"received_after": "9999-12-30T00:00:00Z"}).json()["results"] == []
    assert api.get("/api/v1/batches", {"received_before": "2000-01-01T00:00:00+14:00"}).status_code == 200


@pytest.fixture
def labels_project(source):
    from labeling import services

    choices = [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]
    return services.project_create(name="p", choices=choices, overlap=1, sources=[source])


@pytest.fixture
def staff_api(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.mark.parametrize("moment", BAD)
def test_the_labels_api_refuses_an_unreadable_since(staff_api, labels_project, moment):
    answer = staff_api.get(f"/api/v1/projects/{labels_project.pk}/labels", {"since": moment})
    assert answer.status_code == 400 and (answer.json()["field"], answer.json()["value"]) == ("since", moment)


@pytest.mark.parametrize("moment", UNREADABLE)
def test_a_label_import_with_an_unreadable_created_at_names_its_line(staff_api, labels_project, moment):
    line = {"external_id": "r1", "rater": "nobody", "value": "a", "created_at": moment}
    answer = staff_api.post(f"/api/v1/projects/{labels_project.pk}/labels/import", data=orjson.dumps(line),
                            content_type="application/x-ndjson")
    assert answer.status_code == 400
    found = [(e["line"], e["code"]) for e in answer.json()["errors"] if e["field"] == "created_at"]
    assert found == [(1, "invalid_timestamp")]


@pytest.mark.parametrize("moment", UNREADABLE)
def test_a_split_cutoff_that_cannot_be_read_is_refused(source, moment):
    from trainingsets.services import SplitRuleInvalid, trainingset_create

    with pytest.raises(SplitRuleInvalid) as refused:
        trainingset_create(name="bad", sources=[source], split_kind="time",
                           split_cutoffs=[["old", moment], ["rest", None]])
    assert refused.value.field == "split_cutoffs" and "0001-01-02" in str(refused.value)


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01", "to=0001-01-01"])
@pytest.mark.parametrize("page", ["", "drift/"])
def test_a_quality_page_with_an_unreadable_day_says_so_with_a_400(admin_client, source, query, page):
    answer = admin_client.get(f"/quality/sources/{source.pk}/{page}?{query}")
    assert answer.status_code == 400
    assert "outside the accepted range" in answer.content.decode()


def test_a_quality_page_at_the_first_days_counts_back_no_further(admin_client, source):
    assert admin_client.get(f"/quality/sources/{source.pk}/?to=0001-01-05").status_code == 200
    assert admin_client.get(f"/quality/sources/{source.pk}/?from=9999-12-01&to=9999-12-30").status_code == 200


@pytest.mark.parametrize("moment", UNREADABLE)
def test_the_training_set_form_refuses_an_unreadable_cutoff_on_its_field(admin_client, source, moment):
    from trainingsets.models import TrainingSet

    answer = admin_client.post("/training-sets/", {
        "new-name": "far", "new-sources": [source.pk], "new-min_confidence": "0.7", "new-unlabeled": "drop",
        "new-split_kind": "time", "new-split_cutoffs": f"train {moment}, test", "new-formats": ["parquet"],
        "new-gate_on": "fail"})
    assert answer.status_code == 400 and "outside the accepted range" in answer.content.decode()
    assert not TrainingSet.objects.exists()
