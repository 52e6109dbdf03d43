"""What every erasure shares: its lock, the reason check, the counts, the audit entry and the versions it reads."""
from __future__ import annotations

import re
from collections import Counter

from django.db import connection

from validation.models import AuditEntry

from ...models import Erasure, TrainingSetVersion
from ..errors import ErasureInvalid, ReasonHoldsData

# Advisory lock namespaces (first key of PostgreSQL's two-key advisory locks; collection's ingest uses 7042).
ERASE_LOCK = 7110       # one erasure of an identity at a time
ERASE_FILE_LOCK = 7111  # one rewrite of a batch's files at a time
BUILT = [TrainingSetVersion.Status.REVIEW, TrainingSetVersion.Status.PUBLISHED, TrainingSetVersion.Status.REJECTED]
LINEAGE_FILE = "lineage.parquet"
# What Django's delete() reports, as the tombstone's count names.
COUNT_NAMES = {
    "collection.Record": "revisions", "collection.FeedbackEvent": "feedback", "labeling.QueueItem": "queue_items",
    "labeling.Annotation": "labels", "labeling.Assignment": "assignments", "labeling.Adjudication": "adjudications",
    "labeling.ConsensusRunItem": "consensus_results",
}


def lock(namespace: int, key: int | str) -> None:
    """A transaction-scoped advisory lock (PostgreSQL; elsewhere, one process: nothing to lock against)."""
    if connection.vendor != "postgresql":
        return
    number = key if isinstance(key, int) else int(key[:8], 16) - 2**31  # a hash's first 32 bits, as an int4
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [namespace, number])


def reason_checked(reason: str, *secrets: str) -> str:
    """The reason as kept; refused when it names what is erased (the tombstone keeps no data)."""
    reason = (reason or "").strip()
    if len(reason) > 500:
        raise ErasureInvalid("the reason is longer than 500 characters", field="reason")
    for secret in secrets:
        if secret and re.search(rf"(?<!\w){re.escape(secret)}(?!\w)", reason, re.IGNORECASE):
            raise ReasonHoldsData("the reason names what is erased, and the tombstone keeps no data: describe the "
                                  "request without it (a ticket number, say)", field="reason")
    return reason


def counts_of(deleted: Counter) -> dict:
    """Rows deleted per model (Django's delete() labels) as the tombstone's counts, every known name present."""
    counts = dict.fromkeys(COUNT_NAMES.values(), 0)
    for label, n in deleted.items():
        name = COUNT_NAMES.get(label, label)
        counts[name] = counts.get(name, 0) + n
    return counts


def counts_text(counts: dict) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def audit(erasure: Erasure, user) -> None:
    """The audit entry of an erasure: who, and the counts; never what."""
    AuditEntry.objects.create(actor=f"user:{user.get_username()}" if user is not None else "system",
                              action="erasure", source_id=erasure.source_id,
                              detail=f"erasure {erasure.pk} ({erasure.get_kind_display()}): "
                                     f"{counts_text(erasure.counts)}")


def built_versions(*, source_ids) -> list[TrainingSetVersion]:
    """Every built version (its files exist: review, published, rejected) of the sets fed by these sources."""
    return list(TrainingSetVersion.objects.filter(training_set__sources__in=list(source_ids), status__in=BUILT)
                .exclude(folder="").distinct().order_by("id"))


def enqueue(erasure_id: int) -> None:
    """Send the file rewrite to the workers (called on commit, robustly: a broker down leaves it pending,
    and `erasures_resend_pending` sends it again)."""
    from ... import tasks

    tasks.rewrite_erased_files.delay(erasure_id)


def alert_subject(erasure_id: int) -> str:
    return f"erasure:{erasure_id}"
