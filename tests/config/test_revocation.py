"""Revoking or deleting a source key, deactivating a user or rotating a token takes effect on the next request,
on every web process, even when a lookup that started before the revocation fills the cache after it."""
import pytest
import requests
from django.core.cache import cache
from rest_framework.test import APIClient

from collection import services
from collection.models import SourceKey
from labeling import services as labeling
from tests.conftest import start_web

ROUNDS = 12  # requests in a row: gunicorn's two workers both answer some of them


def batches(url: str, key: str) -> list[int]:
    return [requests.get(f"{url}/api/v1/batches", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code
            for _ in range(ROUNDS)]


def projects(url: str, token: str) -> list[int]:
    return [requests.get(f"{url}/api/v1/projects", headers={"Authorization": f"Token {token}"}, timeout=10)
            .status_code for _ in range(ROUNDS)]


@pytest.fixture
def web(transactional_db, tmp_path, data_dir, celery_queue):
    proc, url = start_web(tmp_path, data_dir=data_dir, queue=celery_queue)
    yield url
    proc.stop()


def test_a_revoked_or_deleted_key_and_a_deactivated_user_are_refused_by_every_web_process(web, source):
    revoked, revoked_raw = services.source_key_create(source=source, name="revoked")
    deleted, deleted_raw = services.source_key_create(source=source, name="deleted")
    rater = labeling.rater_create(username="ann")
    token = labeling.rater_token(rater=rater)
    assert batches(web, revoked_raw) == batches(web, deleted_raw) == [200] * ROUNDS  # cached by both workers
    assert projects(web, token) == [200] * ROUNDS

    services.source_key_revoke(key=revoked)
    SourceKey.objects.get(pk=deleted.pk).delete()  # as the admin deletes it
    user = rater.user
    user.is_active = False
    user.save()  # as the admin deactivates a user
    assert batches(web, revoked_raw) == batches(web, deleted_raw) == [401] * ROUNDS
    assert projects(web, token) == [401] * ROUNDS


def test_deleting_a_source_refuses_its_keys_at_once(web, django_user_model):
    other = services.source_create(name="short-lived", kind="app")
    _, raw = services.source_key_create(source=other)
    assert batches(web, raw) == [200] * ROUNDS
    other.delete()
    assert batches(web, raw) == [401] * ROUNDS


class RevokeBeforeFill:
    """The cache's `set` of a credentials entry, preceded by `revoke`: the lookup read the database before
    the revocation and fills the cache after it, the race of issue 13."""

    def __init__(self, prefix: str, revoke):
        self.prefix, self.revoke, self.set, self.raced = prefix, revoke, cache.set, False

    def __call__(self, name, *args, **kwargs):
        if name.startswith(self.prefix) and not self.raced:
            self.raced = True
            self.revoke()
        return self.set(name, *args, **kwargs)


def test_a_key_lookup_that_raced_its_revocation_does_not_keep_it_alive(source, source_key, monkeypatch):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {source_key}")
    key = SourceKey.objects.get(source=source)
    race = RevokeBeforeFill("sieve:key:", lambda: services.source_key_revoke(key=key))
    monkeypatch.setattr(cache, "set", race)
    assert client.get("/api/v1/batches").status_code == 200  # authenticated before the revocation
    assert race.raced
    assert client.get("/api/v1/batches").status_code == 401


def test_a_token_lookup_that_raced_a_deactivation_does_not_keep_it_alive(db, monkeypatch):
    rater = labeling.rater_create(username="bob")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {labeling.rater_token(rater=rater)}")

    def deactivate():
        user = type(rater.user).objects.get(pk=rater.user_id)
        user.is_active = False
        user.save(update_fields=["is_active"])

    race = RevokeBeforeFill("sieve:token:", deactivate)
    monkeypatch.setattr(cache, "set", race)
    assert client.get("/api/v1/projects").status_code == 200
    assert race.raced
    assert client.get("/api/v1/projects").status_code == 401


def test_a_rotated_token_is_refused_and_a_login_does_not_empty_the_cache(db):
    from collection.auth import GENERATION

    rater = labeling.rater_create(username="cat", password="pw-12345678")
    old = labeling.rater_token(rater=rater)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/v1/projects").status_code == 200
    generation = cache.get(GENERATION)
    assert APIClient().login(username="cat", password="pw-12345678")  # saves last_login only
    assert cache.get(GENERATION) == generation
    labeling.rater_token(rater=rater, rotate=True)
    assert client.get("/api/v1/projects").status_code == 401
