"""Every write of the validation app: baselines, the active one, and the verdict on each batch."""
import gzip
import hashlib
import json
import math
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path

import orjson
import pandas as pd
from django.db import transaction
from django.utils import timezone

from collection.columnar import ParquetCopy
from collection.failures import batch_step_failed, describe, is_transient
from collection.models import Batch, PrivacyPolicy, Source
from collection.parsing import LABEL_COLUMN, PayloadParser
from collection.services import batch_retry as batch_retry_failed
from collection.services import batch_transition
from collection.storage import data_path
from collection.writers import chunks

from . import alerts, profiling
from .models import Alert, Anomaly, AuditEntry, Baseline, DailyProfile, ValidationRun
from .profiling import META_COLUMNS
from .stats import Profile, Schema, Thresholds, compare, infer_schema, iter_parquet, profile_chunks

FILE_FORMATS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json", ".parquet": "parquet"}
CHUNK_ROWS = 200_000
# Under SIEVE_DATA_DIR: the profiles of a chunked validation's chunks, until the merge has read them.
CHUNKS_DIR = "validation-chunks"


class BaselineError(ValueError):
    """A reference that cannot become a baseline; the message says why."""


def _features_only(frame: pd.DataFrame, *, label: str | None = None) -> pd.DataFrame:
    frame = frame.drop(columns=[c for c in META_COLUMNS if c in frame.columns])
    if label and label in frame.columns and label != LABEL_COLUMN:
        frame = frame.rename(columns={label: LABEL_COLUMN})
    return frame


def _columnar_frames(paths: Iterable[Path], *, label: str | None = None) -> Iterator[pd.DataFrame]:
    for path in paths:
        for frame in iter_parquet(path):
            yield _features_only(frame, label=label)


def _record_file_as_parquet(path: Path, fmt: str, target: Path) -> None:
    """A reference in the batch formats becomes a columnar copy by the same rules as a batch,
    so that a baseline and the batches compared with it are typed alike."""
    def opener():
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")

    with opener() as stream:
        checked = PayloadParser(stream, fmt, max_json_bytes=2**31)
        for _ in checked:
            pass
    if checked.count == 0:
        raise BaselineError(f"{path.name} has no records")
    copy = ParquetCopy(target, checked.columns)
    try:
        with opener() as stream:
            for chunk in chunks(PayloadParser(stream, fmt, max_json_bytes=2**31, trusted=True), CHUNK_ROWS):
                copy.write(chunk)
    finally:
        copy.close()


def _actor(user) -> str:
    return f"user:{user.get_username()}" if user is not None else "system"


def _audit(*, actor: str, action: str, detail: str = "", source_id=None, batch_id=None, baseline_id=None) -> None:
    AuditEntry.objects.create(actor=actor, action=action, detail=detail, source_id=source_id, batch_id=batch_id,
                              baseline_id=baseline_id)


def _baseline_save(*, source: Source, profile: Profile, origin: str, detail: str, name: str, created_by,
                   activate: bool) -> Baseline:
    if profile.n_rows == 0:
        raise BaselineError("the reference has no rows")
    baseline = Baseline.objects.create(
        source=source, name=name, origin=origin, origin_detail=detail[:500], profile=profile.to_json(),
        schema=infer_schema(profile).to_dict(), row_count=profile.n_rows, created_by=created_by,
    )
    _audit(actor=_actor(created_by), action="baseline_created", source_id=source.pk, baseline_id=baseline.pk,
           detail=f"from {detail}, {profile.n_rows} rows")
    if activate:
        baseline_activate(baseline=baseline, by=created_by)
    return baseline


def baseline_create_from_profile(*, source: Source, profile: Profile, origin: str, detail: str, name: str = "",
                                 created_by=None, activate: bool = True) -> Baseline:
    """Keep a profile made elsewhere (a training-set version's) as a baseline of the source, without a new pass."""
    return _baseline_save(source=source, profile=profile, origin=origin, detail=detail, name=name,
                          created_by=created_by, activate=activate)


def baseline_create_from_file(*, source: Source, path: Path, label: str = "label", name: str = "",
                              created_by=None, activate: bool = True) -> Baseline:
    """Profile a reference file (the training data) once and keep it as a baseline of the source.

    CSV, NDJSON and JSON are read by the batch rules (README, "The record format"); Parquet is read
    as flat columns, with `label` naming the label column.
    """
    suffixes = [s for s in path.suffixes if s != ".gz"]
    fmt = FILE_FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise BaselineError(f"cannot tell the format of {path.name}: use .csv, .ndjson, .jsonl, .json or .parquet")
    if fmt == "parquet":
        profile = profile_chunks(_columnar_frames([path], label=label), label=LABEL_COLUMN,
                                 privacy=_privacy_on(source))
    else:
        with tempfile.TemporaryDirectory() as folder:
            columnar = Path(folder) / "reference.parquet"
            _record_file_as_parquet(path, fmt, columnar)
            profile = profile_chunks(_columnar_frames([columnar]), label=LABEL_COLUMN, privacy=_privacy_on(source))
    return _baseline_save(source=source, profile=profile, origin=Baseline.Origin.FILE, detail=path.name,
                          name=name, created_by=created_by, activate=activate)


def baseline_create_from_batches(*, source: Source, batches: list[Batch], name: str = "", created_by=None,
                                 activate: bool = True) -> Baseline:
    """Profile chosen batches of the source, already ingested, as its baseline."""
    foreign = [b.pk for b in batches if b.source_id != source.pk]
    if foreign:
        raise BaselineError(f"batches {foreign} belong to another source")
    unusable = [b.pk for b in batches if not b.columnar]
    if unusable or not batches:
        raise BaselineError(f"batches {unusable} have no columnar copy yet" if unusable else "choose batches")
    paths = [data_path(b.columnar) for b in batches]
    profile = profile_chunks(_columnar_frames(paths), label=LABEL_COLUMN, privacy=_privacy_on(source))
    return _baseline_save(source=source, profile=profile, origin=Baseline.Origin.BATCHES,
                          detail="batches " + ", ".join(str(b.pk) for b in batches), name=name,
                          created_by=created_by, activate=activate)


def baseline_activate(*, baseline: Baseline, by=None) -> Baseline:
    """Make this the source's active baseline; the one before it is kept, inactive."""
    with transaction.atomic():
        _audit(actor=_actor(by), action="baseline_activated", source_id=baseline.source_id, baseline_id=baseline.pk)
        # Lock the source so two activations at once cannot leave two active baselines.
        Source.objects.select_for_update().get(pk=baseline.source_id)
        Baseline.objects.filter(source_id=baseline.source_id, is_active=True).exclude(pk=baseline.pk).update(
            is_active=False)
        Baseline.objects.filter(pk=baseline.pk).update(is_active=True)
    baseline.refresh_from_db()
    return baseline


# --- the verdict on a batch


def _json_safe(value):
    """The report as JSON allows it: non-finite numbers become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def batch_validate(*, batch_id: int, actor: str = "task:validate") -> Batch | None:
    """Check an ingested batch against its source's active baseline and admit or quarantine it,
    all in this process (the validate task splits large batches across workers instead).

    Claims the batch (ingested -> validating). The run, its anomalies, the day's merged profile and
    the move to `admitted` or `quarantined` commit together; a batch has one run (a one-to-one row),
    so a second worker that raced this one cannot record a second verdict. A `fail` quarantines, and
    a `warn` too under the source's "warn" policy; otherwise the batch is admitted. A source without
    an active baseline has its batches quarantined with the reason "no baseline".
    """
    plan = batch_validate_claim(batch_id=batch_id, actor=actor, chunk_rows=0)
    if plan is None:
        return Batch.objects.filter(pk=batch_id).first()
    return batch_validate_whole(plan=plan, actor=actor)


def batch_validate_claim(*, batch_id: int, actor: str, chunk_rows: int) -> dict | None:
    """Claim an ingested batch for validation (ingested -> validating) and plan the work.

    Returns None when the batch is not `ingested` (someone else has it, or it is done), else the
    plan as plain data for task messages: the baseline, and when the batch has more than
    `chunk_rows` rows (0: never) the row groups of each chunk, with the feedback labels of the
    batch written once for all chunks, so that every chunk sees the same corrections.
    """
    started = timezone.now()
    # The claim has an identity, so that work left over from an earlier claim of the same batch (a
    # chunk that fails after its claim was given back and the batch claimed again, say) can neither
    # give back nor decide the newer claim.
    claim = uuid.uuid4().hex
    if not batch_transition(batch_id=batch_id, from_status=Batch.Status.INGESTED,
                            to_status=Batch.Status.VALIDATING, actor=actor, validation_claim=claim):
        return None
    with _released_on_error(batch_id, actor, claim):
        batch = Batch.objects.get(pk=batch_id)
        baseline = Baseline.objects.active().filter(source_id=batch.source_id).first()
        plan = {"batch": batch.pk, "claim": claim, "baseline": baseline.pk if baseline else None,
                "started": started.isoformat(), "chunks": [], "folder": ""}
        if baseline is None or not chunk_rows or batch.ingested_count <= chunk_rows:
            return plan
        chunks = profiling.plan_chunks(profiling.row_group_rows(data_path(batch.columnar)), chunk_rows)
        if len(chunks) < 2:
            return plan
        folder = f"{CHUNKS_DIR}/{batch.pk}/{uuid.uuid4().hex[:12]}"
        data_path(folder).mkdir(parents=True, exist_ok=True)
        data_path(f"{folder}/labels.json").write_bytes(orjson.dumps(profiling.feedback_labels(batch)))
        plan.update(chunks=chunks, folder=folder)
        return plan


def batch_validate_whole(*, plan: dict, actor: str) -> Batch | None:
    """Profile a claimed batch in this process, compare it and record the verdict."""
    with _released_on_error(plan["batch"], actor, plan.get("claim")):
        batch = Batch.objects.select_related("source").get(pk=plan["batch"])
        baseline = Baseline.objects.get(pk=plan["baseline"]) if plan["baseline"] else None
        profile = report = None
        labels = profiling.LabelCount()
        if baseline is not None:
            corrections = profiling.Corrections(profiling.feedback_labels(batch))
            reference = Profile.from_json(baseline.profile)
            profile = profiling.fold(profiling.frame_profiles(data_path(batch.columnar), reference.spec,
                                                              corrections=corrections,
                                                              privacy=_privacy_on(batch.source)), reference.spec)
            report = _compare(profile, reference, baseline)
            labels = corrections.count
        return _verdict_record(batch=batch, baseline=baseline, profile=profile, report=report, labels=labels,
                               started=plan["started"], actor=actor, claim=plan.get("claim"))


def batch_validate_chunk(*, plan: dict, index: int) -> dict:
    """Profile one chunk of a claimed batch; its frames' profiles go to a file under the data dir.

    Returns what the merge needs: the chunk's index, the file and the feedback labels it applied.
    Running it again rewrites the same file.
    """
    batch = Batch.objects.select_related("source").get(pk=plan["batch"])
    spec = Profile.from_json(Baseline.objects.get(pk=plan["baseline"]).profile).spec
    labels = orjson.loads(data_path(f"{plan['folder']}/labels.json").read_bytes())
    corrections = profiling.Corrections(labels)
    relative = f"{plan['folder']}/chunk-{index}.ndjson"
    profiling.write_profiles(data_path(relative), profiling.frame_profiles(
        data_path(batch.columnar), spec, row_groups=plan["chunks"][index], corrections=corrections,
        privacy=_privacy_on(batch.source)))
    # Progress: the sweeper takes a batch whose validation shows no sign of life for a while.
    Batch.objects.filter(pk=batch.pk, status=Batch.Status.VALIDATING, **_claimed(plan.get("claim"))).update(
        updated_at=timezone.now())
    return {"index": index, "path": relative, "labels": corrections.count.to_dict()}


def batch_validate_merge(*, plan: dict, parts: list[dict], actor: str) -> Batch | None:
    """Fold the chunks' profiles in file order, compare and record the verdict, as batch_validate does.

    Idempotent: a batch that already has its verdict (or whose claim was given back) is left alone.
    """
    try:
        parts = sorted(parts, key=lambda part: part["index"])
        if [part["index"] for part in parts] != list(range(len(plan["chunks"]))):
            raise ValueError(f"batch {plan['batch']}: chunks {[p['index'] for p in parts]} of "
                             f"{len(plan['chunks'])} came back")
        if not Batch.objects.filter(pk=plan["batch"], status=Batch.Status.VALIDATING,
                                    **_claimed(plan.get("claim"))).exists():
            return Batch.objects.filter(pk=plan["batch"]).first()
        with _released_on_error(plan["batch"], actor, plan.get("claim")):
            batch = Batch.objects.select_related("source").get(pk=plan["batch"])
            baseline = Baseline.objects.get(pk=plan["baseline"])
            reference = Profile.from_json(baseline.profile)
            profile = profiling.fold((profile for part in parts
                                      for profile in profiling.read_profiles(data_path(part["path"]))),
                                     reference.spec)
            labels = profiling.LabelCount()
            for part in parts:
                labels = labels.add(profiling.LabelCount(**part["labels"]))
            return _verdict_record(batch=batch, baseline=baseline, profile=profile,
                                   report=_compare(profile, reference, baseline), labels=labels,
                                   started=plan["started"], actor=actor, claim=plan.get("claim"))
    finally:
        _chunks_remove(plan["folder"])


def batch_validate_release(*, batch_id: int, actor: str, error: BaseException, folder: str = "",
                           claim: str | None = None) -> str:
    """A claimed validation failed with `error`: give the claim back (validating -> ingested) so a retry or the
    sweeper validates the batch again, or, for an error that will recur, count it and at the limit end the batch
    `failed` with it (collection/failures.py); `folder` (a chunked plan's) is removed. With `claim`, only if that
    claim is still the live one. Returns the batch's new status, "" when the claim was no longer live."""
    if folder:
        _chunks_remove(folder)
    return batch_step_failed(batch_id=batch_id, working=Batch.Status.VALIDATING, back=Batch.Status.INGESTED,
                             actor=actor, step="validate", reason=f"validation: {describe(error)}",
                             transient=is_transient(error), where=_claimed(claim), validation_claim="")


def _claimed(claim: str | None) -> dict:
    """The condition that a validation claim is still the batch's live one (none for plans made before claims
    had an identity)."""
    return {} if claim is None else {"validation_claim": claim}


def _chunks_remove(folder: str) -> None:
    path = data_path(folder)
    shutil.rmtree(path, ignore_errors=True)
    with suppress(OSError):
        path.parent.rmdir()  # the batch's folder, once no other plan of it is left


@contextmanager
def _released_on_error(batch_id: int, actor: str, claim: str | None):
    try:
        yield
    except BaseException as exc:
        # Give the claim back so a retry (or the sweeper) can validate it again, or end the batch (failures.py).
        batch_validate_release(batch_id=batch_id, actor=actor, error=exc, claim=claim)
        raise


def _privacy_on(source: Source) -> bool:
    """Whether the source's batches and references are checked for personal data (and their profiles then keep no
    raw value of a feature found to be personal data)."""
    return source.privacy_check != PrivacyPolicy.OFF


def _compare(profile: Profile, reference: Profile, baseline: Baseline):
    return baseline_compare(profile=profile, baseline=baseline, reference=reference)


def baseline_compare(*, profile: Profile, baseline: Baseline, reference: Profile | None = None,
                     environment: str | None = None):
    """A profile made on the baseline's spec against the baseline, under its schema and thresholds and its source's
    privacy check (as a batch's verdict is made); `reference` saves parsing the baseline's profile again."""
    thresholds = Thresholds.from_dict(baseline.thresholds) if baseline.thresholds else None
    return compare(profile, reference or Profile.from_json(baseline.profile), schema=Schema.from_dict(baseline.schema),
                   thresholds=thresholds, environment=environment, privacy=baseline.source.privacy_check)


def report_json(report) -> dict:
    """A Report as JSON allows it (non-finite numbers as null), as runs store it."""
    return _json_safe(report.to_dict())


def _verdict_record(*, batch: Batch, baseline: Baseline | None, profile: Profile | None, report,
                    labels: profiling.LabelCount, started: str, actor: str, claim: str | None) -> Batch | None:
    """Record a verdict: one path for the whole and the chunked validation."""
    if report is None:
        verdict, reasons = ValidationRun.Verdict.NO_BASELINE, ["no baseline"]
    else:
        verdict, reasons = report.verdict, report.reasons
    quarantined = batch.source.quarantines(verdict)
    if quarantined and verdict == ValidationRun.Verdict.WARN:
        reasons = [*reasons, "warnings quarantine this source's batches"]
    stored = {}
    if report is not None:
        stored = _json_safe(report.to_dict())
        stored["feedback_labels"] = labels.to_dict()
    with transaction.atomic():
        # The verdict is this move: of two workers that got this far, one moves the batch, the other stops.
        if not batch_transition(batch_id=batch.pk, from_status=Batch.Status.VALIDATING,
                                to_status=Batch.Status.QUARANTINED if quarantined else Batch.Status.ADMITTED,
                                actor=actor, note="; ".join(reasons)[:1000] or verdict, where=_claimed(claim),
                                validation_claim=""):
            return Batch.objects.get(pk=batch.pk)
        run = ValidationRun.objects.create(
            batch=batch, baseline=baseline, verdict=verdict, reasons=_json_safe(list(reasons)),
            shift=report.shift.kind if report else "", drifted_share=report.drifted_share if report else None,
            report=stored, profile=profile.to_json() if profile else "",
            started_at=datetime.fromisoformat(started), finished_at=timezone.now(),
        )
        if report:
            Anomaly.objects.bulk_create([
                Anomaly(run=run, kind=a.kind, feature=a.feature, metric=a.metric or "",
                        value=_json_safe(a.value), threshold=_json_safe(a.threshold), severity=a.severity,
                        explanation=a.explanation)
                for a in report.anomalies
            ])
            _daily_profile_add(batch=batch, baseline=baseline, profile=profile)
        _alerts_after_verdict(batch, verdict, reasons, quarantined)
    return Batch.objects.get(pk=batch.pk)


def _daily_profile_add(*, batch: Batch, baseline: Baseline, profile: Profile) -> DailyProfile:
    """Merge the batch into its day's profile (UTC day of arrival) and compare the day again."""
    day = batch.received_at.astimezone(dt_timezone.utc).date()
    # The row lock makes concurrent verdicts of one day take turns: each merges into the other's result.
    daily, _ = DailyProfile.objects.select_for_update().get_or_create(
        baseline=baseline, day=day, defaults={"source_id": batch.source_id, "profile": ""})
    merged = Profile.from_json(daily.profile).merge(profile) if daily.profile else profile
    report = _compare(merged, Profile.from_json(baseline.profile), baseline)
    daily.profile = merged.to_json()
    daily.batch_count += 1
    daily.row_count = merged.n_rows
    daily.metrics = _json_safe(report.to_dict()["metrics"])
    daily.drifted = list(report.drifted_features)
    daily.updated_at = timezone.now()
    daily.save()
    return daily


def _alerts_after_verdict(batch: Batch, verdict: str, reasons, quarantined: bool) -> None:
    source_id, summary = batch.source_id, "; ".join(reasons)[:500]
    # The batch was ingested, so the source's ingest works again.
    alerts.alert_resolve(source_id=source_id, kind=Alert.Kind.INGEST_FAILED)
    if quarantined:
        alerts.alert_raise(source_id=source_id, kind=Alert.Kind.QUARANTINE, batch_id=batch.pk,
                           message=f"batch {batch.pk} of {batch.source.name} quarantined: {summary}")
    elif verdict == ValidationRun.Verdict.WARN:
        alerts.alert_raise(source_id=source_id, kind=Alert.Kind.WARN, batch_id=batch.pk,
                           message=f"batch {batch.pk} of {batch.source.name} admitted with warnings: {summary}")
    else:
        alerts.alert_resolve(source_id=source_id, kind=Alert.Kind.WARN)


class ReviewError(ValueError):
    """A review that cannot be applied (the batch is not quarantined, say)."""


def batch_review(*, batch_id: int, user, approve: bool, comment: str = "") -> Batch:
    """An admin's decision on a quarantined batch: approve admits it, reject rejects it.

    Recorded as the batch's transition with the admin's name, the time and the comment, with its audit entry and
    the quarantine alert's resolution in the same transaction; a second decision on the same batch is refused,
    since it is no longer quarantined.
    """
    target = Batch.Status.ADMITTED if approve else Batch.Status.REJECTED
    with transaction.atomic():
        decided = batch_transition(batch_id=batch_id, from_status=Batch.Status.QUARANTINED, to_status=target,
                                   actor=f"user:{user.get_username()}",
                                   note=f"{'approved' if approve else 'rejected'}: {comment}".rstrip(": "))
        batch = Batch.objects.get(pk=batch_id)
        if not decided:
            raise ReviewError(f"batch {batch_id} is {batch.status}, not quarantined")
        _audit(actor=_actor(user), action="batch_approved" if approve else "batch_rejected",
               source_id=batch.source_id, batch_id=batch.pk, detail=comment)
        if not Batch.objects.filter(source_id=batch.source_id, status=Batch.Status.QUARANTINED).exists():
            alerts.alert_resolve(source_id=batch.source_id, kind=Alert.Kind.QUARANTINE)  # the queue is clear
    return batch


def batch_retry(*, batch_id: int, user) -> str:
    """A staff member gives a failed batch back to the pipeline after a fix (collection.services.batch_retry),
    recorded in the audit log; once none of its source's batches is failed, the failure alerts are resolved.
    Returns where the batch starts again."""
    back = batch_retry_failed(batch_id=batch_id, actor=f"user:{user.get_username()}")
    source_id = Batch.objects.only("source_id").get(pk=batch_id).source_id
    _audit(actor=_actor(user), action="batch_retried", source_id=source_id, batch_id=batch_id, detail=back)
    if not Batch.objects.filter(source_id=source_id, status=Batch.Status.FAILED).exists():
        for kind in (Alert.Kind.INGEST_FAILED, Alert.Kind.VALIDATION_FAILED):
            alerts.alert_resolve(source_id=source_id, kind=kind)
    return back


def batch_make_baseline(*, batch_id: int, user) -> Baseline:
    """"Make this the baseline" for a batch quarantined for want of one: its data becomes the source's
    active baseline, and the batch is admitted, both recorded with who and when, in one transaction that holds
    the batch, so a concurrent review either comes first (and this is refused) or waits."""
    with transaction.atomic():
        batch = Batch.objects.select_for_update().select_related("source").get(pk=batch_id)
        if batch.status != Batch.Status.QUARANTINED or not batch.columnar:
            raise ReviewError(
                f"batch {batch_id} is {batch.status}: only a quarantined, ingested batch can be made the baseline")
        baseline = baseline_create_from_batches(source=batch.source, batches=[batch], name=f"from batch {batch.pk}",
                                                created_by=user)
        batch_review(batch_id=batch.pk, user=user, approve=True, comment=f"made baseline {baseline.pk}")
    return baseline


# --- editing a baseline's schema and thresholds


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _changes(before: dict, after: dict) -> list[str]:
    """Each setting that differs, as 'where: old -> new'."""
    old, new = _flat(before), _flat(after)
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
            for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]


def baseline_digest(baseline: Baseline) -> str:
    """A fingerprint of what an edit changes (schema and thresholds): an editor sends back the one they saw."""
    text = json.dumps([baseline.schema, baseline.thresholds], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class BaselineConflict(ReviewError):
    """The baseline was saved by someone else after the editor opened it."""


def baseline_edit(*, baseline: Baseline, schema: Schema, thresholds: Thresholds, by=None,
                  seen: str | None = None) -> list[str]:
    """Save an admin's edit of a baseline's schema and thresholds; the change, setting by setting,
    goes to the audit log in the same transaction. Returns the changes (empty: nothing saved).

    `seen`: the digest of the baseline the editor opened (baseline_digest). The row is locked and its digest
    checked in the transaction that writes, so of two editors who opened the same version only the first saves;
    the second gets BaselineConflict and nothing of theirs is written (no lost update)."""
    with transaction.atomic():
        current = Baseline.objects.select_for_update().get(pk=baseline.pk)
        if seen is not None and seen != baseline_digest(current):
            raise BaselineConflict("Someone saved this baseline after you opened it: reload the page to see "
                                   "their change.")
        saved = Thresholds.from_dict(current.thresholds or {}).to_dict()
        changes = _changes({"schema": current.schema, "thresholds": saved},
                           {"schema": schema.to_dict(), "thresholds": thresholds.to_dict()})
        if not changes:
            return []
        Baseline.objects.filter(pk=baseline.pk).update(schema=schema.to_dict(), thresholds=thresholds.to_dict())
        _audit(actor=_actor(by), action="baseline_edited", source_id=baseline.source_id, baseline_id=baseline.pk,
               detail="\n".join(changes))
    baseline.refresh_from_db()
    return changes
