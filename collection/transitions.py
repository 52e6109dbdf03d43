"""A batch's one way to change status: the conditional UPDATE that claims it, recorded in its history."""
from django.db import transaction
from django.utils import timezone

from . import signals
from .models import Batch, BatchTransition


def batch_transition(*, batch_id: int, from_status: str, to_status: str, actor: str, note: str = "",
                     where: dict | None = None, **fields) -> bool:
    """Move a batch from one status to another if, and only if, it is still in `from_status`.

    The conditional UPDATE is the claim: of two workers (or a retry and the original) exactly one
    sees a changed row and goes on; the other does nothing. The transition is recorded in the same
    transaction, so the history never disagrees with the status.
    """
    with transaction.atomic():
        now = timezone.now()
        changed = Batch.objects.filter(pk=batch_id, status=from_status, **(where or {})).update(
            status=to_status, updated_at=now, **fields
        )
        if changed:
            BatchTransition.objects.create(batch_id=batch_id, from_status=from_status, to_status=to_status,
                                           actor=actor, note=note, at=now)
            if to_status == Batch.Status.ADMITTED:
                transaction.on_commit(lambda: signals.batch_admitted.send(sender=Batch, batch_id=batch_id,
                                                                          actor=actor))
    return bool(changed)
