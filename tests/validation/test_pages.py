"""The sources, source, drift and batch-chart pages: who may see them, what they show, and their pages."""
import datetime as dt
import json
import re

import pytest
from django.utils import timezone

from collection import services as collection
from collection.models import Source
from tests.factories import at, engine_run, make_baseline, make_batch, make_day
from validation.models import AuditEntry, Baseline, DailyProfile, ValidationRun
from validation.services import source_policy_set


def json_data(html: str, element_id: str):
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


@pytest.fixture
def today():
    return timezone.now().date()


def page_urls(source, batch) -> list[str]:
    return ["/quality/sources/", f"/quality/sources/{source.pk}/", f"/quality/sources/{source.pk}/drift/",
            f"/quality/batches/{batch.pk}/charts"]


def test_only_staff_see_the_pages_and_activate_a_baseline(client, django_user_model, source):
    old = make_baseline(source, active=False)
    make_baseline(source)
    run = engine_run(Source.objects.create(name="wide", kind="app"), features=3)
    urls = page_urls(source, run.batch)
    for url in urls:
        assert client.get(url).status_code == 302, url
    client.force_login(django_user_model.objects.create_user("rater", password="pw-12345678"))
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 302 and "/accounts/login/" in answer["Location"], url
    client.post(f"/quality/sources/{source.pk}/baselines/{old.pk}/activate")
    old.refresh_from_db()
    assert not old.is_active and not AuditEntry.objects.exists()


def test_the_sources_list_shows_each_source_with_its_health_a_page_at_a_time(admin_client, source):
    make_batch(source, timezone.now() - dt.timedelta(days=1), records=12, verdict="fail", quarantined=True)
    Source.objects.bulk_create([Source(name=f"s{i:02d}", kind="service") for i in range(50)])
    first = admin_client.get("/quality/sources/").content.decode()
    assert 'href="/quality/sources/%d/"' % source.pk in first
    assert "100% " in first and "(1 of 1)" in first
    assert "Page 1 of 2" in first and "s48" in first and "s49" not in first
    second = admin_client.get("/quality/sources/?page=2").content.decode()
    assert "s49" in second and "checkout-app" not in second


def test_the_source_page_shows_activity_freshness_policy_keys_baselines_and_batches(admin_client, source, today):
    source.expected_interval = dt.timedelta(hours=1)
    source.save()
    source_policy_set(source=source, quarantine_on="warn")
    key, raw = collection.source_key_create(source=source, name="ios app")
    old = make_baseline(source, active=False, when=timezone.now() - dt.timedelta(days=30))
    active = make_baseline(source)
    make_batch(source, at(today - dt.timedelta(days=2)), records=5, verdict="pass")
    make_batch(source, at(today - dt.timedelta(days=2), 13), records=6, verdict="warn", quarantined=True)
    make_batch(source, at(today - dt.timedelta(days=400)), records=9, verdict="pass")  # outside the 90 days

    html = admin_client.get(f"/quality/sources/{source.pk}/").content.decode()

    activity = json_data(html, "source-days")
    assert len(activity["days"]) == 90 and activity["days"][-1]["day"] == today.isoformat()
    assert activity["totals"] == {"batches": 2, "records": 11, "validated": 2, "quarantined": 1, "rate": 0.5}
    assert activity["days"][-3] == {"day": (today - dt.timedelta(days=2)).isoformat(), "batches": 2, "records": 11,
                                    "validated": 2, "quarantined": 1, "rate": 0.5}
    assert "Silent" in html and "Warnings and errors" in html and "50% " in html
    assert key.prefix in html and "ios app" in html
    assert raw not in html and key.hashed not in html
    assert f'/quality/sources/{source.pk}/baselines/{old.pk}/activate' in html
    assert f'/quality/sources/{source.pk}/baselines/{active.pk}/activate' not in html
    assert f'href="/quality/sources/{source.pk}/drift/"' in html
    ranged = admin_client.get(f"/quality/sources/{source.pk}/?from={today - dt.timedelta(days=500)}&to={today}")
    assert json_data(ranged.content.decode(), "source-days")["totals"]["batches"] == 3


def test_the_source_page_lists_its_batches_fifty_at_a_time(admin_client, source):
    start = timezone.now() - dt.timedelta(days=1)
    batches = [make_batch(source, start + dt.timedelta(minutes=i)) for i in range(51)]
    first = admin_client.get(f"/quality/sources/{source.pk}/").content.decode()
    assert f"#{batches[-1].pk}<" in first and f"#{batches[0].pk}<" not in first
    second = admin_client.get(f"/quality/sources/{source.pk}/?page=2").content.decode()
    assert f"#{batches[0].pk}<" in second and f"#{batches[1].pk}<" not in second


def test_activating_an_older_baseline_is_audited(admin_client, source):
    old = make_baseline(source, active=False)
    current = make_baseline(source)
    answer = admin_client.post(f"/quality/sources/{source.pk}/baselines/{old.pk}/activate", follow=True)
    assert f"Baseline {old.pk} is now the active baseline" in answer.content.decode()
    old.refresh_from_db()
    current.refresh_from_db()
    assert old.is_active and not current.is_active
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.baseline_id) == ("user:admin", "baseline_activated", old.pk)
    assert admin_client.get(f"/quality/sources/{source.pk}/baselines/{old.pk}/activate").status_code == 405
    other = Source.objects.create(name="other", kind="app")
    assert admin_client.post(f"/quality/sources/{other.pk}/baselines/{old.pk}/activate").status_code == 404


def test_the_drift_page_charts_the_worst_feature_against_its_threshold(admin_client, source, today):
    baseline = make_baseline(source)
    for i in range(4):
        make_day(baseline, today - dt.timedelta(days=i), amount=0.2 - 0.05 * i,
                 drifted=["amount"] if i < 2 else [], country=0.3 if i == 3 else 0.0)

    html = admin_client.get(f"/quality/sources/{source.pk}/drift/").content.decode()

    series = json_data(html, "drift-series")
    assert (series["feature"], series["metric"]) == ("amount", "wasserstein")
    assert series["thresholds"] == [0.1] * 4 and series["drifted"] == [False, False, True, True]
    assert series["values"] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    rows = re.findall(r'<tr(?: class="current")?>\s*<td><a href="[^"]*">([^<]+)</a></td>', html)
    assert rows == ["amount", "country", "label"]
    country = json_data(admin_client.get(f"/quality/sources/{source.pk}/drift/?feature=country").content.decode(),
                        "drift-series")
    assert (country["metric"], country["values"][0]) == ("linf", 0.3)  # the engine decides on L-infinity first
    js = admin_client.get(f"/quality/sources/{source.pk}/drift/?feature=country&metric=js").content.decode()
    assert json_data(js, "drift-series")["metric"] == "js"
    bogus = admin_client.get(f"/quality/sources/{source.pk}/drift/?feature=nope&metric=nope").content.decode()
    assert json_data(bogus, "drift-series")["feature"] == "amount"


def test_the_drift_page_reads_the_chosen_baseline_and_range(admin_client, source, today):
    old = make_baseline(source, active=False, when=timezone.now() - dt.timedelta(days=200))
    active = make_baseline(source)
    make_day(old, today - dt.timedelta(days=150), amount=0.9, drifted=["amount"])
    make_day(active, today, amount=0.01)
    default = admin_client.get(f"/quality/sources/{source.pk}/drift/").content.decode()
    assert json_data(default, "drift-series")["values"] == [0.01]
    chosen = admin_client.get(f"/quality/sources/{source.pk}/drift/?baseline={old.pk}").content.decode()
    # 150 days ago is outside the last 90.
    assert "No daily profile in this range" in chosen and 'id="drift-series"' not in chosen
    ranged = admin_client.get(f"/quality/sources/{source.pk}/drift/?baseline={old.pk}"
                              f"&from={today - dt.timedelta(days=365)}&to={today}").content.decode()
    assert json_data(ranged, "drift-series")["values"] == [0.9]
    assert re.search(rf'<option value="{old.pk}" selected>', ranged)


def test_the_drift_page_lists_features_a_hundred_at_a_time(admin_client, source, today):
    schema = {"version": 1, "label": None, "features": {f"f{i:03d}": {"kind": "numeric"} for i in range(150)}}
    baseline = make_baseline(source, schema=schema)
    DailyProfile.objects.create(source=source, baseline=baseline, day=today, profile="{}", drifted=["f149"],
                                metrics={"f149": {"wasserstein": {"value": 0.5, "threshold": 0.1, "p_value": None}}})
    first = admin_client.get(f"/quality/sources/{source.pk}/drift/").content.decode()
    assert first.count("<td>numeric</td>") == 100 and "Page 1 of 2" in first
    assert first.index(">f149<") < first.index(">f000<")  # worst first
    second = admin_client.get(f"/quality/sources/{source.pk}/drift/?page=2").content.decode()
    assert second.count("<td>numeric</td>") == 50 and ">f149<" not in second.split("<table")[1]


def test_a_source_without_a_baseline_has_no_drift_to_show(admin_client, source):
    html = admin_client.get(f"/quality/sources/{source.pk}/drift/").content.decode()
    assert "has no baseline yet" in html


def test_the_batch_page_loads_its_feature_charts_a_page_at_a_time_flagged_first(admin_client, source):
    run = engine_run(source, features=30)
    flagged = sorted(set(run.anomalies.values_list("feature", flat=True)))
    page = admin_client.get(f"/quality/batches/{run.batch_id}/").content.decode()
    assert "<canvas" not in page and f'hx-get="/quality/batches/{run.batch_id}/charts"' in page
    assert f'/quality/sources/{source.pk}/drift/?baseline={run.baseline_id}' in page

    first = admin_client.get(f"/quality/batches/{run.batch_id}/charts").content.decode()
    charts = json_data(first, "batch-charts-1")
    assert len(charts) == first.count("<canvas") == 12
    assert [c["feature"] for c in charts[:len(flagged)]] == flagged and all(c["flagged"] for c in charts[:len(flagged)])
    assert f'hx-get="/quality/batches/{run.batch_id}/charts?page=2"' in first
    last = admin_client.get(f"/quality/batches/{run.batch_id}/charts?page=3").content.decode()
    assert len(json_data(last, "batch-charts-3")) == 6 and "More features" not in last


def test_the_batch_page_pages_its_anomalies(admin_client, source):
    from validation.models import Anomaly

    batch = make_batch(source, timezone.now(), verdict="fail", quarantined=True)
    run = ValidationRun.objects.get(batch=batch)
    Anomaly.objects.bulk_create([Anomaly(run=run, kind="out_of_range", feature=f"f{i:03d}", severity="error")
                                 for i in range(130)])
    first = admin_client.get(f"/quality/batches/{batch.pk}/").content.decode()
    assert "Anomalies (130)" in first and first.count("<td>out_of_range</td>") == 100
    second = admin_client.get(f"/quality/batches/{batch.pk}/?anomalies=2").content.decode()
    assert second.count("<td>out_of_range</td>") == 30


def test_the_quarantine_queue_is_paged(admin_client, source):
    start = timezone.now() - dt.timedelta(days=1)
    batches = [make_batch(source, start + dt.timedelta(minutes=i), verdict="fail", quarantined=True) for i in range(51)]
    first = admin_client.get("/quality/").content.decode()
    assert "Page 1 of 2" in first and f"#{batches[0].pk}<" not in first
    second = admin_client.get("/quality/?page=2").content.decode()
    assert f"#{batches[0].pk}<" in second and f"#{batches[1].pk}<" not in second


def test_a_baseline_of_another_source_is_not_listed(admin_client, source):
    other = Source.objects.create(name="other", kind="app")
    theirs = make_baseline(other)
    html = admin_client.get(f"/quality/sources/{source.pk}/").content.decode()
    assert f"/baselines/{theirs.pk}/" not in html and Baseline.objects.count() == 1


def test_the_open_alerts_are_paged(admin_client):
    from validation.models import Alert

    sources = Source.objects.bulk_create([Source(name=f"s{i:02d}", kind="app") for i in range(51)])
    now = timezone.now()
    Alert.objects.bulk_create([Alert(source=s, kind="silent_source", message=f"quiet {s.name}",
                                     last_seen_at=now - dt.timedelta(minutes=i)) for i, s in enumerate(sources)])
    Alert.objects.create(source=sources[0], kind="warn", message="closed", resolved_at=now)
    first = admin_client.get("/quality/").content.decode()
    assert "quiet s00" in first and "quiet s50" not in first and "closed" not in first
    second = admin_client.get("/quality/?alerts=2").content.decode()
    assert "quiet s50" in second and "quiet s49" not in second


def test_a_range_longer_than_two_years_keeps_its_last_731_days(admin_client, source, today):
    html = admin_client.get(f"/quality/sources/{source.pk}/?from=2000-01-01&to={today}").content.decode()
    days = json_data(html, "source-days")["days"]
    assert len(days) == 731 and days[-1]["day"] == today.isoformat()
    swapped = admin_client.get(f"/quality/sources/{source.pk}/?from={today}&to={today - dt.timedelta(days=9)}")
    assert len(json_data(swapped.content.decode(), "source-days")["days"]) == 10
    garbled = admin_client.get(f"/quality/sources/{source.pk}/?from=yesterday&to=2026-13-45")
    assert len(json_data(garbled.content.decode(), "source-days")["days"]) == 90


def test_a_new_source_s_page_says_what_is_missing(admin_client, source):
    html = admin_client.get(f"/quality/sources/{source.pk}/").content.decode()
    assert "No baseline yet" in html and "No key" in html and "No batch yet" in html
    assert "no batch yet" in html and "no expected interval" in html
