"""The login throttle: failed sign-ins counted per account and per address on every way in (the API token,
Basic auth, the sign-in page and the admin's); the LIMIT-th failure locks out, and then even the right password
is refused, with 429 and Retry-After, until the lockout ends; a success resets the count."""
import base64
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from config.security import lockout_seconds

LIMIT = 3
PASSWORD = "right-horse-battery-staple"
HOME = "10.0.0.1"


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # many sign-ins, quickly


@pytest.fixture
def staff(db):
    return User.objects.create_user("ada", password=PASSWORD, is_staff=True)


@pytest.fixture
def other(db):
    return User.objects.create_user("grace", password=PASSWORD, is_staff=True)


def token(username: str, password: str, address: str = HOME):
    return APIClient(REMOTE_ADDR=address).post("/api/v1/token", {"username": username, "password": password},
                                               format="json")


def assert_locked_out(response):
    assert response.status_code == 429
    assert response.json()["error"] == "too_many_attempts"
    assert "Too many failed sign-ins" in response.json()["detail"]
    assert int(response["Retry-After"]) == lockout_seconds() == 15 * 60


def test_the_token_api_refuses_the_right_password_after_too_many_wrong_ones(staff, other):
    for _ in range(LIMIT - 1):
        assert token("ada", "wrong").status_code == 401
    assert_locked_out(token("ada", "wrong"))
    assert_locked_out(token("ada", PASSWORD))
    # The account is locked from another address too; another account from elsewhere is not.
    assert_locked_out(token("ada", PASSWORD, address="10.0.0.2"))
    assert token("grace", PASSWORD, address="10.0.0.3").status_code == 200


def test_one_address_trying_many_accounts_is_locked_out(staff, other):
    for name in ("u1", "u2"):
        assert token(name, "wrong").status_code == 401
    assert_locked_out(token("u3", "wrong"))
    assert_locked_out(token("grace", PASSWORD))
    assert token("grace", PASSWORD, address="10.0.0.2").status_code == 200


def test_a_success_resets_the_count(staff):
    for _ in range(2):
        for _ in range(LIMIT - 1):
            assert token("ada", "wrong").status_code == 401
        assert token("ada", PASSWORD).status_code == 200
    assert token("ada", PASSWORD).status_code == 200


def test_the_lockout_ends_after_the_cool_off(staff):
    from axes.models import AccessAttempt

    for _ in range(LIMIT):
        token("ada", "wrong")
    assert_locked_out(token("ada", PASSWORD))
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16))
    assert token("ada", PASSWORD).status_code == 200


def test_basic_auth_is_throttled(staff):
    client = APIClient(REMOTE_ADDR=HOME)
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"ada:wrong").decode())
    for _ in range(LIMIT - 1):
        assert client.get("/api/v1/projects").status_code == 401
    assert_locked_out(client.get("/api/v1/projects"))
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"ada:{PASSWORD}".encode()).decode())
    assert_locked_out(client.get("/api/v1/projects"))


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_the_sign_in_pages_show_the_lockout(staff, url):
    client = Client(REMOTE_ADDR=HOME)
    for _ in range(LIMIT - 1):
        response = client.post(url, {"username": "ada", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    assert client.post(url, {"username": "ada", "password": "wrong"}).status_code == 429
    response = client.post(url, {"username": "ada", "password": PASSWORD})
    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60
    assert b"Too many failed sign-ins for this account or from this address: try again in 15 minutes." in (
        response.content)
    assert "_auth_user_id" not in client.session


def test_behind_a_proxy_the_forwarded_address_is_the_client(settings, staff, other):
    settings.SIEVE_PROXY_COUNT = 1
    for name in ("u1", "u2", "u3"):
        client = APIClient(REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 10.9.9.9")
        client.post("/api/v1/token", {"username": name, "password": "x"}, format="json")
    spoofing = APIClient(REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="10.9.9.9, 10.0.0.7")
    assert spoofing.post("/api/v1/token", {"username": "grace", "password": PASSWORD}, format="json").status_code == 200
    same = APIClient(REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert_locked_out(same.post("/api/v1/token", {"username": "grace", "password": PASSWORD}, format="json"))
