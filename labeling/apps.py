"""App config for labeling: raters, projects, the work queue (items, leases), annotations and feedback rules."""
from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
