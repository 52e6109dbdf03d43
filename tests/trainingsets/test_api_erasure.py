"""The erasure API: staff erase a record or an actor's feedback; the answer holds counts, never the data."""
import pytest
from rest_framework.test import APIClient

from collection.models import FeedbackEvent, Record
from collection.services import actor_pseudonym
from tests.factories import admitted_batch, checkout_rows
from trainingsets.models import Erasure


@pytest.fixture
def staff_client(django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("dpo", password="x", is_staff=True))
    return client


def test_staff_erase_a_record_and_a_retry_gets_the_same_erasure(staff_client, source, built_version):
    answer = staff_client.post("/api/v1/erasures", {"source": source.name, "external_id": "r7",
                                                    "reason": "ticket 4411"}, format="json")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert body["kind"] == "record" and body["counts"]["revisions"] == 1
    assert body["versions"] == [{"training_set": built_version.training_set.name, "number": 1}]
    assert "r7" not in answer.content.decode()
    assert not Record.objects.filter(source=source, external_id="r7").exists()
    again = staff_client.post("/api/v1/erasures", {"source": source.name, "external_id": "r7"}, format="json")
    if Erasure.objects.get(pk=body["id"]).status == "files_pending":
        assert again.status_code == 200 and again.json()["id"] == body["id"]
    else:
        assert again.status_code == 404 and again.json()["error"] == "nothing_to_erase"
    assert staff_client.get(f"/api/v1/erasures/{body['id']}").json()["id"] == body["id"]


def test_an_actors_feedback_is_erased_by_its_raw_id(staff_client, source):
    batch = admitted_batch(source, checkout_rows(2))
    record = batch.records.first()
    from django.utils import timezone

    FeedbackEvent.objects.create(source=source, idempotency_key="a", external_id=record.external_id, record=record,
                                 signal="rating", value=4, actor=actor_pseudonym("user-42"),
                                 occurred_at=timezone.now())
    answer = staff_client.post("/api/v1/erasures", {"actor": "user-42"}, format="json")
    assert answer.status_code == 202 and answer.json()["kind"] == "actor"
    assert not FeedbackEvent.objects.filter(actor=actor_pseudonym("user-42")).exists()


@pytest.mark.parametrize("body, code", [
    ({"source": "checkout-app"}, "invalid"), ({"actor": "a", "source": "x", "external_id": "y"}, "invalid"),
    ({"source": "nowhere", "external_id": "r1"}, "not_found"), ({"source": "checkout-app", "external_id": "zz"},
                                                              "nothing_to_erase"),
])
def test_a_bad_erasure_request_is_refused_with_a_code(staff_client, source, body, code):
    answer = staff_client.post("/api/v1/erasures", body, format="json")
    assert answer.status_code in (400, 404) and answer.json()["error"] == code


def test_only_staff_may_erase(source, django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("ana", password="x"))
    answer = client.post("/api/v1/erasures", {"source": source.name, "external_id": "r1"}, format="json")
    assert answer.status_code == 403 and answer.json()["error"] == "permission_denied"
    assert APIClient().get("/api/v1/erasures/1").status_code == 401
