"""System checks Sieve will not start without: its secrets set, outside development, the demo and the tests."""
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

TAG = "sieve_secrets"
# Shorter secrets can be guessed; Django's own deploy check asks SECRET_KEY for 50 characters.
MIN_LENGTH = 32


def dev_mode() -> bool:
    """True for development, the demo and the tests (SIEVE_DEV=1 or DEBUG=true): the built-in secrets will do."""
    return bool(settings.SIEVE_DEV or settings.DEBUG)


def _secret_errors(name: str, value: str, builtin: str, number: int) -> list[checks.Error]:
    if value == builtin:
        return [checks.Error(
            f"{name} is not set: Sieve will not run on its built-in, public value outside development.",
            hint=f"Set the environment variable {name} to a long random string (python -c \"import secrets; "
                 f"print(secrets.token_urlsafe(50))\"), or SIEVE_DEV=1 for development and the demo.",
            id=f"sieve.E00{number}")]
    if len(value) < MIN_LENGTH:
        return [checks.Error(f"{name} is shorter than {MIN_LENGTH} characters.",
                             hint=f"Set the environment variable {name} to a long random string.",
                             id=f"sieve.E00{number}")]
    return []


@checks.register(TAG, checks.Tags.security)
def check_secrets(app_configs=None, **kwargs) -> list[checks.Error]:
    """Each secret set, long enough and distinct: SECRET_KEY, SIEVE_PSEUDONYM_SECRET and, when webhooks are
    sent, SIEVE_ALERT_WEBHOOK_SECRET. Nothing is asked in development mode."""
    if dev_mode():
        return []
    errors = _secret_errors("SECRET_KEY", settings.SECRET_KEY, settings.DEV_SECRET_KEY, 1)
    errors += _secret_errors("SIEVE_PSEUDONYM_SECRET", settings.SIEVE_PSEUDONYM_SECRET,
                             settings.DEV_PSEUDONYM_SECRET, 2)
    secrets = {"SECRET_KEY": settings.SECRET_KEY, "SIEVE_PSEUDONYM_SECRET": settings.SIEVE_PSEUDONYM_SECRET}
    if settings.SIEVE_ALERT_WEBHOOK_URL:
        errors += _secret_errors("SIEVE_ALERT_WEBHOOK_SECRET", settings.SIEVE_ALERT_WEBHOOK_SECRET,
                                 settings.DEV_ALERT_WEBHOOK_SECRET, 3)
        secrets["SIEVE_ALERT_WEBHOOK_SECRET"] = settings.SIEVE_ALERT_WEBHOOK_SECRET
    names = list(secrets)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if secrets[first] == secrets[second]:
                errors.append(checks.Error(
                    f"{first} and {second} are the same: each keys something else and must be its own secret.",
                    hint=f"Give {second} a value of its own.", id="sieve.E004"))
    return errors


def refuse_without_secrets() -> None:
    """Raise ImproperlyConfigured when the secrets check fails: gunicorn and Celery run no system checks of
    their own, so they call this before they serve or work."""
    errors = checks.run_checks(tags=[TAG])
    if errors:
        raise ImproperlyConfigured("Sieve will not start:\n" + "\n".join(f"{e.msg} {e.hint}" for e in errors))
