"""Factories for the objects tests build most: records, sources and keys, batches, baselines, users, raters,
labeling projects and queues, settled items and training-set versions."""
import datetime as dt
import io
import uuid
from pathlib import Path

URL_BATCHES = "/api/v1/batches"
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
PASSWORD = "pw-12345678"
CHOICES = [{"value": "positive", "label": "Positive", "hotkey": "1"},
           {"value": "negative", "label": "Negative", "hotkey": "2"},
           {"value": "neutral", "label": "Neutral", "hotkey": "3"}]
# The schema of a checkout source (amount, country, label), as the drift pages' small worlds use it.
SCHEMA = {"version": 1, "label": "label", "features": {
    "amount": {"kind": "numeric"}, "country": {"kind": "categorical"}, "label": {"kind": "categorical"}}}


# --- payloads


def checkout_records(n: int, *, shift: float = 0.0, seed: int = 0, prefix: str = "r") -> bytes:
    """NDJSON of n checkout records (amount ~ N(10 + shift, 2), three countries, a 10% fraud label)."""
    import numpy as np
    import orjson

    rng = np.random.default_rng(seed)
    return b"".join(
        orjson.dumps({"external_id": f"{prefix}{i}", "features": {"amount": float(rng.normal(10 + shift, 2)),
                                                                  "country": str(rng.choice(["DE", "FR", "NL"]))},
                      "label": str(rng.choice(["ok", "fraud"], p=[0.9, 0.1]))}) + b"\n"
        for i in range(n)
    )


def checkout_rows(n: int, *, prefix: str = "r", shift: float = 0.0, start: int = 0) -> list[dict]:
    """n records (as rows for `admitted_batch`) with an amount, a country and an observed time an hour apart."""
    countries = ["DE", "FR", "NL"]
    return [{"external_id": f"{prefix}{i}", "features": {"amount": 10.0 + shift + (i % 7), "country": countries[i % 3]},
             "observed_at": T0 + dt.timedelta(hours=i)} for i in range(start, start + n)]


# --- sources, keys and batches


def source_make(*, name: str | None = None, kind: str = "app", **options):
    """A source through the service; a unique name unless one is given."""
    from collection import services

    return services.source_create(name=name or f"source-{uuid.uuid4().hex[:6]}", kind=kind, **options)


def source_key_make(source, *, name: str = "test", **options) -> str:
    """An API key of the source; returns the secret a client sends."""
    from collection import services

    return services.source_key_create(source=source, name=name, **options)[1]


def api_client(source_key: str):
    """A DRF client that sends a source's key."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {source_key}")
    return client


def post_batch(client, body: bytes, content_type: str = "application/x-ndjson", **headers):
    """POST a batch with a client; returns the response."""
    return client.post(URL_BATCHES, data=body, content_type=content_type, headers=headers)


def stored_payloads(source) -> list:
    """The names of the payload files kept for a source."""
    from collection.storage import data_path

    folder = data_path(f"payloads/{source.pk}")
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def batch_received(source, body: bytes, *, fmt: str = "ndjson"):
    """A batch received through the service, as the API stores it (its pipeline starts on commit)."""
    from collection import services

    return services.batch_receive(source=source, body=io.BytesIO(body), fmt=fmt, gzipped=False)[0]


def batch_ingested(source, body: bytes, *, fmt: str = "ndjson"):
    """A batch received and ingested in this process."""
    from collection import services

    return services.batch_ingest(batch_id=batch_received(source, body, fmt=fmt).pk)


def batch_of_records(source, n: int, *, status: str = "admitted", prefix: str | None = None):
    """A batch with n current text records (text, stars), made directly (ingest is collection's to test)."""
    from collection.models import Batch, Record

    prefix = prefix or uuid.uuid4().hex[:6]
    batch = Batch.objects.create(source=source, status=status, format=Batch.Format.NDJSON, payload="test",
                                 sha256=uuid.uuid4().hex, record_count=n, ingested_count=n)
    Record.objects.bulk_create([
        Record(batch=batch, source=source, line=i + 1, external_id=f"{prefix}-{i}",
               features={"text": f"review {prefix} {i}", "stars": i % 5}, is_current=True)
        for i in range(n)
    ])
    return batch


def admitted_batch(source, rows: list[dict], *, status: str = "admitted"):
    """A batch of records made directly (ingest is collection's to test): each row is
    {"external_id", "features", "label"?, "observed_at"?}; a record already current becomes a new revision."""
    from collection.models import Batch, Record
    from collection.parsing import LABEL_COLUMN, ColumnTypes

    types = ColumnTypes()
    for row in rows:
        for name, value in row["features"].items():
            types.add(name, value)
        if "label" in row:
            types.add(LABEL_COLUMN, row["label"])
    batch = Batch.objects.create(source=source, status=status, format=Batch.Format.NDJSON, payload="test",
                                 sha256=uuid.uuid4().hex, record_count=len(rows), ingested_count=len(rows),
                                 columns=[[k, v] for k, v in types.summary().items()])
    ids = [row["external_id"] for row in rows]
    Record.objects.filter(source=source, external_id__in=ids, is_current=True).update(is_current=False)
    Record.objects.bulk_create([
        Record(batch=batch, source=source, line=i + 1, external_id=row["external_id"], features=row["features"],
               label=row.get("label"), observed_at=row.get("observed_at"), is_current=True)
        for i, row in enumerate(rows)
    ])
    return batch


def feedback_make(source, record, signal: str, value, *, actor: str = "user-1",
                  at: dt.datetime = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.timezone.utc)):
    """A process-feedback event on a record, stored directly, from a pseudonymous actor."""
    from collection.models import FeedbackEvent

    return FeedbackEvent.objects.create(source=source, idempotency_key=uuid.uuid4().hex,
                                        external_id=record.external_id, record=record, signal=signal, value=value,
                                        actor=f"pseudo-{actor}", occurred_at=at)


# --- baselines and verdicts


def baseline_from_records(source, folder: Path, body: bytes | None = None):
    """The source's active baseline, made by the service from a training file (3000 checkout records by default)."""
    from validation import services

    reference = Path(folder) / f"train-{uuid.uuid4().hex[:6]}.ndjson"
    reference.write_bytes(checkout_records(3000) if body is None else body)
    return services.baseline_create_from_file(source=source, path=reference)


def quarantined_batch(source, folder: Path):
    """A drifted batch quarantined against a baseline of 3000 checkout records, all through the services."""
    from validation import services

    baseline_from_records(source, folder)
    batch = batch_ingested(source, checkout_records(2000, shift=4, seed=8))
    return services.batch_validate(batch_id=batch.pk)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    """That day at that hour, UTC."""
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.timezone.utc)


def make_batch(source, when, *, records=10, verdict=None, quarantined=False, status=None):
    """A batch as the pipeline leaves it: with a verdict, the validate step's transition is recorded too."""
    from collection.models import Batch, BatchTransition
    from validation.models import ValidationRun

    status = status or (("quarantined" if quarantined else "admitted") if verdict else "ingested")
    batch = Batch.objects.create(source=source, status=status, format="ndjson", payload="-", sha256=uuid.uuid4().hex,
                                 record_count=records, received_at=when, updated_at=when)
    if verdict:
        ValidationRun.objects.create(batch=batch, verdict=verdict, started_at=when, finished_at=when)
        BatchTransition.objects.create(batch=batch, from_status="validating", actor="task:validate", at=when,
                                       to_status="quarantined" if quarantined else "admitted")
    return batch


def make_baseline(source, *, active=True, schema=SCHEMA, thresholds=None, when=None):
    """A baseline row with a schema and no profile, for the pages' reads."""
    from django.utils import timezone

    from validation.models import Baseline

    return Baseline.objects.create(source=source, origin="file", profile="{}", schema=schema,
                                   thresholds=thresholds or {}, is_active=active,
                                   created_at=when or timezone.now())


def metric(value, threshold):
    return {"value": value, "threshold": threshold, "p_value": None}


def make_day(baseline, day, *, amount, country=0.01, drifted=(), label=0.0, batches=1):
    """One day's merged profile of the baseline's source with the given drift metrics."""
    from validation.models import DailyProfile

    return DailyProfile.objects.create(
        source_id=baseline.source_id, baseline=baseline, day=day, profile="{}", batch_count=batches,
        metrics={"amount": {"wasserstein": metric(amount, 0.1), "js": metric(amount / 2, 0.1), "ks": metric(0.1, None)},
                 "country": {"js": metric(country, 0.1), "linf": metric(country, 0.1)},
                 "label": {"missing_rate": metric(0.0, 0.05), "label": metric(label, 0.05)}},
        drifted=list(drifted))


def engine_run(source, *, features=30, rows=400, seed=1, when=None):
    """A baseline and a quarantined batch's run made by the engine on a wide frame; every fifth
    feature moves by one standard deviation, so those are flagged."""
    import numpy as np
    import pandas as pd
    from django.utils import timezone

    from validation.models import Anomaly, Baseline, ValidationRun
    from validation.services import _json_safe
    from validation.stats import compare, infer_schema, profile_frame

    rng = np.random.default_rng(seed)

    def frame(shift):
        return pd.DataFrame({f"f{i:02d}": rng.normal(shift if i % 5 == 0 else 0.0, 1.0, rows) for i in range(features)})

    reference = profile_frame(frame(0.0))
    schema = infer_schema(reference)
    baseline = Baseline.objects.create(source=source, origin="file", profile=reference.to_json(),
                                       schema=schema.to_dict(), is_active=True, row_count=rows)
    profile = profile_frame(frame(1.0), spec=reference.spec)
    report = compare(profile, reference, schema=schema)
    when = when or timezone.now()
    batch = make_batch(source, when, records=rows, verdict=report.verdict, quarantined=True)
    run = ValidationRun.objects.get(batch=batch)
    run.baseline, run.reasons, run.report, run.profile = baseline, report.reasons, _json_safe(report.to_dict()), \
        profile.to_json()
    run.save()
    Anomaly.objects.bulk_create([Anomaly(run=run, kind=a.kind, feature=a.feature, metric=a.metric,
                                         value=_json_safe(a.value), threshold=_json_safe(a.threshold),
                                         severity=a.severity) for a in report.anomalies])
    return run


# --- people


def user_make(username: str | None = None, *, password: str = PASSWORD, staff: bool = False, superuser: bool = False):
    """A Django user (staff or superuser on demand); a unique name unless one is given."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    username = username or f"user-{uuid.uuid4().hex[:6]}"
    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.com", password)
    return User.objects.create_user(username, password=password, is_staff=staff)


def person(name: str, *, staff: bool = False, groups=()):
    """A user named after `name` (made unique), staff on demand, in the given groups."""
    user = user_make(f"{name}-{uuid.uuid4().hex[:6]}", password="pw", staff=staff)
    user.groups.add(*groups)
    return user


def rater_make(name: str | None = None, *, kind: str = "generalist", domains=(), project=None,
               password: str | None = None):
    """A rater through the service, joined to `project` when one is given."""
    from labeling import services

    rater = services.rater_create(username=name or f"rater-{uuid.uuid4().hex[:8]}", kind=kind, domains=domains,
                                  password=password)
    if project is not None:
        services.project_add_raters(project=project, raters=[rater])
    return rater


# --- labeling projects, queues and training sets


def project_make(source=None, *, name: str | None = None, choices=None, overlap: int = 3, **options):
    """A labeling project through the service (the three sentiment choices), fed by `source` when given."""
    from labeling import services

    return services.project_create(name=name or f"project-{uuid.uuid4().hex[:6]}", choices=choices or CHOICES,
                                   overlap=overlap, sources=[source] if source is not None else [], **options)


def settle(project, batch, label_of, *, confidence: float = 0.9, decided_by: str = "dawid_skene"):
    """Queue the batch's records in the project with a complete consensus: label_of(record) -> label or None."""
    from labeling.models import QueueItem

    items = []
    for record in batch.records.order_by("id"):
        label = label_of(record)
        done = label is not None
        items.append(QueueItem(project=project, record=record, state=QueueItem.State.COMPLETE if done else "open",
                               consensus=label, confidence=confidence if done else None,
                               decided_by=decided_by if done else "", submitted_count=3 if done else 0))
    QueueItem.objects.bulk_create(items)


def build(training_set, **kwargs):
    """Request a version of the training set and build it in this process."""
    from trainingsets.services import version_build, version_request

    version = version_request(training_set=training_set, **kwargs)
    return version_build(version_id=version.pk)
