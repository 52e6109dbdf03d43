"""App config for validation: baselines, verdicts, alerts, and the statistics engine in stats/."""
from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "validation"

    def ready(self) -> None:
        from collection.signals import batch_failed

        from . import receivers

        batch_failed.connect(receivers.alert_on_failed_batch, dispatch_uid="validation.alert_on_failed_batch")
