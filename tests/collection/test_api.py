"""The batch and feedback API: what a source may send, what it gets back, and how bad input is refused."""
import gzip

import orjson
import pytest
from rest_framework.test import APIClient

from collection import services
from collection.models import Batch, FeedbackEvent, Record, SourceKey
from collection.storage import data_path
from tests.factories import post_batch, stored_payloads

URL = "/api/v1/batches"


def ndjson(n: int, start: int = 0) -> bytes:
    return b"".join(
        orjson.dumps({"external_id": f"r{i}", "features": {"x": i * 1.5, "c": "abc"[i % 3]}, "label": i % 2}) + b"\n"
        for i in range(start, start + n)
    )


def test_an_ndjson_batch_is_accepted_and_committed_before_ingest(api, source):
    response = post_batch(api, ndjson(5))
    assert response.status_code == 202, response.content
    body = response.json()
    batch = Batch.objects.get(pk=body["id"])
    assert body["status"] == "received" and batch.record_count == 5
    assert response["Location"].endswith(f"/api/v1/batches/{batch.pk}")
    assert data_path(batch.payload).read_bytes() == ndjson(5)
    assert list(batch.transitions.values_list("from_status", "to_status")) == [("", "received")]
    assert batch.columns == [["x", "float"], ["c", "str"], ["__label", "int"]]
    assert body["columns"][0] == {"name": "x", "type": "float"}
    assert Record.objects.count() == 0  # records come from the ingest step, not the request


def test_json_arrays_and_csv_are_accepted(api):
    records = [{"external_id": "a", "features": {"x": 1}}, {"external_id": "b", "features": {"x": 2}}]
    assert post_batch(api, orjson.dumps(records), "application/json").status_code == 202
    response = post_batch(api, b"external_id,x,label\na,1,yes\nb,2,no\n", "text/csv; charset=utf-8")
    assert response.status_code == 202 and response.json()["record_count"] == 2


def test_gzip_bodies_are_stored_as_sent_and_hashed_by_content(api):
    plain = post_batch(api, ndjson(3)).json()
    response = post_batch(api, gzip.compress(ndjson(3)), **{"Content-Encoding": "gzip"})
    assert response.status_code == 202
    batch = Batch.objects.get(pk=response.json()["id"])
    assert batch.gzipped and batch.sha256 == plain["sha256"]
    assert gzip.decompress(data_path(batch.payload).read_bytes()) == ndjson(3)


def test_the_same_content_again_is_recorded_as_a_duplicate(api):
    first = post_batch(api, ndjson(4)).json()
    again = post_batch(api, ndjson(4)).json()
    assert again["id"] != first["id"]
    assert again["status"] == "duplicate" and again["duplicate_of"] == first["id"]


def test_a_retried_post_with_an_idempotency_key_returns_the_first_batch(api):
    first = post_batch(api, ndjson(2), **{"Idempotency-Key": "upload-7"})
    again = post_batch(api, ndjson(2), **{"Idempotency-Key": "upload-7"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Batch.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "line", "field"),
    [
        (ndjson(2) + b'{"external_id": "r9", "features": {"x": }}\n', 3, "features.x"),
        (ndjson(2) + b'{"external_id": 9, "features": {}}\n', 3, "external_id"),
        (ndjson(2) + b'{"features": {"x": 1}}\n', 3, "external_id"),
        (ndjson(2) + ndjson(1), 3, "external_id"),
        (ndjson(1) + b'{"external_id": "z", "features": {"x": Infinity}}\n', 2, "features.x"),
        (ndjson(1) + b'{"external_id": "z", "features": {"c": "a\\u0000"}}\n', 2, "features.c"),
    ],
    ids=["malformed", "non-string-id", "missing-id", "duplicate-id", "non-finite", "nul-character"],
)
def test_bad_records_are_refused_with_line_and_field_and_nothing_is_kept(api, source, body, line, field):
    response = post_batch(api, body)
    assert response.status_code == 400
    error = response.json()
    assert (error["error"], error["line"], error["field"]) == ("invalid_payload", line, field)
    assert f"line {line}" in error["detail"]
    assert Batch.objects.count() == 0 and stored_payloads(source) == []


def test_malformed_csv_is_refused_with_its_line(api):
    response = post_batch(api, b"external_id,x\na,1\nb,\"unclosed\n", "text/csv")
    assert response.status_code == 400
    assert response.json()["line"] == 3


def test_an_unsupported_content_type_gets_415(api):
    response = post_batch(api, b"<xml/>", "application/xml")
    assert response.status_code == 415
    assert "application/xml" in response.json()["detail"]


def test_an_unsupported_content_encoding_gets_415(api):
    assert post_batch(api, ndjson(1), **{"Content-Encoding": "br"}).status_code == 415


def test_a_body_that_claims_gzip_but_is_not_is_refused(api, source):
    response = post_batch(api, ndjson(2), **{"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert response.json()["field"] == "Content-Encoding"
    assert Batch.objects.count() == 0 and stored_payloads(source) == []


def test_a_truncated_gzip_body_is_refused(api):
    response = post_batch(api, gzip.compress(ndjson(50))[:-20], **{"Content-Encoding": "gzip"})
    assert response.status_code == 400


def test_an_empty_body_is_refused(api):
    response = post_batch(api, b"")
    assert response.status_code == 400
    assert response.json()["error"] == "empty_body"
    assert post_batch(api, b"\n\n").status_code == 400


def test_a_body_over_the_limit_gets_413_from_its_declared_length(api, settings, source):
    settings.SIEVE_MAX_UPLOAD_BYTES = 100
    response = post_batch(api, ndjson(20))
    assert response.status_code == 413 and response.json()["limit"] == 100
    assert stored_payloads(source) == []


def test_a_body_over_the_limit_is_cut_off_while_streaming(settings, source):
    from collection.storage import BodyTooLarge

    class EndlessBody:
        """A client that lies about its length: reading must stop at the limit, not at the end."""

        read_bytes = 0
        lines = 0

        def read(self, size):
            self.read_bytes += size
            chunk, length = [], 0
            while length < size:
                self.lines += 1
                chunk.append(b'{"external_id": "x%d", "features": {}}\n' % self.lines)
                length += len(chunk[-1])
            return b"".join(chunk)

    settings.SIEVE_MAX_UPLOAD_BYTES = 5_000_000
    body = EndlessBody()
    with pytest.raises(BodyTooLarge):
        services.batch_receive(source=source, body=body, fmt="ndjson", gzipped=False)
    assert body.read_bytes < 8_000_000
    assert stored_payloads(source) == []


def test_an_unknown_key_gets_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer sieve_nope_nope")
    response = post_batch(client, ndjson(1))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_no_credentials_get_401(db):
    assert post_batch(APIClient(), ndjson(1)).status_code == 401


def test_a_revoked_key_gets_401(api, source, source_key):
    services.source_key_revoke(key=SourceKey.objects.get(source=source))
    response = post_batch(api, ndjson(1))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_a_key_used_for_another_source_gets_403(api, source):
    other = services.source_create(name="other-app", kind="service")
    response = api.post(f"{URL}?source=other-app", data=ndjson(1), content_type="application/x-ndjson")
    assert response.status_code == 403
    _, other_key = services.source_key_create(source=other)
    outsider = APIClient()
    outsider.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    batch_id = post_batch(api, ndjson(1)).json()["id"]
    assert outsider.get(f"{URL}/{batch_id}").status_code == 403
    assert outsider.get(f"{URL}?source={source.name}").status_code == 403


def test_a_key_over_its_rate_gets_429_with_retry_after(api, source):
    SourceKey.objects.filter(source=source).update(rate="2/min")
    codes = [api.get(URL).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    response = api.get(URL)
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 60


def test_using_a_key_records_when_it_was_last_used(api, source):
    assert SourceKey.objects.get(source=source).last_used_at is None
    api.get(URL)
    assert SourceKey.objects.get(source=source).last_used_at is not None


def test_a_batch_reports_status_counts_timings_and_errors(api):
    batch_id = post_batch(api, ndjson(3)).json()["id"]
    body = api.get(f"{URL}/{batch_id}").json()
    assert body["status"] == "received" and body["record_count"] == 3
    assert body["timings"] == {"queued_seconds": None, "ingest_seconds": None}
    assert body["error"] is None
    assert api.get(f"{URL}/999999").status_code == 404


def test_batches_are_listed_newest_first_with_filters(api, source):
    first = post_batch(api, ndjson(1)).json()["id"]
    second = post_batch(api, ndjson(1, start=5)).json()["id"]
    duplicate = post_batch(api, ndjson(1, start=5)).json()["id"]
    listed = api.get(URL).json()["results"]
    assert [b["id"] for b in listed] == [duplicate, second, first]
    assert [b["id"] for b in api.get(f"{URL}?status=duplicate").json()["results"]] == [duplicate]
    assert api.get(f"{URL}?status=bogus").status_code == 400
    assert api.get(f"{URL}?received_after=2999-01-01T00:00:00Z").json()["results"] == []
    assert api.get(f"{URL}?received_after=soon").status_code == 400


def test_staff_see_every_source_and_upload_by_naming_one(admin_client, source):
    services.source_create(name="second", kind="upload")
    response = admin_client.post(f"{URL}?source=second", data=ndjson(2), content_type="application/x-ndjson")
    assert response.status_code == 202
    assert Batch.objects.get().source.name == "second"
    assert len(admin_client.get(URL).json()["results"]) == 1


def test_a_non_staff_user_cannot_use_the_batch_api(client, django_user_model, source):
    user = django_user_model.objects.create_user("rater", password="pw-12345678")
    client.force_login(user)
    assert client.get(URL).status_code == 403


# --- feedback


def event(i: int, **over) -> dict:
    return {"external_id": f"r{i}", "signal": "rating", "value": i % 5, "actor": f"user-{i}",
            "occurred_at": "2026-11-01T12:00:00Z", "idempotency_key": f"ev-{i}", **over}


def send_feedback(client, data):
    return client.post("/api/v1/feedback", data=orjson.dumps(data), content_type="application/json")


def test_feedback_events_are_stored_once_with_pseudonymous_actors(api, source):
    response = send_feedback(api, [event(i) for i in range(3)])
    assert response.status_code == 201
    assert response.json() == {"accepted": 3, "duplicates": 0, "linked": 0}
    again = send_feedback(api, [event(i) for i in range(4)])
    assert again.json() == {"accepted": 1, "duplicates": 3, "linked": 0}
    assert FeedbackEvent.objects.count() == 4
    stored = FeedbackEvent.objects.get(idempotency_key="ev-1")
    assert stored.actor == services.actor_pseudonym("user-1") and len(stored.actor) == 64
    assert not FeedbackEvent.objects.filter(actor__contains="user-").exists()


def test_a_single_feedback_event_is_accepted(api):
    assert send_feedback(api, event(1)).status_code == 201


def test_feedback_without_a_key_is_deduplicated_by_content(api):
    bare = event(1)
    del bare["idempotency_key"]
    assert send_feedback(api, bare).json()["accepted"] == 1
    assert send_feedback(api, bare).json()["duplicates"] == 1


def test_feedback_for_a_known_record_is_linked_at_once(api, source):
    batch_id = post_batch(api, ndjson(2)).json()["id"]
    services.batch_ingest(batch_id=batch_id)
    assert send_feedback(api, [event(1), event(7)]).json()["linked"] == 1
    assert FeedbackEvent.objects.get(external_id="r1").record.batch_id == batch_id


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"signal": None}, "signal"), ({"occurred_at": "noon"}, "occurred_at"), ({"value": {"a": 1}}, "value"),
     ({"external_id": 5}, "external_id"), ({"colour": "red"}, "colour"), ({"actor": "u\x00"}, "actor"),
     ({"value": "bad\x00"}, "value")],
)
def test_bad_feedback_is_refused_naming_the_event_and_field(api, bad, field):
    response = send_feedback(api, [event(0), event(1, **bad)])
    assert response.status_code == 400
    assert (response.json()["index"], response.json()["field"]) == (1, field)
    assert FeedbackEvent.objects.count() == 0


def test_malformed_feedback_json_names_the_line(api):
    response = api.post("/api/v1/feedback", data=b'[{"a": 1},\n{"b": }]', content_type="application/json")
    assert response.status_code == 400 and response.json()["line"] == 2


def test_schema_and_docs_are_served_without_the_internet(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/batches" in schema.content and b"/api/v1/feedback" in schema.content
    assert b"sourceKey" in schema.content and b"scheme: bearer" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower() and "https://" not in html.replace("https://swagger.io", "")


def test_the_site_root_leads_each_user_to_their_pages(client, admin_client, django_user_model):
    from labeling import services as labeling

    response = client.get("/", follow=True)
    assert response.redirect_chain == [("/accounts/login/", 302)]
    assert admin_client.get("/", follow=True).redirect_chain[-1] == ("/quality/", 302)
    rater = labeling.rater_create(username="gina", kind="generalist", password="pw-12345678")
    client.force_login(rater.user)
    assert client.get("/", follow=True).redirect_chain[-1] == ("/label/", 302)


def test_the_same_event_twice_in_one_request_is_stored_once(api):
    response = send_feedback(api, [event(1), event(1), event(2)])
    assert response.json() == {"accepted": 2, "duplicates": 1, "linked": 0}
    assert FeedbackEvent.objects.count() == 2
    stored = FeedbackEvent.objects.get(idempotency_key="ev-1")
    assert (stored.signal, stored.value, stored.occurred_at.isoformat()) == ("rating", 1, "2026-11-01T12:00:00+00:00")
