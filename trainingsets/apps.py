"""App config for trainingsets: versioned, immutable training sets (models arrive with their issue)."""
from django.apps import AppConfig


class TrainingsetsConfig(AppConfig):
    name = "trainingsets"
