"""A task for tests only, loaded into a test's worker with -I: what a step chained after validate sees."""
from celery import shared_task


@shared_task(name="tests.chain_probe.batch_seen")
def batch_seen(batch_id: int) -> list:
    """The batch's status and whether its verdict is recorded, at the moment this step runs."""
    from collection.models import Batch
    from validation.models import ValidationRun

    return [Batch.objects.get(pk=batch_id).status, ValidationRun.objects.filter(batch_id=batch_id).exists()]
