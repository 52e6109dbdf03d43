"""Sieve's secrets: required outside development (a system check that gunicorn and Celery obey too), and
the pseudonym and webhook keys separate from SECRET_KEY."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from config.checks import check_secrets, refuse_without_secrets

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET = "k" * 40
PSEUDONYM = "p" * 40
WEBHOOK = "w" * 40
PRODUCTION = dict(SIEVE_DEV=False, DEBUG=False, SECRET_KEY=SECRET, SIEVE_PSEUDONYM_SECRET=PSEUDONYM,
                  SIEVE_ALERT_WEBHOOK_URL="", SIEVE_ALERT_WEBHOOK_SECRET=settings.DEV_ALERT_WEBHOOK_SECRET)


def ids(**overrides) -> list[str]:
    with override_settings(**{**PRODUCTION, **overrides}):
        return [error.id for error in check_secrets()]


def test_set_distinct_secrets_pass():
    assert ids() == []


def test_the_built_in_secrets_are_refused_outside_development():
    assert ids(SECRET_KEY=settings.DEV_SECRET_KEY, SIEVE_PSEUDONYM_SECRET=settings.DEV_PSEUDONYM_SECRET) == [
        "sieve.E001", "sieve.E002"]


def test_development_mode_takes_the_built_in_secrets():
    builtin = dict(SECRET_KEY=settings.DEV_SECRET_KEY, SIEVE_PSEUDONYM_SECRET=settings.DEV_PSEUDONYM_SECRET,
                   SIEVE_ALERT_WEBHOOK_URL="https://example.invalid/hook")
    assert ids(SIEVE_DEV=True, **builtin) == []
    assert ids(DEBUG=True, **builtin) == []


def test_a_short_secret_is_refused():
    assert ids(SIEVE_PSEUDONYM_SECRET="short") == ["sieve.E002"]


def test_the_pseudonym_key_must_not_be_secret_key():
    assert ids(SIEVE_PSEUDONYM_SECRET=SECRET) == ["sieve.E004"]


def test_the_webhook_secret_is_required_once_webhooks_are_sent():
    url = "https://example.invalid/hook"
    assert ids(SIEVE_ALERT_WEBHOOK_URL=url) == ["sieve.E003"]
    assert ids(SIEVE_ALERT_WEBHOOK_URL=url, SIEVE_ALERT_WEBHOOK_SECRET=SECRET) == ["sieve.E004"]
    assert ids(SIEVE_ALERT_WEBHOOK_URL=url, SIEVE_ALERT_WEBHOOK_SECRET=WEBHOOK) == []


def test_refuse_without_secrets_raises_with_the_variable_names():
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(**{**PRODUCTION, "SECRET_KEY": settings.DEV_SECRET_KEY}):
        with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
            refuse_without_secrets()


def production_env(**extra) -> dict:
    """The suite's environment without SIEVE_DEV, DEBUG or any secret: what a forgotten deployment has."""
    dropped = {"SIEVE_DEV", "DEBUG", "SECRET_KEY", "SIEVE_PSEUDONYM_SECRET", "SIEVE_ALERT_WEBHOOK_SECRET",
               "SIEVE_ALERT_WEBHOOK_URL"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **extra)
    return env


def test_the_pseudonym_and_webhook_keys_do_not_default_to_secret_key(tmp_path):
    code = ("from django.conf import settings as s; "
            "print(s.SIEVE_PSEUDONYM_SECRET == s.SECRET_KEY, s.SIEVE_ALERT_WEBHOOK_SECRET == s.SECRET_KEY)")
    result = subprocess.run([sys.executable, "-c", "import django; django.setup(); " + code], cwd=ROOT,
                            env=production_env(SECRET_KEY=SECRET, SIEVE_DATA_DIR=str(tmp_path)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_gunicorn_and_celery_refuse_to_start_without_secrets(tmp_path):
    bin_dir = Path(sys.executable).parent
    env = production_env(SIEVE_DATA_DIR=str(tmp_path))
    commands = {
        "gunicorn": [str(bin_dir / "gunicorn"), "config.wsgi:application", "--bind", "127.0.0.1:0", "--workers", "1"],
        "celery": [str(bin_dir / "celery"), "-A", "config", "worker", "-Q", "sieve-secrets-test", "-c", "1",
                   "--without-gossip", "--without-mingle"],
    }
    for name, args in commands.items():
        result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode != 0, name
        output = result.stdout + result.stderr
        assert "SECRET_KEY is not set" in output and "SIEVE_PSEUDONYM_SECRET is not set" in output, name
