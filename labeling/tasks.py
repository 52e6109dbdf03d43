"""Celery tasks of the labeling app: take ids, call one service."""
from celery import shared_task

from config.retry import PIPELINE_STEP

from . import services
from .models import ConsensusRun, LabelingProject


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


@shared_task
def escalate_stuck_items() -> int:
    """Periodic (beat): send to adjudication the open items no eligible rater is left to label, in every project."""
    return services.items_escalate_stuck()


@shared_task(bind=True, acks_late=True)
def resettle_project(self, project_id: int) -> dict:
    """Re-settle a project's open and adjudication items under its settings. Idempotent: a rerun changes nothing."""
    project = LabelingProject.objects.filter(pk=project_id).first()
    return services.project_resettle(project=project) if project else {}


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


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def run_consensus(self, run_id: int) -> str | None:
    """Execute a consensus run. Idempotent: it claims the run (queued -> running), so a redelivered message or a
    second worker does nothing; a run whose worker died is failed by `consensus_check_projects`."""
    run = ConsensusRun.objects.filter(pk=run_id).first()
    return services.consensus_run_execute(run=run).status if run else None


@shared_task
def consensus_check_projects() -> dict:
    """Periodic (beat): end stuck runs, re-send lost ones, request the Dawid-Skene runs that are due."""
    return services.consensus_runs_check()


@shared_task(acks_late=True)
def refresh_quality_figures(project_id: int) -> float | None:
    """Recompute a project's quality figures into the cache (queued by a page that found them stale).
    Idempotent: a second run computes the same figures again; returns the seconds it took."""
    from .selectors.quality import quality_figures_refresh

    project = LabelingProject.objects.filter(pk=project_id).first()
    return quality_figures_refresh(project=project)["seconds"] if project else None
