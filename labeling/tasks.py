"""Celery tasks of the labeling app: take ids, call one service."""
from celery import shared_task

from collection.tasks import PIPELINE_STEP

from . import services
from .models import LabelingProject


@shared_task(bind=True, **PIPELINE_STEP)
def route_batch(self, batch_id: int) -> int:
    """Queue an admitted batch's records in the projects its source feeds. Idempotent: a batch that is not
    admitted, or that was routed already, is left alone."""
    services.batch_route(batch_id=batch_id, actor="task:route")
    return batch_id


@shared_task
def reclaim_expired_leases() -> int:
    """Hand the slots of every lease that ran out back to their items (`next` does this too, a few at a time)."""
    total = 0
    while (count := services.leases_reclaim(limit=500)):
        total += count
    return total


@shared_task(bind=True, acks_late=True)
def apply_feedback_rules(self, project_id: int) -> dict:
    """Map a project's feedback through its rules. Idempotent: each event becomes one annotation per item."""
    project = LabelingProject.objects.filter(pk=project_id).first()
    return services.feedback_apply_rules(project=project) if project else {"created": 0, "unmappable": 0}


@shared_task
def apply_all_feedback_rules() -> int:
    """Periodic (beat): map new feedback in every active project that has enabled rules, one task each."""
    projects = list(LabelingProject.objects.filter(is_active=True, feedback_rules__enabled=True)
                    .values_list("pk", flat=True).distinct())
    for pk in projects:
        apply_feedback_rules.delay(pk)
    return len(projects)
