"""The validation API: a batch's verdict and an admin's review, reached through the batch URLs."""
from rest_framework.test import APIClient

from collection import services as collection
from tests.factories import URL_BATCHES as URL
from tests.factories import checkout_records
from validation import services


def judged_batch(upload):
    """A batch uploaded, ingested and judged in this process: with no baseline, quarantined for want of one."""
    batch_id = upload(checkout_records(30, prefix="j"))
    collection.batch_ingest(batch_id=batch_id)
    return services.batch_validate(batch_id=batch_id)


def test_only_staff_read_a_batchs_verdict(api, upload, admin_client, client, django_user_model):
    batch_id = upload(checkout_records(3))
    assert admin_client.get(f"{URL}/{batch_id}/validation").status_code == 404  # not judged yet
    batch = judged_batch(upload)
    body = admin_client.get(f"{URL}/{batch.pk}/validation").json()
    assert (body["status"], body["verdict"], body["reasons"]) == ("quarantined", "no_baseline", ["no baseline"])
    # Its own source sees the status on the batch, not the reasons; raters and other sources see nothing.
    assert api.get(f"{URL}/{batch.pk}").json()["status"] == "quarantined"
    assert api.get(f"{URL}/{batch.pk}/validation").status_code == 403
    client.force_login(django_user_model.objects.create_user("rater", password="pw-12345678"))
    assert client.get(f"{URL}/{batch.pk}/validation").status_code == 403
    assert APIClient().get(f"{URL}/{batch.pk}/validation").status_code in (401, 403)


def test_only_staff_review_and_a_second_review_conflicts(api, upload, admin_client, client, django_user_model):
    batch = judged_batch(upload)
    url = f"{URL}/{batch.pk}/review"
    assert api.post(url, {"decision": "approve"}, format="json").status_code == 403
    client.force_login(django_user_model.objects.create_user("rater", password="pw-12345678"))
    assert client.post(url, {"decision": "approve"}, content_type="application/json").status_code == 403
    assert admin_client.post(url, {"decision": "maybe"}, content_type="application/json").status_code == 400
    response = admin_client.post(url, {"decision": "approve", "comment": "ok"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["status"] == "admitted"
    again = admin_client.post(url, {"decision": "reject"}, content_type="application/json")
    assert again.status_code == 409
