"""The verdict on a batch: claim it, profile it (whole or in chunks), compare it with the active baseline and
record the run, its anomalies, the day's profile, the alerts and the move to admitted or quarantined."""
import math
import shutil
import uuid
from contextlib import contextmanager, suppress
from datetime import datetime
from datetime import timezone as dt_timezone

import orjson
from django.db import transaction
from django.utils import timezone

from collection.failures import batch_step_failed, describe, is_transient
from collection.models import Batch
from collection.services import batch_transition
from collection.storage import data_path
from validation import alerts, profiling
from validation.models import Alert, Anomaly, Baseline, DailyProfile, ValidationRun
from validation.selectors import source_policy_get
from validation.stats import Profile

from .baselines import baseline_compare, privacy_on

# Under SIEVE_DATA_DIR: the profiles of a chunked validation's chunks, until the merge has read them.
CHUNKS_DIR = "validation-chunks"


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
                            to_status=Batch.Status.VALIDATING, actor=actor, step_claim=claim):
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
        profile = report = reference = None
        labels = profiling.LabelCount()
        if baseline is not None:
            corrections = profiling.Corrections(profiling.feedback_labels(batch))
            reference = Profile.from_json(baseline.profile)
            profile = profiling.fold(profiling.frame_profiles(data_path(batch.columnar), reference.spec,
                                                              corrections=corrections,
                                                              privacy=privacy_on(batch.source)), reference.spec)
            report = baseline_compare(profile=profile, baseline=baseline, reference=reference)
            labels = corrections.count
        return _verdict_record(batch=batch, baseline=baseline, reference=reference, profile=profile, report=report,
                               labels=labels, started=plan["started"], actor=actor, claim=plan.get("claim"))


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
        privacy=privacy_on(batch.source)))
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
            return _verdict_record(batch=batch, baseline=baseline, reference=reference, profile=profile,
                                   report=baseline_compare(profile=profile, baseline=baseline, reference=reference),
                                   labels=labels,
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
                             transient=is_transient(error), where=_claimed(claim), step_claim="")


def _claimed(claim: str | None) -> dict:
    """The condition that a validation claim is still the batch's live one (none for plans made before claims
    had an identity)."""
    return {} if claim is None else {"step_claim": claim}


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


def report_json(report) -> dict:
    """A Report as JSON allows it (non-finite numbers as null), as runs store it."""
    return _json_safe(report.to_dict())


def _verdict_record(*, batch: Batch, baseline: Baseline | None, reference: Profile | None, profile: Profile | None,
                    report, labels: profiling.LabelCount, started: str, actor: str, claim: str | None) -> Batch | None:
    """Record a verdict: one path for the whole and the chunked validation."""
    if report is None:
        verdict, reasons = ValidationRun.Verdict.NO_BASELINE, ["no baseline"]
    else:
        verdict, reasons = report.verdict, report.reasons
    quarantined = source_policy_get(source=batch.source).quarantines(verdict)
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
                                step_claim=""):
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
            _daily_profile_add(batch=batch, baseline=baseline, reference=reference, profile=profile)
        _alerts_after_verdict(batch, verdict, reasons, quarantined)
    return Batch.objects.get(pk=batch.pk)


def _daily_profile_add(*, batch: Batch, baseline: Baseline, reference: Profile, profile: Profile) -> DailyProfile:
    """Merge the batch into its day's profile (UTC day of arrival) and compare the day again, against the
    baseline's profile the verdict already parsed (`reference`)."""
    day = batch.received_at.astimezone(dt_timezone.utc).date()
    # The row lock makes concurrent verdicts of one day take turns: each merges into the other's result.
    daily, _ = DailyProfile.objects.select_for_update().get_or_create(
        baseline=baseline, day=day, defaults={"source_id": batch.source_id, "profile": ""})
    merged = Profile.from_json(daily.profile).merge(profile) if daily.profile else profile
    report = baseline_compare(profile=merged, baseline=baseline, reference=reference)
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
