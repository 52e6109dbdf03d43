"""App config for validation: baselines, validation runs and the statistics engine in stats/."""
from django.apps import AppConfig


class ValidationConfig(AppConfig):
    name = "validation"
