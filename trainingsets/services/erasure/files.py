"""Rewriting a record erasure's files after its commit: payloads masked, Parquet copies without the rows."""
from __future__ import annotations

import errno
import hmac
import logging
from datetime import timedelta
from functools import partial

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from collection.storage import data_path
from validation.alerts import alert_raise, alert_resolve
from validation.models import Alert

from ... import erasure_files
from ...identity import record_identity
from ...models import Erasure
from ..errors import ErasureNotFailed
from .tombstone import ERASE_FILE_LOCK, LINEAGE_FILE, alert_subject, built_versions, counts_text, enqueue, lock

log = logging.getLogger(__name__)


class ErasureFilesBusy(Exception):
    """A file could not be rewritten for a reason that may pass (a disk or network file system fault): the
    task retries; the erasure stays `files_pending`."""


def erasure_rewrite_files(*, erasure_id: int, retryable: bool = False) -> Erasure | None:
    """Rewrite the files a record erasure noted: each payload with its lines masked, each Parquet copy without
    the rows; then the erasure is `done`. The body of the `rewrite_erased_files` task; idempotent.

    Only a `files_pending` erasure is worked on (a redelivered message for a finished one does nothing), and
    batches already rewritten are skipped. A file fault that may pass raises ErasureFilesBusy when
    `retryable` (the task retries it); any other error, or that one on the last attempt, ends the erasure
    `failed` with the error and raises an `erasure_failed` alert. Database faults propagate (the task
    retries them; the erasure stays pending).
    """
    erasure = Erasure.objects.filter(pk=erasure_id).first()
    if erasure is None or erasure.status != Erasure.Status.FILES_PENDING:
        return erasure
    identity, source_id = erasure.identity, erasure.source_id

    def matches(external_id: str) -> bool:
        return hmac.compare_digest(record_identity(source_id, external_id), identity)

    found: set[str] = set()  # the erased id as read back from a payload: in memory only, never stored
    batch_id = None
    try:
        for index, entry in enumerate(erasure.files):
            batch_id = entry["batch"]
            found |= _rewrite_batch(erasure.pk, index, matches)
        batch_id = None
        _mark_late_versions(erasure, found, matches)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        where = f"batch {batch_id}: " if batch_id is not None else ""
        if retryable and _transient(exc):
            log.warning("erasure %s: %s%s; retrying", erasure.pk, where, _describe(exc))
            raise ErasureFilesBusy(f"erasure {erasure.pk}: {where}{_describe(exc)}") from None
        return _fail(erasure, where + _describe(exc))
    with transaction.atomic():
        erasure = Erasure.objects.select_for_update().get(pk=erasure.pk)
        if erasure.status == Erasure.Status.FILES_PENDING:
            erasure.counts.update(_file_counts(erasure.files))
            erasure.status, erasure.finished_at, erasure.error = Erasure.Status.DONE, timezone.now(), ""
            erasure.save(update_fields=["status", "finished_at", "error", "counts"])
            alert_resolve(kind=Alert.Kind.ERASURE_FAILED, subject=alert_subject(erasure.pk))
    log.info("erasure %s: files rewritten (%s)", erasure.pk, counts_text(_file_counts(erasure.files)))
    return erasure


def _rewrite_batch(erasure_id: int, index: int, matches) -> set[str]:
    """Mask one batch's payload and drop its Parquet rows, holding the batch's file lock; note what was done.
    Returns the external ids the payload gave back."""
    with transaction.atomic():
        lock(ERASE_FILE_LOCK, Erasure.objects.get(pk=erasure_id).files[index]["batch"])
        # Read again now that nobody else rewrites this batch: a second worker may have done it meanwhile.
        entry = Erasure.objects.get(pk=erasure_id).files[index]
        found: set[str] = set()
        if entry["payload_rewritten"] is None:
            path = _existing(entry["payload"])
            if path is None:
                entry["payload_rewritten"] = {"missing": True}
            else:
                masked = erasure_files.mask_payload(path, fmt=entry["format"], gzipped=entry["gzipped"],
                                                    lines=entry["lines"], erasure_id=erasure_id, matches=matches)
                found = masked.external_ids
                entry["payload_rewritten"] = masked.as_dict()
        if entry["parquet_rewritten"] is None and entry["columnar"]:
            path = _existing(entry["columnar"])
            if path is None:
                entry["parquet_rewritten"] = {"missing": True}
            else:
                # By value when the payload gave the id back; by keyed hash of every row when it was masked already.
                dropped = erasure_files.drop_parquet_rows(path, external_ids=found or None,
                                                          matches=None if found else matches)
                entry["parquet_rewritten"] = dropped.as_dict()
        locked = Erasure.objects.select_for_update().get(pk=erasure_id)
        locked.files[index] = entry
        locked.save(update_fields=["files"])
    return found


def _existing(relative: str):
    """The file's path; None when it is gone from a folder that is there (nothing left to rewrite).
    A missing folder looks like an unmounted disk: an error that may pass."""
    if not relative:
        return None
    path = data_path(relative)
    if path.exists():
        return path
    if not path.parent.is_dir():
        raise OSError(errno.EIO, "its folder is not there (is the data disk mounted?)", str(path.parent))
    return None


def _mark_late_versions(erasure: Erasure, found: set[str], matches) -> None:
    """Versions built since the erasure began did not exist when it read the lineage: read theirs now."""
    marked = set(erasure.versions.values_list("id", flat=True))
    for version in built_versions(source_ids=[erasure.source_id]):
        if version.pk in marked or not version.finished_at or version.finished_at < erasure.created_at:
            continue
        path = data_path(version.folder) / LINEAGE_FILE
        if not path.exists() or erasure_files.lineage_holds_record(
                path, source_id=erasure.source_id, external_ids=found or None, matches=None if found else matches):
            erasure.versions.add(version)


def _file_counts(files: list[dict]) -> dict:
    payloads = [f["payload_rewritten"] or {} for f in files]
    parquets = [f["parquet_rewritten"] or {} for f in files]
    return {"payload_lines_masked": sum(p.get("masked", 0) + p.get("already", 0) for p in payloads),
            "parquet_rows_removed": sum(p.get("rows_removed", 0) for p in parquets),
            "files_missing": sum(1 for p in payloads + parquets if p.get("missing"))}


def _transient(exc: Exception) -> bool:
    """A fault of the disk or a network file system that may pass; a missing or forbidden file does not."""
    permanent = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
    return isinstance(exc, OSError) and not isinstance(exc, permanent)


def _describe(exc: Exception) -> str:
    """An error as the erasure, its alert and the log may show it: ours name lines and files, OS errors their
    file (payloads are named by random ids); anything else only by its type, since its text might quote data."""
    if isinstance(exc, erasure_files.ErasureFileError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or 'I/O error'}" + (f" ({exc.filename})" if exc.filename else "")
    return f"{type(exc).__name__} while rewriting"


def _fail(erasure: Erasure, error: str) -> Erasure:
    with transaction.atomic():
        failed = Erasure.objects.filter(pk=erasure.pk, status=Erasure.Status.FILES_PENDING).update(
            status=Erasure.Status.FAILED, error=error[:4000], finished_at=timezone.now())
        if failed:
            alert_raise(kind=Alert.Kind.ERASURE_FAILED, subject=alert_subject(erasure.pk),
                        message=f"Erasure {erasure.pk} could not rewrite its files: {error[:500]}. Its database "
                                f"rows are gone; fix the cause, then retry it (manage.py erase --retry {erasure.pk}).")
    log.error("erasure %s: files not rewritten: %s", erasure.pk, error)
    erasure.refresh_from_db()
    return erasure


def erasure_retry(*, erasure: Erasure, enqueue_files: bool = True) -> Erasure:
    """Rewrite a failed erasure's files again (after the cause is fixed): back to `files_pending`, task sent.
    Refuses ErasureNotFailed for an erasure that has not failed."""
    with transaction.atomic():
        moved = Erasure.objects.filter(pk=erasure.pk, status=Erasure.Status.FAILED).update(
            status=Erasure.Status.FILES_PENDING, error="", finished_at=None)
        if not moved:
            raise ErasureNotFailed(f"erasure {erasure.pk} has not failed", field="erasure")
        if enqueue_files:
            transaction.on_commit(partial(enqueue, erasure.pk), robust=True)
    erasure.refresh_from_db()
    return erasure


def erasures_resend_pending(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Send the file rewrite again for erasures pending longer than `older_than` (a lost message, a broker that
    was down at the commit); a rewrite still running is not disturbed (it holds its batch's lock). For beat."""
    pending = list(Erasure.objects.filter(status=Erasure.Status.FILES_PENDING,
                                          created_at__lt=timezone.now() - older_than).values_list("id", flat=True))
    for erasure_id in pending:
        try:
            enqueue(erasure_id)
        except Exception:  # the broker is still down: the next check sends it
            log.warning("erasure %s: could not send its file rewrite; the next check will", erasure_id)
    return len(pending)
