"""The consensus-run API (staff only) and the adjudication API (staff and the project's experts): what each
answers, retries, errors as JSON with a code, and who is refused how."""
import pytest
from rest_framework.test import APIClient

from labeling import services
from labeling.models import Adjudication, Annotation, ConsensusRun, QueueItem, Rater
from tests.factories import CHOICES, batch_of_records


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {services.user_token(user=user)}")
    return client


@pytest.fixture
def waiting(source):
    """A "law" project with three items tied between two raters, waiting for adjudication."""
    project = services.project_create(name="contracts", choices=CHOICES, overlap=2, sources=[source],
                                      domains=["law"])
    services.batch_route(batch_id=batch_of_records(source, 3).pk)
    anna, ben = (services.rater_create(username=name, domains=["law"]) for name in ("anna", "ben"))
    services.project_add_raters(project=project, raters=[anna, ben])
    items = list(project.items.order_by("id"))
    for item in items:
        Annotation.objects.bulk_create([
            Annotation(item=item, project=project, rater=anna, value="positive", provenance="imported"),
            Annotation(item=item, project=project, rater=ben, value="negative", provenance="imported")])
    QueueItem.objects.filter(project=project).update(state="adjudication", decided_by="majority", agreement=0.5)
    erin = services.rater_create(username="erin", kind=Rater.Kind.EXPERT, domains=["law"])
    services.project_add_raters(project=project, raters=[erin])
    return project, items, erin


# --- consensus runs


def test_staff_request_a_run_list_runs_and_read_one(waiting, admin_user):
    project, _, _ = waiting
    staff = client_for(admin_user)
    answer = staff.post(f"/api/v1/projects/{project.pk}/consensus-runs", {"max_iter": 50}, format="json")
    assert answer.status_code == 202, answer.content
    run = answer.json()
    assert (run["status"], run["trigger"], run["method"], run["requested_by"]) == ("queued", "demand",
                                                                                    "dawid_skene", "admin")
    assert run["parameters"] == {"tol": 1e-6, "max_iter": 50, "smoothing": 0.01}
    again = staff.post(f"/api/v1/projects/{project.pk}/consensus-runs", format="json")
    assert again.status_code == 200 and again.json()["id"] == run["id"]

    services.consensus_run_execute(run=ConsensusRun.objects.get(pk=run["id"]))
    listed = staff.get(f"/api/v1/projects/{project.pk}/consensus-runs").json()
    assert [r["id"] for r in listed["results"]] == [run["id"]] and "rater_confusion" not in listed["results"][0]
    detail = staff.get(run["url"]).json()
    assert (detail["status"], detail["label_count"], detail["item_count"]) == ("done", 6, 3)
    assert len(detail["labels_sha256"]) == 64 and detail["max_annotation_id"] == Annotation.objects.latest("id").pk
    assert detail["classes"] == ["positive", "negative", "neutral"] and len(detail["rater_confusion"]) == 2
    assert detail["error"] == "" and detail["finished_at"]


def test_bad_run_parameters_are_refused_with_the_field(waiting, admin_user):
    project, _, _ = waiting
    answer = client_for(admin_user).post(f"/api/v1/projects/{project.pk}/consensus-runs", {"max_iter": 0},
                                         format="json")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid"
    assert "max_iter" in answer.json()["fields"] and not ConsensusRun.objects.exists()


def test_raters_source_keys_and_strangers_get_no_consensus_run(waiting, api, admin_user):
    project, _, erin = waiting
    run = services.consensus_run_request(project=project, trigger="demand")
    urls = [f"/api/v1/projects/{project.pk}/consensus-runs", f"/api/v1/consensus-runs/{run.pk}"]
    for url in urls:
        assert client_for(erin.user).get(url).status_code == 403  # an expert, but not staff
        by_key = api.get(url)  # a source's key is not a person, and is told so
        assert (by_key.status_code, by_key.json()["error"]) == (401, "source_key_not_accepted")
        assert APIClient().get(url).status_code == 401
    refused = client_for(erin.user).post(urls[0])
    assert refused.status_code == 403 and refused.json()["error"] == "permission_denied"
    assert client_for(admin_user).get("/api/v1/consensus-runs/999999").json()["error"] == "not_found"


# --- adjudication


def test_an_expert_reads_the_queue_with_every_label_and_decides_an_item(waiting):
    project, items, erin = waiting
    expert = client_for(erin.user)
    queue = expert.get(f"/api/v1/projects/{project.pk}/adjudication").json()
    assert queue["waiting"] == 3 and [i["id"] for i in queue["results"]] == [i.pk for i in items]
    first = queue["results"][0]
    assert {(label["username"], label["kind"], label["value"]) for label in first["labels"]} == {
        ("anna", "generalist", "positive"), ("ben", "generalist", "negative")}
    assert first["record"]["external_id"] == items[0].record.external_id and first["posterior"] is None

    body = {"value": "negative", "reason": "the review is sarcastic"}
    decided = expert.post(first["adjudication_url"], body, format="json")
    assert decided.status_code == 201, decided.content
    assert (decided.json()["decided_by"], decided.json()["item_state"]) == ("erin", "complete")
    retried = expert.post(first["adjudication_url"], body, format="json")
    assert retried.status_code == 200 and retried.json()["id"] == decided.json()["id"]
    other = expert.post(first["adjudication_url"], {**body, "value": "positive"}, format="json")
    assert other.status_code == 409 and other.json()["error"] == "already_adjudicated"
    assert expert.get(f"/api/v1/projects/{project.pk}/adjudication").json()["waiting"] == 2
    assert Adjudication.objects.get().reason == "the review is sarcastic"


def test_a_decision_without_a_reason_or_with_a_bad_value_is_refused_with_its_field(waiting):
    project, items, erin = waiting
    expert = client_for(erin.user)
    url = f"/api/v1/items/{items[0].pk}/adjudication"
    answers = {
        "reason_required": expert.post(url, {"value": "negative", "reason": " "}, format="json"),
        "invalid_label": expert.post(url, {"value": "maybe", "reason": "sure"}, format="json"),
        "invalid_payload": expert.post(url, {"reason": "no value"}, format="json"),
    }
    for code, answer in answers.items():
        assert answer.status_code == 400 and answer.json()["error"] == code, answer.content
    assert answers["invalid_label"].json()["field"] == "value"
    assert answers["reason_required"].json()["field"] == "reason"
    unlabelable = expert.post(url, {"unlabelable": True, "reason": "gibberish"}, format="json")
    assert unlabelable.status_code == 403 and unlabelable.json()["error"] == "not_allowed"
    assert not Adjudication.objects.exists()


def test_staff_close_an_item_as_unlabelable_through_the_api(waiting, admin_user):
    _, items, _ = waiting
    answer = client_for(admin_user).post(f"/api/v1/items/{items[1].pk}/adjudication",
                                         {"unlabelable": True, "reason": "the text is empty"}, format="json")
    assert answer.status_code == 201 and answer.json()["item_state"] == "unlabelable"
    assert answer.json()["value"] is None and answer.json()["unlabelable"] is True


def test_generalists_strangers_and_source_keys_cannot_adjudicate(waiting, source, api):
    project, items, _ = waiting
    anna = Rater.objects.get(user__username="anna")
    stranger = services.rater_create(username="sam", kind=Rater.Kind.EXPERT, domains=["law"])
    queue, decide = f"/api/v1/projects/{project.pk}/adjudication", f"/api/v1/items/{items[0].pk}/adjudication"
    body = {"value": "positive", "reason": "sure"}
    generalist = client_for(anna.user)
    assert generalist.get(queue).status_code == 403 and generalist.get(queue).json()["error"] == "not_allowed"
    assert generalist.post(decide, body, format="json").status_code == 403
    outsider = client_for(stranger.user)  # an expert of the domain, but not a member: the project is not theirs
    assert outsider.get(queue).status_code == 404 and outsider.post(decide, body, format="json").status_code == 404
    for client in (api, APIClient()):
        assert client.get(queue).status_code == 401 and client.post(decide, body, format="json").status_code == 401
    assert not Adjudication.objects.exists()
    assert QueueItem.objects.get(pk=items[0].pk).state == "adjudication"


def test_the_schema_describes_the_consensus_and_adjudication_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/projects/{id}/consensus-runs", "/api/v1/consensus-runs/{id}",
                 "/api/v1/projects/{id}/adjudication", "/api/v1/items/{id}/adjudication"):
        assert path in schema["paths"], path
    post = schema["paths"]["/api/v1/projects/{id}/consensus-runs"]["post"]["responses"]
    assert {"200", "202"} <= set(post)
    decide = schema["paths"]["/api/v1/items/{id}/adjudication"]["post"]["responses"]
    assert {"200", "201", "400", "403", "409"} <= set(decide)
    assert decide["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")
    queue = schema["components"]["schemas"]["AdjudicationQueuePage"]["properties"]
    assert {"waiting", "next", "previous", "results"} <= set(queue)
