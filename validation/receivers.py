"""What validation does when the collection app reports something: a failed ingest is an alert."""
from collection.models import Batch

from . import alerts
from .models import Alert


def alert_on_failed_ingest(sender, batch_id: int, **kwargs) -> None:
    batch = Batch.objects.select_related("source").get(pk=batch_id)
    alerts.alert_raise(source_id=batch.source_id, kind=Alert.Kind.INGEST_FAILED, batch_id=batch.pk,
                       message=f"batch {batch.pk} of {batch.source.name} could not be ingested: {batch.error}")
