"""Signals other layers listen to, so collection never imports what comes after it in the pipeline."""
from django.dispatch import Signal

# Sent after the commit that accepted a batch, with batch_id: config.pipeline starts the pipeline.
batch_received = Signal()
# Sent after the commit that marked a batch `failed`, with batch_id: validation raises an alert.
batch_failed = Signal()
# Sent after the commit that moved a batch to `admitted`, with batch_id and actor (who admitted it):
# config.pipeline routes batches an admin approved (the pipeline's own route step follows validate).
batch_admitted = Signal()
