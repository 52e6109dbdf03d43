"""Publishing a version: request it, build it (files, gate, manifest) in a task, end it, and sweep lost builds.

A version moves queued -> building -> published | review | failed, each move a conditional UPDATE, so a
redelivered task, a retry or a second worker does nothing. Its files are written into a `.partial`
folder and renamed when complete; the row then records the manifest, and from that moment the version
is immutable: a correction is a new version.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Max
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from collection.models import Batch
from collection.storage import data_path
from config.retry import TRANSIENT
from labeling.models import ConsensusRun
from validation import alerts
from validation.models import Alert

from ..build.files import Built, build_files, finish_files, rebuild_files
from ..build.writer import LINEAGE_FILE
from ..models import Erasure, TrainingSet, TrainingSetVersion
from .errors import NotRebuildable, VersionBuilding
from .gate import gate_run, manifest_report

log = logging.getLogger(__name__)
Status = TrainingSetVersion.Status
MANIFEST_FORMAT = 1
PROGRESS_KEY = "sieve:version-progress:{}"


def _subject(version: TrainingSetVersion) -> str:
    return f"trainingset:{version.training_set_id}/version:{version.number}"


def _link(version: TrainingSetVersion) -> str:
    try:
        return reverse("trainingset-version", args=[version.training_set_id, version.number])
    except Exception:  # the pages are optional to the service; an alert without a link still says what
        return ""


def _enqueue(version_id: int) -> None:
    from ..tasks import build_version

    try:
        build_version.delay(version_id)
    except (BrokerError, OSError) as exc:
        log.warning("version %s: broker unreachable (%s); the sweeper will enqueue it", version_id, exc)


def _next_version(training_set: TrainingSet, *, user, comment: str, idempotency_key: str | None,
                  rebuilt_from: TrainingSetVersion | None = None) -> TrainingSetVersion:
    # The set's row lock orders concurrent requests: numbers increase, one build at a time.
    TrainingSet.objects.select_for_update().get(pk=training_set.pk)
    if idempotency_key:
        existing = training_set.versions.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            existing.replayed = True
            return existing
    running = training_set.versions.filter(status__in=[Status.QUEUED, Status.BUILDING]).first()
    if running is not None:
        raise VersionBuilding(f"version {running.number} of {training_set.name} is {running.status}; "
                              "publish again when it has ended", field="version", value=running.number)
    number = (training_set.versions.aggregate(m=Max("number"))["m"] or 0) + 1
    version = TrainingSetVersion.objects.create(
        training_set=training_set, number=number, created_by=user if user and user.is_authenticated else None,
        comment=comment, idempotency_key=idempotency_key or None, rebuilt_from=rebuilt_from)
    version.replayed = False
    transaction.on_commit(lambda: _enqueue(version.pk))
    return version


@transaction.atomic
def version_request(*, training_set: TrainingSet, user=None, comment: str = "",
                    idempotency_key: str | None = None) -> TrainingSetVersion:
    """Ask for a new version; it is built by a task. A retried request with the same key gets the same version
    (`replayed` is True then); a request while a version is queued or building is refused."""
    return _next_version(training_set, user=user, comment=comment, idempotency_key=idempotency_key)


@transaction.atomic
def version_rebuild(*, version: TrainingSetVersion, user=None) -> TrainingSetVersion:
    """A new version from a version's files without the rows erased since it was built."""
    if version.status not in (Status.PUBLISHED, Status.REVIEW) or not version.erasures.exists():
        raise NotRebuildable(f"version {version.number} is {version.status} and "
                             f"{'holds erased data' if version.erasures.exists() else 'holds no erased data'}: "
                             "only a built version marked by an erasure is rebuilt", field="version",
                             value=version.number)
    return _next_version(version.training_set, user=user, comment=f"v{version.number} without erased rows",
                         idempotency_key=None, rebuilt_from=version)


def version_progress(version: TrainingSetVersion) -> tuple[int, int]:
    """(rows written, rows in all) of a build: live from the cache while it runs, else from the row."""
    if version.status in (Status.QUEUED, Status.BUILDING):
        live = cache.get(PROGRESS_KEY.format(version.pk))
        if live:
            return tuple(live)
    return version.rows_written, version.rows_total


class _Progress:
    """Reports rows written: to the cache every call, to the row about once a second through a connection of
    its own (the build's connection is inside the transaction of its server-side cursor)."""

    def __init__(self, version: TrainingSetVersion, callback: Callable[[int, int], None] | None):
        self.key, self.pk, self.callback = PROGRESS_KEY.format(version.pk), version.pk, callback
        own = connection.vendor == "postgresql" and not connection.in_atomic_block
        self.conn = connections.create_connection(DEFAULT_DB_ALIAS) if own else None
        self.last = 0.0

    def __call__(self, written: int, total: int) -> None:
        cache.set(self.key, (written, total), 3600)
        if self.callback:
            self.callback(written, total)
        if self.conn is not None and time.monotonic() - self.last > 1.0:
            self.last = time.monotonic()
            with self.conn.cursor() as cursor:
                # Touching updated_at is the build's heartbeat: the sweeper leaves a build that moves alone.
                cursor.execute("UPDATE trainingsets_trainingsetversion SET rows_written = %s, rows_total = %s, "
                               "updated_at = %s WHERE id = %s AND status = %s",
                               [written, total, timezone.now(), self.pk, Status.BUILDING.value])

    def close(self) -> None:
        cache.delete(self.key)
        if self.conn is not None:
            self.conn.close()


def _folder(version: TrainingSetVersion) -> tuple[str, Path, Path]:
    relative = f"trainingsets/{version.training_set_id}/v{version.number}"
    folder = data_path(relative)
    return relative, folder, folder.with_name(folder.name + ".partial")


def _erased_identities(source_ids: list[int]) -> set[str]:
    return set(Erasure.objects.filter(kind=Erasure.Kind.RECORD, source_id__in=source_ids)
               .values_list("identity", flat=True))


def _batches(ids) -> list[dict]:
    rows = (Batch.objects.filter(pk__in=list(ids)).order_by("id")
            .values_list("id", "source__name", "status", "validation__id", "validation__verdict"))
    return [{"id": b, "source": s, "status": st, "validation_run": run, "verdict": verdict}
            for b, s, st, run, verdict in rows]


def _projects(training_set: TrainingSet) -> list[dict]:
    out = []
    for pid, name in training_set.projects.order_by("id").values_list("id", "name"):
        run = (ConsensusRun.objects.filter(project_id=pid, status=ConsensusRun.Status.DONE)
               .order_by("-id").values_list("id", flat=True).first())
        out.append({"id": pid, "name": name, "latest_consensus_run": run})
    return out


def _manifest_from_build(version: TrainingSetVersion, built: Built) -> dict:
    training_set = version.training_set
    return {
        "policy": training_set.policy(), "split_rule": training_set.split_rule(),
        "schema": built.schema.to_list(), "label_type": str(built.schema.columns[-3].arrow),
        "rows": built.rows, "splits": built.splits, "split_names": training_set.split_names(),
        "excluded": {k: int(built.excluded.get(k, 0)) for k in ("no_label", "gold", "erased", "no_observed_at",
                                                                  "no_group")},
        "batches": _batches(built.batch_ids), "projects": _projects(training_set),
        "consensus_runs": sorted(built.consensus_runs),
        "raters_per_item": {str(k): v for k, v in sorted(built.raters.items())},
        "rebuilt_from": None,
    }


def _manifest_from_rebuild(version: TrainingSetVersion, folder: Path, progress) -> dict:
    old = version.rebuilt_from
    _, old_folder, _ = _folder(old)
    source_ids = list(version.training_set.sources.values_list("id", flat=True))
    erased = _erased_identities(source_ids)
    items = {i for e in old.erasures.filter(kind=Erasure.Kind.ACTOR) for i in e.items}
    splits, rows, dropped = rebuild_files(old_folder=old_folder, split_names=old.manifest["split_names"],
                                          folder=folder, erased=erased, feedback_items=items, progress=progress)
    manifest = {k: old.manifest[k] for k in ("policy", "split_rule", "split_names", "schema", "label_type",
                                             "batches", "projects", "consensus_runs", "raters_per_item")}
    excluded = dict(old.manifest.get("excluded", {}))
    excluded["erased"] = excluded.get("erased", 0) + dropped
    manifest.update(rows=rows, splits=splits, excluded=excluded, rebuilt_from=old.number)
    return manifest


def _gate(version: TrainingSetVersion, split_paths: dict[str, Path]):
    return gate_run(version=version, files=split_paths)


def version_build(*, version_id: int, progress: Callable[[int, int], None] | None = None) -> TrainingSetVersion:
    """Build a queued version: files, gate, manifest; end it published, in review, or failed with the error.

    Idempotent: a version that is not queued is returned as it is. A lost connection puts it back to
    queued and re-raises (the task retries); any other error fails the version and raises an alert.
    """
    now = timezone.now()
    claimed = TrainingSetVersion.objects.filter(pk=version_id, status=Status.QUEUED).update(
        status=Status.BUILDING, started_at=now, updated_at=now, attempts=F("attempts") + 1, error="")
    version = TrainingSetVersion.objects.select_related("training_set", "rebuilt_from").get(pk=version_id)
    if not claimed:
        return version
    relative, folder, partial = _folder(version)
    reporter = _Progress(version, progress)
    try:
        for leftover in (partial, folder):  # a build that died between rename and commit left these
            shutil.rmtree(leftover, ignore_errors=True)
        partial.mkdir(parents=True)
        if version.rebuilt_from_id:
            manifest = _manifest_from_rebuild(version, partial, reporter)
        else:
            source_ids = list(version.training_set.sources.values_list("id", flat=True))
            built = build_files(training_set=version.training_set, folder=partial,
                                erased=_erased_identities(source_ids), progress=reporter)
            manifest = _manifest_from_build(version, built)
        version.manifest = manifest
        split_paths = {name: partial / f"{name}.parquet" for name in manifest["split_names"]}
        gate = _gate(version, split_paths)
        files, digest = finish_files(folder=partial, splits=manifest["splits"],
                                     formats=version.training_set.formats)
        manifest.update(_identity(version), files=files, content_sha256=digest, gate=manifest_report(gate.report))
        partial.rename(folder)
        version = _finish(version, manifest=manifest, digest=digest, gate=gate, relative=relative, started=now)
        # Arrow keeps freed buffers in its pool; a worker's next task should not start from this one's peak.
        pa.default_memory_pool().release_unused()
    except TRANSIENT:
        shutil.rmtree(partial, ignore_errors=True)
        TrainingSetVersion.objects.filter(pk=version_id, status=Status.BUILDING).update(
            status=Status.QUEUED, updated_at=timezone.now())
        raise
    except Exception as exc:
        log.exception("version %s failed", version_id)
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        return version_fail(version_id=version_id, error=f"{type(exc).__name__}: {exc}")
    finally:
        reporter.close()
    if version.is_built:
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
    return version


def _identity(version: TrainingSetVersion) -> dict:
    return {"format": MANIFEST_FORMAT, "training_set": {"id": version.training_set_id,
                                                        "name": version.training_set.name},
            "version": version.number, "sieve_version": settings.SIEVE_VERSION,
            "built_at": timezone.now().isoformat()}


def _finish(version, *, manifest, digest, gate, relative, started) -> TrainingSetVersion:
    status = Status.REVIEW if gate.held else Status.PUBLISHED
    with transaction.atomic():
        moved = TrainingSetVersion.objects.filter(pk=version.pk, status=Status.BUILDING).update(
            status=status, folder=relative, manifest=manifest, content_sha256=digest, profile=gate.profile_json,
            gate_verdict=gate.verdict, gate_report=gate.report, rows_total=manifest["rows"],
            rows_written=manifest["rows"], finished_at=timezone.now(), updated_at=timezone.now())
        if not moved:  # failed by the sweeper meanwhile: its files must not outlive it
            shutil.rmtree(data_path(relative), ignore_errors=True)
            return TrainingSetVersion.objects.get(pk=version.pk)
        version.refresh_from_db()
        alerts.alert_resolve(kind=Alert.Kind.VERSION_FAILED, subject=f"trainingset:{version.training_set_id}")
        if gate.held:
            alerts.alert_raise(kind=Alert.Kind.VERSION_REVIEW, subject=_subject(version), link=_link(version),
                               message=f"{version} held by its gate ({gate.verdict}): "
                                       + "; ".join(gate.report.get("reasons", []))[:500])
        _mark_erasures_since(version, started)
    return version


def _mark_erasures_since(version: TrainingSetVersion, started) -> None:
    """An erasure made while this version was being built did not see its files: mark it here if it hit them."""
    late = Erasure.objects.filter(created_at__gte=started, kind=Erasure.Kind.RECORD)
    if not late.exists():
        return
    import pyarrow.parquet as pq

    from ..identity import record_identity

    lineage = pq.read_table(data_path(version.folder) / LINEAGE_FILE, columns=["source_id", "external_id"])
    present = {record_identity(s, e) for s, e in zip(lineage.column("source_id").to_pylist(),
                                                      lineage.column("external_id").to_pylist())}
    for erasure in late:
        if erasure.identity in present:
            erasure.versions.add(version)


def version_fail(*, version_id: int, error: str) -> TrainingSetVersion:
    """End a version in `failed` with the error, and raise an alert for its set."""
    with transaction.atomic():
        TrainingSetVersion.objects.filter(pk=version_id, status__in=[Status.QUEUED, Status.BUILDING]).update(
            status=Status.FAILED, error=error[:5000], finished_at=timezone.now(), updated_at=timezone.now())
        version = TrainingSetVersion.objects.select_related("training_set").get(pk=version_id)
        if version.status == Status.FAILED:
            alerts.alert_raise(kind=Alert.Kind.VERSION_FAILED, subject=f"trainingset:{version.training_set_id}",
                               link=_link(version), message=f"{version} failed: {error[:500]}")
    return version


def versions_sweep(*, now=None) -> dict:
    """What the beat does: re-send queued versions whose message was lost, and put back (or fail, after
    SIEVE_VERSION_MAX_ATTEMPTS) builds whose worker stopped beating."""
    now = now or timezone.now()
    resent = retried = failed = 0
    for pk in TrainingSetVersion.objects.filter(status=Status.QUEUED,
                                                updated_at__lt=now - settings.SIEVE_VERSION_RESEND_AFTER) \
            .values_list("pk", flat=True):
        TrainingSetVersion.objects.filter(pk=pk, status=Status.QUEUED).update(updated_at=now)
        _enqueue(pk)
        resent += 1
    stalled = TrainingSetVersion.objects.filter(status=Status.BUILDING,
                                                updated_at__lt=now - settings.SIEVE_VERSION_STALLED_AFTER)
    for pk, attempts in stalled.values_list("pk", "attempts"):
        if attempts >= settings.SIEVE_VERSION_MAX_ATTEMPTS:
            version_fail(version_id=pk, error=f"the build stopped {attempts} times (worker lost?); "
                                              "publish again after looking at the workers' logs")
            failed += 1
        elif TrainingSetVersion.objects.filter(pk=pk, status=Status.BUILDING).update(status=Status.QUEUED,
                                                                                    updated_at=now):
            _enqueue(pk)
            retried += 1
    return {"resent": resent, "retried": retried, "failed": failed}
