"""What validation does when the collection app reports something: a failed batch is an alert."""
from collection.models import Batch

from . import alerts
from .models import Alert


def alert_on_failed_batch(sender, batch_id: int, step: str = "ingest", **kwargs) -> None:
    """A batch that ended `failed`: in ingest (a bad payload, or an ingest that kept failing) or in validation."""
    batch = Batch.objects.select_related("source").get(pk=batch_id)
    kind, verb = ((Alert.Kind.INGEST_FAILED, "ingested") if step == "ingest"
                  else (Alert.Kind.VALIDATION_FAILED, "validated"))
    alerts.alert_raise(source_id=batch.source_id, kind=kind, batch_id=batch.pk,
                       message=f"batch {batch.pk} of {batch.source.name} could not be {verb}: {batch.error}")
