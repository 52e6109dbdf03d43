"""The labeling API: tokens, the rater's flow (next, submit, skip, undo), and who may read what, endpoint by endpoint."""
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from labeling import services
from labeling.models import Annotation, Rater
from tests.factories import CHOICES, batch_of_records, project_make


def client_for(rater) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {services.rater_token(rater=rater)}")
    return client


@pytest.fixture
def other_project(source):
    project = project_make(source, name="other", overlap=1)
    return project


@pytest.fixture
def world(project, other_project, queued, make_rater):
    """Two raters of `project` (alice labels one item), a rater of only `other_project` (bob), and an admin."""
    alice, carol = make_rater("alice"), make_rater("carol")
    bob = make_rater("bob", join=other_project)
    lease = services.item_next(rater=alice, project=project)
    services.assignment_submit(assignment=lease, value="positive")
    carol_lease = services.item_next(rater=carol, project=project)
    return {"alice": alice, "carol": carol, "bob": bob, "alice_item": lease.item_id, "carol_lease": carol_lease}


def test_a_token_is_issued_for_a_raters_password_and_refused_for_a_wrong_one(project, make_rater):
    make_rater("dana", password="dana-long-password")
    anonymous = APIClient()
    answer = anonymous.post("/api/v1/token", {"username": "dana", "password": "dana-long-password"}, format="json")
    assert answer.status_code == 200
    token = answer.json()["token"]
    again = anonymous.post("/api/v1/token", {"username": "dana", "password": "dana-long-password"}, format="json")
    assert again.json()["token"] == token
    wrong = anonymous.post("/api/v1/token", {"username": "dana", "password": "nope"}, format="json")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anonymous.get("/api/v1/projects").status_code == 200


def test_the_token_command_prints_and_rotates_a_raters_token(project, make_rater, capsys):
    rater = make_rater("erin")
    call_command("rater_token", "erin")
    first = capsys.readouterr().out.strip()
    call_command("rater_token", "erin", "--rotate")
    second = capsys.readouterr().out.strip()
    assert first and second and first != second
    stale = APIClient()
    stale.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert stale.get("/api/v1/projects").status_code == 401
    assert services.rater_token(rater=rater) == second


def test_a_rater_labels_through_the_api_and_a_retried_submit_is_not_a_duplicate(project, queued, make_rater):
    client = client_for(make_rater())
    lease = client.get(f"/api/v1/projects/{project.pk}/next")
    assert lease.status_code == 200
    body = lease.json()
    assert body["record"]["external_id"] and body["record"]["features"]["text"].startswith("review")
    assert "is_gold" not in body and "gold_answer" not in body
    assert body["expires_at"].endswith("Z") and body["annotation_url"].endswith(f"/api/v1/assignments/{body['id']}/annotation")
    assert client.get(f"/api/v1/projects/{project.pk}/next").json()["id"] == body["id"]  # a reload
    first = client.post(f"/api/v1/assignments/{body['id']}/annotation", {"value": "negative"}, format="json")
    retry = client.post(f"/api/v1/assignments/{body['id']}/annotation", {"value": "negative"}, format="json")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json()["id"] == retry.json()["id"] and Annotation.objects.count() == 1
    other = client.post(f"/api/v1/assignments/{body['id']}/annotation", {"value": "positive"}, format="json")
    assert other.status_code == 409 and other.json()["error"] == "assignment_finished"


def test_errors_name_the_field_and_the_value(project, queued, make_rater):
    client = client_for(make_rater())
    lease = client.get(f"/api/v1/projects/{project.pk}/next").json()
    bad = client.post(f"/api/v1/assignments/{lease['id']}/annotation", {"value": "great"}, format="json")
    assert bad.status_code == 400
    assert bad.json() | {"detail": ""} == {"error": "invalid_label", "detail": "", "field": "value", "value": "great"}
    missing = client.post(f"/api/v1/assignments/{lease['id']}/annotation", {}, format="json")
    assert missing.status_code == 400 and missing.json()["field"] == "value"


def test_skip_and_undo_through_the_api(project, queued, make_rater):
    client = client_for(make_rater())
    first = client.get(f"/api/v1/projects/{project.pk}/next").json()
    skipped = client.post(f"/api/v1/assignments/{first['id']}/skip", {"reason": "unreadable"}, format="json")
    assert skipped.status_code == 200 and skipped.json()["state"] == "skipped"
    second = client.get(f"/api/v1/projects/{project.pk}/next").json()
    assert second["item"] != first["item"]
    client.post(f"/api/v1/assignments/{second['id']}/annotation", {"value": "neutral"}, format="json")
    undone = client.post(f"/api/v1/projects/{project.pk}/undo")
    assert undone.status_code == 200 and undone.json()["item"] == second["item"]
    history = client.get(f"/api/v1/projects/{project.pk}/history").json()
    assert [row["state"] for row in history] == ["undone", "skipped"]
    assert client.post(f"/api/v1/projects/{project.pk}/undo").json()["error"] == "nothing_to_undo"


def test_an_empty_queue_answers_204(source, make_rater):
    project = services.project_create(name="empty", choices=CHOICES, sources=[source])
    client = client_for(make_rater(join=project))
    assert client.get(f"/api/v1/projects/{project.pk}/next").status_code == 204


def test_next_answers_503_with_retry_after_while_the_queue_is_held_and_a_lease_once_it_is_not(
        transactional_db, project, queued, make_rater, hold_items, settings):
    client = client_for(make_rater())
    settings.SIEVE_NEXT_CONTENTION_SECONDS = 0.3
    holder = hold_items(project)  # another transaction holds every item row, as `FOR UPDATE` in psql would
    busy = client.get(f"/api/v1/projects/{project.pk}/next")
    holder.release()
    assert busy.status_code == 503, "work remains: 204 would tell the client there is none"
    assert busy.json()["error"] == "queue_busy" and int(busy["Retry-After"]) >= 1
    settings.SIEVE_NEXT_CONTENTION_SECONDS = 30
    holder = hold_items(project, until_probed=True)  # held briefly: `next` waits it out
    lease = client.get(f"/api/v1/projects/{project.pk}/next")
    holder.release()
    assert holder.probed and lease.status_code == 200 and lease.json()["item"] == queued[0].pk


def test_a_rater_lists_only_their_projects_and_staff_list_all(world, project, other_project, admin_user):
    names = [p["name"] for p in client_for(world["alice"]).get("/api/v1/projects").json()]
    assert names == ["sentiment"]
    assert [p["name"] for p in client_for(world["bob"]).get("/api/v1/projects/").json()] == ["other"]
    staff = APIClient()
    staff.force_authenticate(admin_user)
    assert sorted(p["name"] for p in staff.get("/api/v1/projects").json()) == ["other", "sentiment"]


def test_a_rater_sees_only_the_items_they_labeled_with_only_their_own_label(world, project, admin_user):
    carol = client_for(world["carol"])
    services.assignment_submit(assignment=world["carol_lease"], value="negative")
    rows = carol.get(f"/api/v1/projects/{project.pk}/items").json()["results"]
    assert [(r["id"], r["my_label"]) for r in rows] == [(world["alice_item"], "negative")]
    assert "consensus" not in rows[0] and "is_gold" not in rows[0]
    alice_rows = client_for(world["alice"]).get(f"/api/v1/projects/{project.pk}/items").json()["results"]
    assert [(r["id"], r["my_label"]) for r in alice_rows] == [(world["alice_item"], "positive")]
    staff = APIClient()
    staff.force_authenticate(admin_user)
    every = staff.get(f"/api/v1/projects/{project.pk}/items").json()["results"]
    assert len(every) == 10 and {"state", "consensus", "is_gold", "submitted_count"} <= set(every[0])


def test_another_projects_endpoints_are_404_for_a_rater(world, project):
    bob = client_for(world["bob"])
    for method, path in [("get", ""), ("get", "/items"), ("get", "/next"), ("get", "/history"), ("post", "/undo")]:
        answer = getattr(bob, method)(f"/api/v1/projects/{project.pk}{path}")
        assert answer.status_code == 404, (path, answer.status_code)


def test_another_raters_assignment_is_404_on_every_endpoint(world):
    lease = world["carol_lease"].pk
    alice = client_for(world["alice"])
    assert alice.get(f"/api/v1/assignments/{lease}").status_code == 404
    assert alice.post(f"/api/v1/assignments/{lease}/annotation", {"value": "positive"}, format="json").status_code == 404
    assert alice.post(f"/api/v1/assignments/{lease}/skip", {}, format="json").status_code == 404
    assert Annotation.objects.filter(assignment_id=lease).count() == 0
    assert client_for(world["carol"]).get(f"/api/v1/assignments/{lease}").status_code == 200


def test_a_member_who_does_not_fit_an_expert_project_gets_403_and_no_item(source, make_rater):
    project = services.project_create(name="experts", choices=CHOICES, sources=[source],
                                      allowed_kinds=[Rater.Kind.EXPERT])
    services.batch_route(batch_id=batch_of_records(source, 3).pk)
    generalist = client_for(make_rater(join=project))
    answer = generalist.get(f"/api/v1/projects/{project.pk}/next")
    assert answer.status_code == 403 and answer.json()["error"] == "not_allowed"
    assert client_for(make_rater(kind=Rater.Kind.EXPERT, join=project)).get(
        f"/api/v1/projects/{project.pk}/next").status_code == 200


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/projects"), ("get", "/api/v1/projects/{p}"), ("get", "/api/v1/projects/{p}/items"),
    ("get", "/api/v1/projects/{p}/next"), ("get", "/api/v1/projects/{p}/history"), ("post", "/api/v1/projects/{p}/undo"),
    ("get", "/api/v1/assignments/{a}"), ("post", "/api/v1/assignments/{a}/annotation"),
    ("post", "/api/v1/assignments/{a}/skip"),
])
def test_source_keys_and_anonymous_requests_are_refused_on_every_endpoint(world, project, api, method, path):
    url = path.format(p=project.pk, a=world["carol_lease"].pk)
    assert getattr(api, method)(url).status_code == 401  # a source's Bearer key is not a person
    assert getattr(APIClient(), method)(url).status_code == 401


def test_a_source_key_on_the_labeling_api_is_told_it_is_not_accepted_and_what_is(project, api, source_key):
    for client in (api, APIClient(HTTP_X_API_KEY=source_key)):
        answer = client.get("/api/v1/projects")
        body = answer.json()
        assert (answer.status_code, body["error"]) == (401, "source_key_not_accepted")
        assert "source's API key is not accepted here" in body["detail"] and "Token <token>" in body["detail"]
        assert answer["WWW-Authenticate"] == "Token"
    anonymous = APIClient().get("/api/v1/projects").json()
    assert anonymous["error"] == "not_authenticated"
