"""The Celery app; its configuration lives in Django settings under the CELERY_ prefix."""
import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("sieve")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["collection", "validation", "labeling", "trainingsets"])


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_without_secrets(**kwargs) -> None:
    """A worker or beat without its secrets set stops before it takes a task (see config/checks.py). Celery
    logs and ignores what a signal handler raises, except SystemExit."""
    from django.core.exceptions import ImproperlyConfigured

    from config.checks import refuse_without_secrets

    try:
        refuse_without_secrets()
    except ImproperlyConfigured as exc:
        raise SystemExit(str(exc)) from None
