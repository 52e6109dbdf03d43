"""Editing a baseline's schema and thresholds: the effect on the last batch before saving, the
save and its audit entry, and refusals that name the setting."""
import pytest

from tests.conftest import log_in
from validation.forms import BaselineEditForm
from validation.models import AuditEntry, Baseline


def form_data(baseline, **changes) -> dict:
    """The POST the page sends when nothing is touched, with `changes` by feature and setting
    (`amount__max="30"`) or by field name."""
    form = BaselineEditForm(baseline=baseline)
    index = {name: i for i, (name, _) in enumerate(form.features)}
    data = {}
    for key, field in form.fields.items():
        value = field.initial
        if value is True:
            data[key] = "on"
        elif value not in (None, False):
            data[key] = str(value)
    for key, value in changes.items():
        if "__" in key:
            feature, setting = key.split("__")
            key = f"f{index[feature]}-{setting}"
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@pytest.fixture
def drifted(source, quarantined_batch):
    """A source whose active baseline has quarantined its last batch (amount moved by 2 std)."""
    return Baseline.objects.get(source=source, is_active=True), quarantined_batch


def test_the_page_shows_the_saved_settings_and_their_verdict_on_the_last_batch(admin_client, drifted):
    baseline, batch = drifted
    page = admin_client.get(f"/quality/baselines/{baseline.pk}/edit").content.decode()
    assert f"Effect on batch <a href=\"/quality/batches/{batch.pk}/\">#{batch.pk}</a>" in page
    assert "Saved settings: <span class=\"verdict fail\">fail</span> (quarantined)" in page
    assert 'data-feature="amount"' in page and 'data-feature="country"' in page
    # Every field of the form is on the page, so a save from the page keeps what it does not touch.
    form = BaselineEditForm(baseline=baseline)
    assert all(f'name="{key}"' in page for key in form.fields), [k for k in form.fields if f'name="{k}"' not in page]


def test_loosening_amount_shows_the_batch_would_pass_and_saves_nothing_until_asked(admin_client, drifted):
    baseline, batch = drifted
    before = (baseline.schema, baseline.thresholds)
    loose = form_data(baseline, amount__min="", amount__max="", amount__wasserstein="5", amount__js="0.9", preview="1")
    fragment = admin_client.post(f"/quality/baselines/{baseline.pk}/edit", loose, HTTP_HX_REQUEST="true")
    text = fragment.content.decode()
    assert "<html" not in text, "an htmx preview answers with the fragment only"
    assert "with your changes: <span class=\"verdict pass\">pass</span> (admitted)" in text
    assert "gone" in text and "amount" in text
    baseline.refresh_from_db()
    assert (baseline.schema, baseline.thresholds) == before
    assert not AuditEntry.objects.filter(action="baseline_edited").exists()


def test_saving_changes_the_baseline_and_audits_each_setting(admin_client, drifted, admin_user):
    baseline, _ = drifted
    data = form_data(baseline, amount__max="40", amount__wasserstein="0.5", save="1")
    answer = admin_client.post(f"/quality/baselines/{baseline.pk}/edit", data, follow=True).content.decode()
    assert "Saved 2 change(s)" in answer
    baseline.refresh_from_db()
    assert baseline.schema["features"]["amount"]["max"] == 40
    assert baseline.thresholds["per_feature"]["amount"] == {"wasserstein": 0.5}
    entry = AuditEntry.objects.get(action="baseline_edited")
    assert entry.actor == "user:admin" and entry.baseline_id == baseline.pk
    assert "schema.features.amount.max:" in entry.detail and "-> 40.0" in entry.detail
    assert "thresholds.per_feature.amount.wasserstein: None -> 0.5" in entry.detail
    # The validate step now enforces the edited settings: the next batch is judged under them.

    from tests.factories import batch_ingested, checkout_records
    from validation import services

    batch = batch_ingested(baseline.source, checkout_records(500, seed=5))
    run = services.batch_validate(batch_id=batch.pk).validation
    assert run.report["metrics"]["amount"]["wasserstein"]["threshold"] >= 0.5


def test_an_unchanged_form_saves_nothing(admin_client, drifted):
    baseline, _ = drifted
    answer = admin_client.post(f"/quality/baselines/{baseline.pk}/edit", form_data(baseline, save="1"), follow=True)
    assert "Nothing changed." in answer.content.decode()
    assert not AuditEntry.objects.filter(action="baseline_edited").exists()


def test_bad_settings_are_refused_with_the_feature_named_and_nothing_saved(admin_client, drifted):
    baseline, _ = drifted
    before = baseline.schema
    bad = form_data(baseline, amount__min="50", amount__max="3", save="1")
    page = admin_client.post(f"/quality/baselines/{baseline.pk}/edit", bad).content.decode()
    assert "amount max: 3 is below the min, 50" in page
    bad = form_data(baseline, amount__wasserstein="-1", preview="1")
    fragment = admin_client.post(f"/quality/baselines/{baseline.pk}/edit", bad, HTTP_HX_REQUEST="true").content.decode()
    assert "amount wasserstein: Ensure this value is greater than or equal to 0." in fragment
    baseline.refresh_from_db()
    assert baseline.schema == before


def test_a_save_over_a_newer_save_is_refused(admin_client, drifted):
    baseline, _ = drifted
    stale = form_data(baseline, amount__max="40", save="1")
    admin_client.post(f"/quality/baselines/{baseline.pk}/edit", form_data(baseline, amount__max="30", save="1"))
    page = admin_client.post(f"/quality/baselines/{baseline.pk}/edit", stale).content.decode()
    assert "Someone saved this baseline after you opened it" in page
    baseline.refresh_from_db()
    assert baseline.schema["features"]["amount"]["max"] == 30


def test_a_baseline_no_batch_was_checked_against_says_so(admin_client, source, tmp_path):
    from tests.factories import baseline_from_records, checkout_records

    baseline = baseline_from_records(source, tmp_path, checkout_records(500))
    page = admin_client.get(f"/quality/baselines/{baseline.pk}/edit").content.decode()
    assert "No batch has been validated against this baseline yet" in page


def test_only_staff_edit_baselines(client, django_user_model, drifted):
    baseline, _ = drifted
    client.force_login(django_user_model.objects.create_user("rater", password="pw-12345678"))
    assert client.get(f"/quality/baselines/{baseline.pk}/edit").status_code == 302
    assert client.post(f"/quality/baselines/{baseline.pk}/edit",
                       form_data(baseline, amount__max="99", save="1")).status_code == 302
    baseline.refresh_from_db()
    assert baseline.schema["features"]["amount"]["max"] != 99


@pytest.mark.browser
def test_an_admin_sees_the_effect_of_a_threshold_as_they_type_and_saves_it(live_server, page, django_user_model,
                                                                           drifted, screenshots):
    baseline, batch = drifted
    django_user_model.objects.create_superuser("boss", "b@example.com", "boss-pass-123")
    log_in(page, live_server.url, "boss", "boss-pass-123", next_url=f"/quality/batches/{batch.pk}/")
    page.click("#baseline-edit-link")
    page.wait_for_selector("#effect-verdict")
    assert page.url.endswith(f"/quality/baselines/{baseline.pk}/edit")
    assert "(quarantined)" in page.inner_text("#effect-verdict")
    row = page.locator("tr[data-feature=amount]")
    row.locator("input[name$=-min]").fill("")
    row.locator("input[name$=-max]").fill("")
    row.locator("input[name$=-wasserstein]").fill("5")
    row.locator("input[name$=-js]").fill("0.9")
    row.locator("input[name$=-js]").dispatch_event("change")
    page.wait_for_function("document.querySelector('#effect-verdict').innerText.includes('pass (admitted)')")
    assert "gone" in page.inner_text("#effect-anomalies")
    page.screenshot(path=str(screenshots / "baseline-edit.png"), full_page=True)
    page.click("#save")
    page.wait_for_selector(".message")
    assert "Saved 4 change(s)" in page.inner_text(".message"), AuditEntry.objects.get(action="baseline_edited").detail
    baseline.refresh_from_db()
    assert baseline.thresholds["per_feature"]["amount"]["wasserstein"] == 5


@pytest.mark.django_db(transaction=True)
def test_two_editors_saving_the_same_version_at_once_make_one_save_and_one_refusal(source, quarantined_batch,
                                                                                   admin_user):
    """Issue 13, item 9: the digest was checked by the form and the write was an unconditional UPDATE, so two
    editors racing past the check both 'succeeded' and the first edit was lost. Now the service locks the row and
    checks the digest in the transaction that writes."""
    import threading

    from django.db import connection

    from validation import services
    from validation.stats import Schema, Thresholds

    baseline = Baseline.objects.get(source=source, is_active=True)
    seen = services.baseline_digest(baseline)
    start, outcomes = threading.Barrier(2), []

    def edit(maximum: float) -> None:
        try:
            schema = Schema.from_dict(baseline.schema)
            schema.features["amount"].max = maximum
            start.wait()
            services.baseline_edit(baseline=Baseline.objects.get(pk=baseline.pk), schema=schema,
                                   thresholds=Thresholds.from_dict(baseline.thresholds or {}), by=admin_user,
                                   seen=seen)
            outcomes.append(("saved", maximum))
        except services.BaselineConflict:
            outcomes.append(("refused", maximum))
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(m,)) for m in (30.0, 40.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(kind for kind, _ in outcomes) == ["refused", "saved"]
    winner = next(m for kind, m in outcomes if kind == "saved")
    baseline.refresh_from_db()
    assert baseline.schema["features"]["amount"]["max"] == winner
    assert AuditEntry.objects.filter(action="baseline_edited", baseline_id=baseline.pk).count() == 1
