"""Signals other layers listen to, so collection never imports what comes after it in the pipeline."""
from django.dispatch import Signal

# Sent after the commit that accepted a batch, with batch_id: config.pipeline starts the pipeline.
batch_received = Signal()
# Sent after the commit that marked a batch `failed`, with batch_id and step ("ingest" for a bad payload or an
# ingest that kept failing, "validate"): validation raises an alert.
batch_failed = Signal()
# Sent after the commit that gave a failed batch back to the pipeline, with batch_id and from_status (where it
# starts again): config.pipeline enqueues it.
batch_retried = Signal()
# Sent after the commit that moved a batch to `admitted`, with batch_id and actor (who admitted it):
# config.pipeline routes batches an admin approved (the pipeline's own route step follows validate).
batch_admitted = Signal()
