"""The wiring app: connects the pipeline to the collection app's signals once Django is ready."""
from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "config"
    label = "pipeline"

    def ready(self) -> None:
        from . import checks, pipeline  # noqa: F401  (registers the secrets check and the batch_received receiver)
