"""The privacy check per source: personal data quarantines (error), warns or is not checked (off), and no raw value
of it is stored in a report, a profile, a schema or an alert, nor shown on a page; in a browser, through a worker."""
import io
import json

import numpy as np
import orjson
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from collection.models import Batch, Source
from tests.conftest import log_in, wait_for
from tests.factories import batch_ingested
from validation import services
from validation.models import Alert, Anomaly, Baseline, DailyProfile, PrivacyPolicy, ValidationRun
from validation.selectors import source_policy_get
from validation.stats import Profile

FIRST = ["anna", "ben", "chloe", "dmitri", "eva", "farid", "grace", "hiro"]
EMAILS = [f"{a}.{b}@example.com" for a in FIRST for b in FIRST[:5]]  # 40 addresses
PHONES = [f"+44 20 7946 0{i:03d}" for i in range(100, 120)]  # 20 numbers
RAW = EMAILS + PHONES


def contact_records(n: int, *, seed: int, prefix: str = "r") -> bytes:
    """NDJSON of n orders: an amount, and a `contact` that is an email address in 30% of them, a phone number in
    10%, else "none"."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        draw = rng.random()
        contact = str(rng.choice(EMAILS)) if draw < 0.3 else str(rng.choice(PHONES)) if draw < 0.4 else "none"
        lines.append(orjson.dumps({"external_id": f"{prefix}{i}", "label": str(rng.choice(["ok", "fraud"])),
                                   "features": {"amount": float(rng.normal(10, 2)), "contact": contact}}) + b"\n")
    return b"".join(lines)


def with_baseline(source, tmp_path) -> Baseline:
    reference = tmp_path / "train.ndjson"
    reference.write_bytes(contact_records(3000, seed=1, prefix="ref"))
    return services.baseline_create_from_file(source=source, path=reference)


def validated(source, body: bytes) -> Batch:
    return services.batch_validate(batch_id=batch_ingested(source, body).pk)


def stored_text(source) -> str:
    """Everything validation keeps about the source, as text: reports, profiles, schemas, explanations, alerts."""
    parts = []
    for run in ValidationRun.objects.filter(batch__source=source):
        parts += [json.dumps(run.report), run.profile, json.dumps(run.reasons)]
    for baseline in Baseline.objects.filter(source=source):
        parts += [baseline.profile, json.dumps(baseline.schema)]
    parts += [d.profile + json.dumps(d.metrics) for d in DailyProfile.objects.filter(source=source)]
    parts += list(Anomaly.objects.filter(run__batch__source=source).values_list("explanation", flat=True))
    parts += list(Alert.objects.filter(source=source).values_list("message", flat=True))
    parts += list(Batch.objects.filter(source=source).values_list("transitions__note", flat=True))
    return "\n".join(p or "" for p in parts)


def raw_in(text: str) -> list[str]:
    return [value for value in RAW if value in text]


def test_under_error_personal_data_quarantines_the_batch_and_no_raw_value_is_stored_or_shown(admin_client, source,
                                                                                             tmp_path):
    assert source_policy_get(source=source).privacy_check == PrivacyPolicy.ERROR  # on by default
    baseline = with_baseline(source, tmp_path)
    assert Profile.from_json(baseline.profile).spec.features["contact"].vocab == ()
    batch = validated(source, contact_records(2000, seed=2))
    assert (batch.status, batch.validation.verdict) == ("quarantined", "fail")
    anomaly = batch.validation.anomalies.get(kind="personal_data")
    assert (anomaly.feature, anomaly.severity, anomaly.metric) == ("contact", "error", "personal_data")
    assert 0.35 < anomaly.value < 0.45 and anomaly.threshold == 0.05
    assert anomaly.explanation.startswith("email: ") and "; phone: " in anomaly.explanation
    assert "***@e***.com" in anomaly.explanation and "+44 ** **** 01" in anomaly.explanation
    assert "error: personal_data in contact" in batch.validation.reasons
    assert raw_in(stored_text(source)) == []

    page = admin_client.get(f"/quality/batches/{batch.pk}/").content.decode()
    charts = admin_client.get(f"/quality/batches/{batch.pk}/charts").content.decode()
    edit = admin_client.get(f"/quality/baselines/{baseline.pk}/edit").content.decode()
    assert "personal_data" in page and "***@e***.com" in page and "look like phone numbers" in page
    assert '"feature": "contact"' in charts
    assert raw_in(page + charts + edit) == []


def test_under_warn_the_batch_is_admitted_with_a_warning(source, tmp_path):
    services.source_policy_set(source=source, privacy_check=PrivacyPolicy.WARN)
    with_baseline(source, tmp_path)
    batch = validated(source, contact_records(2000, seed=3))
    assert (batch.status, batch.validation.verdict) == ("admitted", "warn")
    assert list(batch.validation.anomalies.values_list("kind", "severity")) == [("personal_data", "warning")]
    assert Alert.objects.filter(source=source, kind="warn", batch=batch).exists()
    assert raw_in(stored_text(source)) == []


def test_off_checks_nothing_and_the_batch_passes(source, tmp_path):
    services.source_policy_set(source=source, privacy_check=PrivacyPolicy.OFF)
    baseline = with_baseline(source, tmp_path)
    batch = validated(source, contact_records(2000, seed=4))
    assert (batch.status, batch.validation.verdict) == ("admitted", "pass")
    assert not batch.validation.anomalies.exists()
    profile = Profile.from_json(batch.validation.profile)
    assert profile.features["contact"].privacy is None
    # Off means off: the baseline's bins name the values, as they did before the check existed.
    assert set(Profile.from_json(baseline.profile).spec.features["contact"].vocab) & set(EMAILS)


def test_the_setting_shows_on_the_source_pages_in_the_admin_and_in_the_command(admin_client, source):
    services.source_policy_set(source=source, privacy_check=PrivacyPolicy.WARN)
    sources = admin_client.get("/quality/sources/").content.decode()
    assert "Personal data" in sources and "a warning" in sources
    page = admin_client.get(f"/quality/sources/{source.pk}/").content.decode()
    assert 'id="privacy-check"' in page and "personal data check" in page
    form = admin_client.get(f"/admin/collection/source/{source.pk}/change/").content.decode()
    assert 'name="policy-0-privacy_check"' in form
    call_command("source_create", "crm-export", "--privacy-check", "off", stdout=io.StringIO(), stderr=io.StringIO())
    assert Source.objects.get(name="crm-export").policy.privacy_check == "off"


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.slow
def test_an_admin_sees_the_personal_data_finding_of_an_uploaded_batch_masked(worker, live_server, page, source,
                                                                            source_key, tmp_path, django_user_model):
    """A batch uploaded through the API, ingested and validated by a real worker; its page in chromium names the
    finding with masked examples, and no raw address or number is anywhere on it."""
    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    with_baseline(source, tmp_path)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {source_key}")
    response = client.post("/api/v1/batches", data=contact_records(2000, seed=5),
                           content_type="application/x-ndjson")
    assert response.status_code == 202, response.content
    batch_id = response.json()["id"]
    wait_for(lambda: Batch.objects.get(pk=batch_id).status == "quarantined", timeout=90,
             what="the worker to ingest, validate and quarantine the batch")

    log_in(page, live_server.url, "admin", "admin-pass-123", next_url=f"/quality/batches/{batch_id}/")
    page.wait_for_selector("body[data-charts-drawn=yes]")
    row = page.locator("#anomalies tr", has_text="personal_data")
    assert row.count() == 1
    text = row.inner_text()
    assert "contact" in text and "error" in text and "email: " in text and "***@e***.com" in text
    assert "look like phone numbers (e.g. +44 ** **** 01" in text
    assert "error: personal_data in contact" in page.inner_text("#reasons")
    assert raw_in(page.content()) == []
    assert raw_in(stored_text(source)) == []
