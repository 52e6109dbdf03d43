"""The data-quality pages: what an admin sees and does in a real browser, and who is kept out."""
import io
import os
from pathlib import Path

import pytest

from collection import services as collection
from collection.storage import data_path
from tests.conftest import checkout_records, log_in
from validation import services

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """docs/screenshots/ when SIEVE_SCREENSHOTS=1 (to refresh the README's pictures), else a temporary folder."""
    folder = DOCS_SCREENSHOTS if os.environ.get("SIEVE_SCREENSHOTS") == "1" else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def quarantined_batch(source, tmp_path):
    reference = tmp_path / "train.ndjson"
    reference.write_bytes(checkout_records(3000))
    services.baseline_create_from_file(source=source, path=reference)
    batch = collection.batch_receive(source=source, body=io.BytesIO(checkout_records(2000, shift=4, seed=8)),
                                     fmt="ndjson", gzipped=False)[0]
    collection.batch_ingest(batch_id=batch.pk)
    return services.batch_validate(batch_id=batch.pk)


@pytest.mark.browser
def test_an_admin_opens_the_quarantined_batch_sees_its_chart_and_approves_it(
        live_server, page, source, tmp_path, django_user_model, screenshots):
    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    batch = quarantined_batch(source, tmp_path)
    log_in(page, live_server.url, "admin", "admin-pass-123")
    page.wait_for_selector("#quarantine")
    page.screenshot(path=str(screenshots / "quality-home.png"), full_page=True)
    page.click(f"#quarantine a[href='/quality/batches/{batch.pk}/']")
    page.wait_for_selector("body[data-charts-drawn=yes]")
    assert page.inner_text("#status") == "Quarantined"
    assert "amount" in page.inner_text("#anomalies")
    assert page.locator("canvas").count() >= 2
    page.screenshot(path=str(screenshots / "quality-batch.png"), full_page=True)
    assert (screenshots / "quality-batch.png").stat().st_size > 10_000
    page.fill("#comment", "promo week, expected")
    page.click("button.approve")
    page.wait_for_selector(".message")
    assert page.inner_text("#status") == "Admitted"
    batch.refresh_from_db()
    assert batch.status == "admitted"
    last = batch.transitions.last()
    assert (last.actor, last.note) == ("user:admin", "approved: promo week, expected")


@pytest.mark.browser
def test_a_rater_is_refused_the_data_quality_pages(live_server, page, django_user_model):
    django_user_model.objects.create_user("rater", password="rater-pass-123")
    log_in(page, live_server.url, "rater", "rater-pass-123")
    assert "staff account" in page.inner_text("body")
    page.goto(f"{live_server.url}/quality/")
    assert "/admin/login/" in page.url
    assert "Quarantine queue" not in page.content()


def test_only_staff_reach_the_pages_and_the_raw_payload(client, admin_client, django_user_model, source, tmp_path):
    batch = quarantined_batch(source, tmp_path)
    assert client.get("/quality/").status_code == 302
    client.force_login(django_user_model.objects.create_user("viewer", password="pw-12345678"))
    assert client.get(f"/quality/batches/{batch.pk}/").status_code == 302
    assert client.post(f"/quality/batches/{batch.pk}/review", {"decision": "approve"}).status_code == 302
    batch.refresh_from_db()
    assert batch.status == "quarantined"
    home = admin_client.get("/quality/")
    assert home.status_code == 200 and f"#{batch.pk}" in home.content.decode()
    payload = admin_client.get(f"/quality/batches/{batch.pk}/payload")
    assert b"".join(payload.streaming_content) == data_path(batch.payload).read_bytes()


def test_reviewing_twice_in_the_page_says_why_not(admin_client, source, tmp_path):
    batch = quarantined_batch(source, tmp_path)
    admin_client.post(f"/quality/batches/{batch.pk}/review", {"decision": "reject"})
    page = admin_client.post(f"/quality/batches/{batch.pk}/review", {"decision": "approve"}, follow=True)
    assert "is rejected, not quarantined" in page.content.decode()


def test_a_batch_quarantined_for_want_of_a_baseline_can_become_the_baseline(admin_client, source, admin_user):
    from validation.models import AuditEntry, Baseline

    batch = collection.batch_receive(source=source, body=io.BytesIO(checkout_records(500)), fmt="ndjson",
                                     gzipped=False)[0]
    collection.batch_ingest(batch_id=batch.pk)
    services.batch_validate(batch_id=batch.pk)
    page = admin_client.get(f"/quality/batches/{batch.pk}/").content.decode()
    assert "Make this the baseline" in page
    answer = admin_client.post(f"/quality/batches/{batch.pk}/make-baseline", follow=True).content.decode()
    assert "is now baseline" in answer
    baseline = Baseline.objects.get(source=source)
    assert baseline.is_active and baseline.row_count == 500 and baseline.origin == "batches"
    batch.refresh_from_db()
    assert batch.status == "admitted"
    actions = list(AuditEntry.objects.order_by("id").values_list("actor", "action"))
    assert actions == [("user:admin", "baseline_created"), ("user:admin", "baseline_activated"),
                       ("user:admin", "batch_approved")]
    assert "Make this the baseline" not in admin_client.get(f"/quality/batches/{batch.pk}/").content.decode()


def test_the_audit_log_cannot_be_edited_from_the_admin(admin_client, source, admin_user):
    from validation.models import AuditEntry

    entry = AuditEntry.objects.create(actor="user:admin", action="batch_rejected", source=source)
    assert admin_client.get("/admin/validation/auditentry/").status_code == 200
    assert admin_client.post(f"/admin/validation/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get(f"/admin/validation/auditentry/{entry.pk}/change/").status_code == 200  # view only
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_a_batch_and_an_alert_show_their_history_in_the_admin(admin_client, source, tmp_path):
    from validation.models import Alert

    batch = quarantined_batch(source, tmp_path)
    page = admin_client.get(f"/admin/collection/batch/{batch.pk}/change/").content.decode()
    assert "task:validate" in page and "quarantined" in page
    alert = Alert.objects.get(source=source)
    assert admin_client.get(f"/admin/validation/alert/{alert.pk}/change/").status_code == 200


def drifting_days(batch, days: int) -> list:
    """A source's last `days` days as the validate step leaves them: a few batches a day, some
    quarantined, and each day's merged profile compared with the baseline by the engine; `amount`
    starts moving two thirds of the way through."""
    import datetime as dt

    import orjson
    import pandas as pd
    from django.utils import timezone

    from tests.validation.test_pages_selectors import make_batch
    from validation.models import DailyProfile, ValidationRun
    from validation.services import _json_safe
    from validation.stats import Profile, Schema, compare, profile_frame

    baseline = ValidationRun.objects.get(batch=batch).baseline
    reference, schema = Profile.from_json(baseline.profile), Schema.from_dict(baseline.schema)
    today = timezone.now().date()
    rows = []
    for i in range(days):
        day = today - dt.timedelta(days=days - i)
        shift = max(0.0, (i - days * 2 / 3) * 0.25)
        records = [orjson.loads(line) for line in checkout_records(300, shift=shift, seed=100 + i).splitlines()]
        frame = pd.DataFrame([{**r["features"], reference.spec.label: r["label"]} for r in records])
        profile = profile_frame(frame, spec=reference.spec)
        report = compare(profile, reference, schema=schema)
        for n in range(1 + i % 3):
            when = dt.datetime.combine(day, dt.time(8 + n), tzinfo=dt.timezone.utc)
            make_batch(batch.source, when, records=100 + 40 * n, verdict=report.verdict,
                       quarantined=report.verdict == "fail")
        rows.append(DailyProfile.objects.create(
            source=batch.source, baseline=baseline, day=day, profile=profile.to_json(), batch_count=1 + i % 3,
            row_count=300, metrics=_json_safe(report.to_dict())["metrics"], drifted=report.drifted_features))
    return rows


def chart_data(page, canvas_id: str) -> list[dict]:
    return page.evaluate("""(id) => Chart.getChart(document.getElementById(id)).data.datasets
        .map((d) => ({label: d.label, data: d.data}))""", canvas_id)


@pytest.mark.browser
def test_an_admin_sees_a_source_s_arrivals_volume_and_quarantine_rate(
        live_server, page, source, tmp_path, django_user_model, screenshots):
    import datetime

    from collection import services as collection_services

    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    collection_services.source_key_create(source=source, name="checkout web")
    source.expected_interval = datetime.timedelta(hours=6)
    source.save()
    batch = quarantined_batch(source, tmp_path)
    drifting_days(batch, 45)
    log_in(page, live_server.url, "admin", "admin-pass-123", next_url="/quality/sources/")
    page.click(f"#sources a[href='/quality/sources/{source.pk}/']")
    page.wait_for_selector("body[data-charts-drawn=yes]")
    arrivals = chart_data(page, "chart-batches")[0]["data"]
    assert len(arrivals) == 90 and sum(arrivals) == source.batches.count()
    rates = chart_data(page, "chart-rate")[0]["data"]
    assert any(r and r > 0 for r in rates) and all(r is None or 0 <= r <= 1 for r in rates)
    assert page.locator("#chart-records").bounding_box()["height"] > 50
    assert "checkout web" in page.inner_text("#keys")
    assert "On time" in page.inner_text("#freshness")
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.screenshot(path=str(screenshots / "source.png"))  # the top: health, charts, baselines, keys
    assert (screenshots / "source.png").stat().st_size > 10_000


@pytest.mark.browser
def test_an_admin_follows_a_batch_to_its_features_drift_and_sees_the_threshold_drawn(
        live_server, page, source, tmp_path, django_user_model, screenshots):
    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    batch = quarantined_batch(source, tmp_path)
    from validation.models import DailyProfile

    drifting_days(batch, 45)
    # The validate step may have merged the quarantined batch into today's profile as well.
    days = list(DailyProfile.objects.filter(source=source).order_by("day"))
    log_in(page, live_server.url, "admin", "admin-pass-123", next_url=f"/quality/batches/{batch.pk}/")
    page.click("#drift-link")
    page.wait_for_selector("body[data-charts-drawn=yes]")
    assert page.inner_text("#features tbody tr:first-child td:first-child") == "amount"
    metric, threshold = chart_data(page, "drift-chart")
    assert threshold["label"] == "threshold"
    assert threshold["data"] == pytest.approx([d.metrics["amount"]["wasserstein"]["threshold"] for d in days])
    assert metric["data"] == pytest.approx([d.metrics["amount"]["wasserstein"]["value"] for d in days])
    assert sum("amount" in d.drifted for d in days) >= 5
    assert page.locator("#drift-chart").bounding_box()["height"] > 100
    page.screenshot(path=str(screenshots / "drift.png"), full_page=True)
    assert (screenshots / "drift.png").stat().st_size > 10_000


def test_the_batch_page_shows_each_sketch_metrics_proven_bound(admin_client, source, tmp_path):
    """Issue 12: past the sketch's capacity (the 3,000-row reference) KS and Wasserstein carry their error bound,
    and the page shows it beside the value; an exact metric shows none."""
    batch = quarantined_batch(source, tmp_path)
    metrics = batch.validation.report["metrics"]["amount"]
    assert metrics["ks"]["error"] > 0 and metrics["wasserstein"]["error"] > 0
    assert metrics["ks"]["p_value"] is None  # one side is sketched: no p-value
    assert metrics["js"]["error"] is None
    html = admin_client.get(f"/quality/batches/{batch.pk}/charts").content.decode()
    caption = html[html.index("<figcaption", html.index("<h3>amount")):]
    caption = caption[:caption.index("</figcaption>")]
    assert f"± {metrics['ks']['error']:.4f}" in caption and "js 0." in caption and "± 0.0000" not in caption


@pytest.mark.parametrize("decision", [None, "APPROVE", "approved", "", "reject "])
def test_a_review_with_an_unknown_decision_is_refused_and_changes_nothing(admin_client, source, tmp_path, decision):
    batch = quarantined_batch(source, tmp_path)
    data = {"comment": "x"} if decision is None else {"decision": decision, "comment": "x"}
    answer = admin_client.post(f"/quality/batches/{batch.pk}/review", data)
    assert answer.status_code == 400
    assert "approve" in answer.content.decode() and "reject" in answer.content.decode()
    batch.refresh_from_db()
    assert batch.status == "quarantined"
    assert admin_client.post(f"/quality/batches/{batch.pk}/review", {"decision": "approve"}).status_code == 302
    batch.refresh_from_db()
    assert batch.status == "admitted"


def test_reviewing_a_missing_batch_is_a_404(admin_client, db):
    assert admin_client.post("/quality/batches/999999/review", {"decision": "reject"}).status_code == 404
    assert admin_client.post("/quality/batches/999999/review", {"decision": "approve"}).status_code == 404
    assert admin_client.post("/quality/batches/999999/make-baseline").status_code == 404


def test_a_failed_batch_is_listed_with_its_error_and_staff_retry_it_from_its_page(admin_client, source, settings):
    """Issue 13, item 1: failed batches show on the quality home page; the batch page has a Retry button."""
    settings.SIEVE_PIPELINE_MAX_FAILURES = 1
    batch = collection.batch_receive(source=source, body=io.BytesIO(checkout_records(5)), fmt="ndjson",
                                     gzipped=False)[0]
    payload = data_path(batch.payload)
    kept = payload.read_bytes()
    payload.unlink()
    with pytest.raises(FileNotFoundError):
        collection.batch_ingest(batch_id=batch.pk)
    home = admin_client.get("/quality/").content.decode()
    failed = home[home.index('<table id="failed">'):]
    assert f"#{batch.pk}" in failed[:failed.index("</table>")] and "FileNotFoundError" in failed
    page = admin_client.get(f"/quality/batches/{batch.pk}/").content.decode()
    assert 'id="retry"' in page and "ingest: FileNotFoundError" in page
    payload.write_bytes(kept)
    answer = admin_client.post(f"/quality/batches/{batch.pk}/retry", follow=True).content.decode()
    assert f"Batch {batch.pk} is queued again." in answer
    batch.refresh_from_db()
    assert batch.status == "received" and batch.transitions.last().actor == "user:admin"
    again = admin_client.post(f"/quality/batches/{batch.pk}/retry", follow=True).content.decode()
    assert "not failed" in again
