"""The data-quality pages: what an admin sees and does in a real browser, and who is kept out."""
import pytest

from collection import services as collection
from collection.storage import data_path
from tests import factories
from tests.conftest import log_in
from tests.factories import checkout_records
from validation import services


@pytest.mark.browser
def test_an_admin_opens_the_quarantined_batch_sees_its_chart_and_approves_it(
        live_server, page, quarantined_batch, django_user_model, screenshots):
    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    batch = quarantined_batch
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
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "rater")
    page.fill("#id_password", "rater-pass-123")
    page.click("#sign-in")
    page.wait_for_url(f"{live_server.url}/label/")
    page.goto(f"{live_server.url}/quality/")
    # Sieve's own sign-in, saying why, not the Django admin's "authenticated as ..., but not authorized".
    assert page.url == f"{live_server.url}/accounts/login/?next=/quality/"
    assert "This page is for staff; you are signed in as rater." in page.inner_text("main")
    assert page.locator("#login-form").count() == 1 and "Quarantine queue" not in page.content()


def test_a_rater_on_a_staff_page_gets_the_sign_in_page_with_a_message(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("kim", password="kim-pass-123"))
    answer = client.get("/quality/sources/", follow=True)
    assert answer.redirect_chain == [("/accounts/login/?next=/quality/sources/", 302)]
    assert answer.templates[0].name == "registration/login.html"
    assert "This page is for staff; you are signed in as kim." in answer.content.decode()


def test_an_anonymous_visitor_on_a_staff_page_signs_in_and_lands_there(client, django_user_model):
    answer = client.get("/quality/")
    assert (answer.status_code, answer.url) == (302, "/accounts/login/?next=/quality/")
    django_user_model.objects.create_superuser("ada", "ada@example.com", "ada-pass-123")
    signed_in = client.post("/accounts/login/?next=/quality/", {"username": "ada", "password": "ada-pass-123",
                                                                 "next": "/quality/"})
    assert (signed_in.status_code, signed_in.url) == (302, "/quality/")


def test_only_staff_reach_the_pages_and_the_raw_payload(client, admin_client, django_user_model, quarantined_batch):
    batch = quarantined_batch
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


def test_reviewing_twice_in_the_page_says_why_not(admin_client, quarantined_batch):
    batch = quarantined_batch
    admin_client.post(f"/quality/batches/{batch.pk}/review", {"decision": "reject"})
    page = admin_client.post(f"/quality/batches/{batch.pk}/review", {"decision": "approve"}, follow=True)
    assert "is rejected, not quarantined" in page.content.decode()


def test_a_batch_quarantined_for_want_of_a_baseline_can_become_the_baseline(admin_client, source, admin_user):
    from validation.models import AuditEntry, Baseline

    batch = factories.batch_ingested(source, checkout_records(500))
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


def test_a_batch_and_an_alert_show_their_history_in_the_admin(admin_client, source, quarantined_batch):
    from validation.models import Alert

    batch = quarantined_batch
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

    from tests.factories import make_batch
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
    batch = factories.quarantined_batch(source, tmp_path)
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
        live_server, page, source, quarantined_batch, django_user_model, screenshots):
    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    batch = quarantined_batch
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


def test_the_batch_page_shows_each_sketch_metrics_proven_bound(admin_client, quarantined_batch):
    """Issue 12: past the sketch's capacity (the 3,000-row reference) KS and Wasserstein carry their error bound,
    and the page shows it beside the value; an exact metric shows none."""
    batch = quarantined_batch
    metrics = batch.validation.report["metrics"]["amount"]
    assert metrics["ks"]["error"] > 0 and metrics["wasserstein"]["error"] > 0
    assert metrics["ks"]["p_value"] is None  # one side is sketched: no p-value
    assert metrics["js"]["error"] is None
    html = admin_client.get(f"/quality/batches/{batch.pk}/charts").content.decode()
    caption = html[html.index("<figcaption", html.index("<h3>amount")):]
    caption = caption[:caption.index("</figcaption>")]
    assert f"± {metrics['ks']['error']:.4f}" in caption and "js 0." in caption and "± 0.0000" not in caption


@pytest.mark.parametrize("decision", [None, "APPROVE", "approved", "", "reject "])
def test_a_review_with_an_unknown_decision_is_refused_and_changes_nothing(admin_client, quarantined_batch, decision):
    batch = quarantined_batch
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
    batch = factories.batch_received(source, checkout_records(5))
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


def test_a_categorical_feature_s_drift_chart_shows_the_engine_s_deciding_metric_with_its_threshold(
        admin_client, source):
    """The chart draws what the engine decides on: L-infinity for categories, not Jensen-Shannon."""
    import datetime as dt

    import pandas as pd
    from django.utils import timezone

    from validation.models import Baseline, DailyProfile
    from validation.services import report_json
    from validation.stats import Schema, compare, infer_schema, profile_frame
    from validation.stats.thresholds import DECIDING, METRICS

    reference = profile_frame(pd.DataFrame({"country": ["DE", "FR", "IT", "ES"] * 500}))
    baseline = Baseline.objects.create(source=source, origin="file", profile=reference.to_json(),
                                       schema=infer_schema(reference).to_dict(), is_active=True, row_count=2000)
    moved = profile_frame(pd.DataFrame({"country": ["DE"] * 800 + ["FR", "IT", "ES"] * 400}), spec=reference.spec)
    report = compare(moved, reference, schema=Schema.from_dict(baseline.schema))
    day = timezone.now().date() - dt.timedelta(days=1)
    DailyProfile.objects.create(source=source, baseline=baseline, day=day, profile=moved.to_json(), batch_count=1,
                                row_count=2000, metrics=report_json(report)["metrics"],
                                drifted=report.drifted_features)

    context = admin_client.get(f"/quality/sources/{source.pk}/drift/?feature=country").context

    assert DECIDING["categorical"][0] == "linf"
    assert context["metric_choices"][0] == "linf"
    series = context["series"]
    assert series["metric"] == "linf"
    linf = report.metrics["country"]["linf"]
    assert series["values"] == [linf.value] and series["thresholds"] == [linf.threshold]
    assert series["thresholds"][0] >= METRICS["linf"][0]
    assert series["drifted"] == ["country" in report.drifted_features]
    assert [row["metric"] for row in context["features"].object_list] == ["linf"]


@pytest.mark.browser
def test_a_new_source_shows_counts_with_separators_no_lone_bar_and_a_lone_drift_day_with_its_threshold(
        live_server, page, source, django_user_model):
    from django.utils import timezone

    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    now = timezone.now()
    factories.make_batch(source, now, records=12_345, verdict="fail", quarantined=True)
    factories.make_day(factories.make_baseline(source), now.date(), amount=0.3, drifted=["amount"])
    log_in(page, live_server.url, "admin", "admin-pass-123", next_url=f"/quality/sources/{source.pk}/")
    page.wait_for_selector("body[data-charts-drawn=yes]")
    assert "12,345\nrecords" in page.inner_text("section.counts")
    # One day of batches on a 90-day axis would be a lone bar at the edge: each chart says so instead.
    notes = page.locator(".trends .chart-empty")
    assert notes.count() == 3 and page.locator("canvas[data-source-chart]").count() == 0
    assert f"Only {now.date().isoformat()} has batches so far (1 batch(es), 12,345 records)" in notes.first.inner_text()
    page.goto(f"{live_server.url}/quality/sources/{source.pk}/drift/?feature=amount&metric=wasserstein")
    page.wait_for_selector("body[data-charts-drawn=yes]")
    metric, threshold = chart_data(page, "drift-chart")
    # The lone day sits in the middle, its threshold drawn across the chart.
    assert metric["data"] == [None, 0.3, None] and threshold["data"] == [0.1, 0.1, 0.1]
