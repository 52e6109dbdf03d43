"""App config for labeling: raters, projects, queues and annotations (models arrive with their issue)."""
from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
