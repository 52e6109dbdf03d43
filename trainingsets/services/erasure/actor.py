"""Erasing an actor's feedback: its events in every source, the labels they made, and its name in consensus runs."""
from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict

from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from collection.models import FeedbackEvent
from collection.services import actor_pseudonym
from collection.storage import data_path
from labeling.models import Annotation, ConsensusRun, LabelingProject, QueueItem
from labeling.services import consensus_run_request, item_settle
from labeling.services.settling import items_resettle

from ... import erasure_files
from ...identity import actor_identity
from ...models import Erasure, TrainingSetVersion
from ..errors import ErasureInvalid, NothingToErase
from .tombstone import ERASE_LOCK, LINEAGE_FILE, audit, built_versions, counts_of, counts_text, lock, reason_checked

log = logging.getLogger(__name__)
PSEUDONYM = re.compile(r"[0-9a-f]{64}")


def erasure_actor(*, pseudonym: str | None = None, actor: str | None = None, user, reason: str = "") -> Erasure:
    """Erase an actor's feedback (every source) and the process-feedback labels it made; re-settle the items
    those labels counted toward; keep a tombstone with the items (a rebuild leaves the rows they labeled out);
    mark the versions whose lineage went through those items.

    Give the pseudonym Sieve keeps (64 hex characters) or the raw actor id (hashed here, never stored).
    Refuses: ErasureInvalid (neither or both, or not a pseudonym), ReasonHoldsData, NothingToErase.
    Feedback is never kept as a file (it arrives by API, straight into the database): nothing to rewrite.
    """
    if (pseudonym is None) == (actor is None) or actor == "":
        raise ErasureInvalid("give either an actor id or its pseudonym",
                             field="pseudonym" if actor is None else "actor")
    if actor is not None:
        pseudonym = actor_pseudonym(actor)
    elif not isinstance(pseudonym, str) or not PSEUDONYM.fullmatch(pseudonym):
        raise ErasureInvalid("a pseudonym is 64 lower-case hex characters", field="pseudonym")
    reason = reason_checked(reason, pseudonym, *([actor] if actor else []))
    identity = actor_identity(pseudonym)
    started = timezone.now()
    with transaction.atomic():
        lock(ERASE_LOCK, identity)
        events = list(FeedbackEvent.objects.filter(actor=pseudonym).select_for_update()
                      .values_list("id", "source_id", "external_id"))
        if not events:
            raise NothingToErase("this actor has no feedback left to erase", field="pseudonym")
        event_ids = [e[0] for e in events]
        labels = Annotation.objects.filter(feedback_event_id__in=event_ids)
        item_ids = sorted(set(labels.values_list("item_id", flat=True)))
        versions = _versions_holding(item_ids, {(source_id, external_id) for _, source_id, external_id in events})
        deleted = Counter()
        deleted.update(labels.delete()[1])
        deleted.update(FeedbackEvent.objects.filter(pk__in=event_ids).delete()[1])
        counts = counts_of(deleted)
        counts.update(_resettle(item_ids, user=user))
        counts.update(consensus_runs_scrubbed=_scrub_runs(pseudonym), items=len(item_ids), versions=len(versions))
        erasure = Erasure.objects.create(kind=Erasure.Kind.ACTOR, identity=identity, reason=reason,
                                         requested_by=user, counts=counts, items=item_ids, created_at=started,
                                         status=Erasure.Status.DONE, finished_at=timezone.now())
        erasure.versions.set(versions)
        audit(erasure, user)
    log.info("erasure %s: an actor's feedback erased (%s)", erasure.pk, counts_text(counts))
    erasure.created = True
    return erasure


def _versions_holding(item_ids: list[int], records: set[tuple[int, str]]) -> list[TrainingSetVersion]:
    """Built versions with a row labeled through one of the items, or a feedback-labeled row of one of the
    records the actor's feedback was about (conservative: the row may have had other labels too)."""
    found = []
    for version in built_versions(source_ids={source_id for source_id, _ in records}):
        path = data_path(version.folder) / LINEAGE_FILE
        if not path.exists() or erasure_files.lineage_holds_items(path, item_ids=item_ids, records=records):
            found.append(version)
    return found


def _resettle(item_ids: list[int], *, user) -> dict:
    """The items lost process-feedback labels: recount them and, where feedback counted toward consensus,
    settle them again by the labeling rule (settling.item_settle; an item left short of labels reopens, as
    after an overlap change). An item a Dawid-Skene run decided waits for the run requested here."""
    out = {"items_resettled": 0, "consensus_runs_requested": 0}
    if not item_ids:
        return out
    # Items only, in id order: the queue's and re-settling's own lock order.
    items = list(QueueItem.objects.select_for_update().filter(pk__in=item_ids).order_by("id"))
    remaining = (Annotation.objects.filter(item=OuterRef("pk"), provenance=Annotation.Provenance.PROCESS_FEEDBACK)
                 .values("item").annotate(n=Count("id")).values("n"))
    QueueItem.objects.filter(pk__in=item_ids).update(feedback_count=Coalesce(Subquery(remaining), 0))
    projects = {p.pk: p for p in LabelingProject.objects.filter(pk__in={i.project_id for i in items},
                                                                feedback_counts=True)}
    rerun, short = set(), defaultdict(list)
    for item in items:
        project = projects.get(item.project_id)
        if project is None:
            continue  # feedback did not count there: the item's consensus never used it
        before = (item.state, item.consensus)
        if item.decided_by == QueueItem.Decided.DAWID_SKENE and item.state != QueueItem.State.OPEN:
            rerun.add(project.pk)
            continue
        item_settle(item=item, project=project)
        if item.state == QueueItem.State.ADJUDICATION and before[0] == QueueItem.State.COMPLETE:
            short[project.pk].append(item)  # it may just lack labels now: more raters can settle it
        out["items_resettled"] += (item.state, item.consensus) != before
    for project_id, stalled in short.items():
        items_resettle(items=stalled, project=projects[project_id])
    for project_id in sorted(rerun):
        consensus_run_request(project=projects[project_id], trigger=ConsensusRun.Trigger.DEMAND, requested_by=user)
        out["consensus_runs_requested"] += 1
    return out


def _scrub_runs(pseudonym: str) -> int:
    """A consensus run names an author "feedback:<pseudonym>" when its rule is gone: drop that author's figures."""
    key = f"feedback:{pseudonym}"
    runs = list(ConsensusRun.objects.select_for_update()
                .filter(Q(rater_accuracy__has_key=key) | Q(rater_confusion__has_key=key)).order_by("id"))
    for run in runs:
        run.rater_accuracy.pop(key, None)
        run.rater_confusion.pop(key, None)
        run.save(update_fields=["rater_accuracy", "rater_confusion"])
    return len(runs)
