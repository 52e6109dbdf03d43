"""Tasks and signals for tests only, loaded into a test's worker with -I: what a step chained after validate
sees, and which tasks the worker ran."""
from celery import shared_task
from celery.signals import task_postrun


@shared_task(name="tests.chain_probe.batch_seen")
def batch_seen(batch_id: int) -> list:
    """The batch's status and whether its verdict is recorded, at the moment this step runs."""
    from collection.models import Batch
    from validation.models import ValidationRun

    return [Batch.objects.get(pk=batch_id).status, ValidationRun.objects.filter(batch_id=batch_id).exists()]


def runs_key(queue: str) -> str:
    """The Redis list where a worker that loaded this module records the tasks it ran for that queue."""
    return f"sieve-test-runs:{queue}"


@task_postrun.connect
def record_run(sender=None, args=None, kwargs=None, state=None, **_):
    """Record each task this worker ran (name, batch, final state) in the result backend's Redis, so that a test
    reads what the worker did instead of its log."""
    import json
    import os

    from config.celery import app

    queue = os.environ.get("SIEVE_QUEUE", "")
    if not queue:
        return  # not a test's worker (the test process itself)
    plan = (kwargs or {}).get("plan") or {}
    batch = plan.get("batch") if plan else (args[0] if args and isinstance(args[0], int) else None)
    client = app.backend.client
    client.rpush(runs_key(queue), json.dumps({"task": sender.name, "batch": batch, "state": state}))
    client.expire(runs_key(queue), 86400)  # a session's record goes away by itself


def runs(queue: str, *, batch: int) -> list[str]:
    """The names of the tasks a worker ran on that batch, in the order they finished (read in the test process)."""
    import json

    from config.celery import app

    entries = [json.loads(raw) for raw in app.backend.client.lrange(runs_key(queue), 0, -1)]
    return [entry["task"] for entry in entries if entry["batch"] == batch and entry["state"] == "SUCCESS"]
