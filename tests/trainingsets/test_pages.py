"""The training-set pages: the list, a set's page (policy in words, versions with live progress, publish, the
policy form), a version's page (manifest, label chart, gate report with charts, decision, baseline, diff,
downloads, erasure warning and rebuild, lineage); who sees what; and the same in a real browser."""
import hashlib
import re

import pytest
from django.contrib.auth.models import Group

from tests.conftest import start_web, wait_for
from tests.factories import admitted_batch, build, checkout_rows, settle
from trainingsets.identity import record_identity
from trainingsets.models import Erasure, TrainingSet, TrainingSetVersion
from trainingsets.services import trainingset_update, version_request

PASSWORD = "pages-pass-123"


@pytest.fixture
def people(django_user_model, labeled_set):
    """Staff, the set's owner, a reader (through a reader group) and an outsider, all with PASSWORD."""
    group = Group.objects.create(name="ml-team")
    labeled_set.reader_groups.add(group)
    made = {
        "staff": django_user_model.objects.create_user("staff", password=PASSWORD, is_staff=True, is_superuser=True),
        "owner": django_user_model.objects.create_user("owner", password=PASSWORD),
        "reader": django_user_model.objects.create_user("reader", password=PASSWORD),
        "outsider": django_user_model.objects.create_user("outsider", password=PASSWORD),
    }
    made["reader"].groups.add(group)
    TrainingSet.objects.filter(pk=labeled_set.pk).update(owner=made["owner"])
    labeled_set.refresh_from_db()
    return made


def as_user(client, user):
    client.force_login(user)
    return client


def text(answer) -> str:
    return answer.content.decode()


def set_url(training_set) -> str:
    return f"/training-sets/{training_set.pk}/"


def version_url(version) -> str:
    return f"/training-sets/{version.training_set_id}/versions/{version.number}/"


# --- who sees what


def test_an_outsider_gets_404_on_every_page_and_action_of_a_set(client, people, built_version):
    as_user(client, people["outsider"])
    base = set_url(built_version.training_set)
    for url in [base, version_url(built_version), f"{version_url(built_version)}progress",
                f"{version_url(built_version)}lineage?external_id=r1", f"{version_url(built_version)}gate/0/charts"]:
        assert client.get(url).status_code == 404, url
    for url in [f"{base}publish", f"{version_url(built_version)}decide", f"{version_url(built_version)}rebuild",
                f"{version_url(built_version)}make-baseline"]:
        assert client.post(url, {"comment": "x", "decision": "approve"}).status_code == 404, url
    page = text(client.get("/training-sets/"))
    assert built_version.training_set.name not in page and "No training set is shared with you yet." in page
    assert TrainingSetVersion.objects.count() == 1


def test_a_signed_out_visitor_is_sent_to_sign_in(client, built_version):
    answer = client.get(set_url(built_version.training_set))
    assert answer.status_code == 302 and answer.url.startswith("/accounts/login/")


def test_a_reader_sees_the_set_and_its_versions_but_cannot_publish_or_decide(client, people, built_version):
    as_user(client, people["reader"])
    listed = text(client.get("/training-sets/"))
    assert built_version.training_set.name in listed and 'id="new-set"' not in listed
    assert 'href="/training-sets/">Training sets</a>' in listed  # the nav shows readers their sets
    page = text(client.get(set_url(built_version.training_set)))
    assert 'id="v1"' in page and 'id="publish"' not in page and 'id="edit-set"' not in page
    assert client.post(f"{set_url(built_version.training_set)}publish").status_code == 403
    assert client.post(f"{version_url(built_version)}make-baseline").status_code == 403
    version = text(client.get(version_url(built_version)))
    assert 'id="downloads"' in version and 'id="make-baseline"' not in version
    assert TrainingSetVersion.objects.count() == 1


def test_the_owner_publishes_but_does_not_decide(client, people, labeled_set):
    as_user(client, people["owner"])
    page = text(client.get(set_url(labeled_set)))
    assert 'id="publish"' in page and 'id="edit-set"' in page  # the owner edits the policy, as the API lets them
    answer = client.post(f"{set_url(labeled_set)}publish", {"comment": "first cut", "key": "k1"})
    assert answer.status_code == 302 and answer.url == f"{set_url(labeled_set)}#v1"
    client.post(f"{set_url(labeled_set)}publish", {"comment": "first cut", "key": "k1"})  # the same form, resent
    version = TrainingSetVersion.objects.get(training_set=labeled_set)
    assert (version.status, version.comment, version.created_by) == ("queued", "first cut", people["owner"])


def test_staff_see_the_nav_link_and_the_new_set_form(admin_client, labeled_set):
    page = text(admin_client.get("/training-sets/"))
    assert 'href="/training-sets/">Training sets</a>' in page and 'id="new-set"' in page


def test_the_django_admin_lists_sets_versions_and_erasures_read_only(admin_client, built_version):
    for model in ("trainingset", "trainingsetversion", "erasure"):
        listed = admin_client.get(f"/admin/trainingsets/{model}/")
        assert listed.status_code == 200 and f"/admin/trainingsets/{model}/add/" not in text(listed), model
    version = text(admin_client.get(f"/admin/trainingsets/trainingsetversion/{built_version.pk}/change/"))
    assert built_version.content_sha256 in version and 'name="_save"' not in version
    training_set = text(admin_client.get(f"/admin/trainingsets/trainingset/{built_version.training_set_id}/change/"))
    assert 'name="reader_groups"' in training_set and 'name="split_fractions"' not in training_set


# --- the list and a new set


def test_the_list_shows_each_set_with_its_latest_version_status_and_rows(admin_client, built_version, labeled_set):
    version_request(training_set=labeled_set)
    page = text(admin_client.get("/training-sets/"))
    row = re.search(rf'<tr data-set="{labeled_set.pk}">.*?</tr>', page, re.S).group(0)
    assert ">v2<" in row and "Queued" in row and "checkout-app" in row


def test_staff_create_a_set_and_a_refusal_shows_on_its_field(admin_client, source, project):
    form = {"new-name": "fraud-train", "new-description": "Orders for the fraud model", "new-sources": [source.pk],
            "new-projects": [project.pk], "new-use_gold": "on", "new-use_consensus": "on", "new-min_confidence": "0.8",
            "new-unlabeled": "drop", "new-split_kind": "random", "new-split_fractions": "train 0.8, test 0.3",
            "new-formats": ["parquet", "csv"], "new-gate_on": "fail"}
    refused = admin_client.post("/training-sets/", form)
    assert refused.status_code == 400
    field = re.search(r'<div class="field invalid" id="field-new-split_fractions">.*?</div>', text(refused), re.S)
    assert field and "add up to 1.1, not 1" in field.group(0)
    assert not TrainingSet.objects.exists()
    answer = admin_client.post("/training-sets/", {**form, "new-split_fractions": "train 0.8, test: 0.2"})
    made = TrainingSet.objects.get(name="fraud-train")
    assert answer.status_code == 302 and answer.url == set_url(made)
    assert made.split_fractions == [["train", 0.8], ["test", 0.2]] and made.formats == ["parquet", "csv"]
    assert (made.min_confidence, made.use_adjudicated, made.owner.username) == (0.8, False, "admin")
    assert list(made.projects.all()) == [project]
    page = text(admin_client.get(set_url(made)))
    assert "Random: train 80 %, test 20 %, by a keyed hash of source and external id" in page
    assert "consensus at confidence 0.80 or more" in page and "left out" in page


def test_a_time_rule_s_cutoffs_are_read_as_typed(admin_client, source):
    answer = admin_client.post("/training-sets/", {
        "new-name": "by-time", "new-sources": [source.pk], "new-min_confidence": "0.7", "new-unlabeled": "keep",
        "new-split_kind": "time", "new-split_cutoffs": "train 2026-01-02, test", "new-formats": ["parquet"],
        "new-gate_on": "warn"})
    assert answer.status_code == 302
    made = TrainingSet.objects.get(name="by-time")
    assert made.split_cutoffs == [["train", "2026-01-02"], ["test", None]]
    assert "observed before 2026-01-02 → train; later → test" in text(admin_client.get(set_url(made)))


# --- the set's page


def test_the_split_rule_is_fixed_once_a_version_is_published_and_the_form_says_why(admin_client, built_version):
    training_set = built_version.training_set
    page = text(admin_client.get(set_url(training_set)))
    assert 'id="split-locked"' in page
    assert re.search(r'<input type="text" name="edit-split_fractions"[^>]*disabled', page)
    answer = admin_client.post(set_url(training_set), {
        "edit-sources": [s.pk for s in training_set.sources.all()], "edit-min_confidence": "0.95",
        "edit-unlabeled": "keep", "edit-split_kind": "time", "edit-split_fractions": "train 0.5, test 0.5",
        "edit-formats": ["parquet"], "edit-gate_on": "fail", "edit-use_consensus": "on"})
    assert answer.status_code == 302
    training_set.refresh_from_db()
    assert (training_set.min_confidence, training_set.unlabeled) == (0.95, "keep")
    assert training_set.split_kind == "random" and training_set.split_fractions == [["train", 0.8], ["validation", 0.1],
                                                                                    ["test", 0.1]]


def test_the_set_page_lists_versions_with_status_rows_gate_hash_and_author(admin_client, built_version):
    page = text(admin_client.get(set_url(built_version.training_set)))
    row = re.search(r'<tr id="v1".*?</tr>', page, re.S).group(0)
    assert "Published" in row and ">60<" in row and built_version.content_sha256[:12] in row
    assert "hx-trigger" not in row  # an ended version is not polled


def test_a_building_version_polls_its_progress_until_it_ends(admin_client, labeled_set):
    from django.core.cache import cache

    from trainingsets.services.versions import PROGRESS_KEY, version_build

    version = version_request(training_set=labeled_set)
    TrainingSetVersion.objects.filter(pk=version.pk).update(status="building")
    cache.set(PROGRESS_KEY.format(version.pk), (25, 60), 60)
    page = text(admin_client.get(set_url(labeled_set)))
    row = re.search(r'<tr id="v1".*?</tr>', page, re.S).group(0)
    assert 'hx-trigger="every 1s"' in row and "25 rows written of 60" in row and 'value="25"' in row
    fragment = admin_client.get(f"{version_url(version)}progress?where=set", HTTP_HX_REQUEST="true")
    assert "25 rows written of 60" in text(fragment) and 'hx-trigger="every 1s"' in text(fragment)
    TrainingSetVersion.objects.filter(pk=version.pk).update(status="queued")
    cache.delete(PROGRESS_KEY.format(version.pk))
    version_build(version_id=version.pk)
    ended = admin_client.get(f"{version_url(version)}progress?where=set", HTTP_HX_REQUEST="true")
    assert "Published" in text(ended) and "hx-trigger" not in text(ended) and ">60<" in text(ended)
    on_its_page = admin_client.get(f"{version_url(version)}progress?where=version", HTTP_HX_REQUEST="true")
    assert on_its_page["HX-Refresh"] == "true"  # the version page reloads to show its manifest


def test_publishing_while_a_version_builds_is_refused_with_a_message(admin_client, labeled_set):
    version_request(training_set=labeled_set)
    answer = admin_client.post(f"{set_url(labeled_set)}publish", {"key": "other"}, follow=True)
    assert "version 1 of" in text(answer) and "is queued; publish again when it has ended" in text(answer)
    assert TrainingSetVersion.objects.count() == 1


# --- the version's page


def test_the_version_page_shows_the_manifest_label_chart_downloads_and_gate(admin_client, built_version):
    page = text(admin_client.get(version_url(built_version)))
    assert re.search(r'id="rows">60<', page)
    manifest = built_version.manifest
    for split, figures in manifest["splits"].items():
        assert re.search(rf'<tr data-split="{split}"><td>{split}</td><td class="num">{figures["rows"]}<', page)
    assert 'data-label-chart="label-chart-data"' in page and 'id="label-chart-data"' in page
    assert f'href="/api/v1/training-sets/{built_version.training_set_id}/versions/1/files/train.parquet"' in page
    assert manifest["files"]["train.parquet"]["sha256"] in page and manifest["content_sha256"] in page
    assert 'id="gate-verdict">pass<' in page and 'id="schema"' in page and "<code>external_id</code>" in page
    batch_id = manifest["batches"][0]["id"]
    assert f'href="/quality/batches/{batch_id}/">#{batch_id}</a>' in page
    assert "No earlier published version to compare with." in page


def test_the_downloads_the_page_links_to_serve_the_files_whose_hashes_it_shows(admin_client, built_version):
    page = text(admin_client.get(version_url(built_version)))
    links = re.findall(r'<a href="(/api/v1/training-sets/[^"]+)" download>([^<]+)</a>', page)
    assert {name for _, name in links} >= {"train.parquet", "test.parquet", "validation.csv", "test.jsonl"}
    for url, name in links:
        body = b"".join(admin_client.get(url).streaming_content)
        assert hashlib.sha256(body).hexdigest() == built_version.manifest["files"][name]["sha256"], name


def test_a_second_version_shows_its_diff_and_the_gate_against_the_first(admin_client, built_version, source, project):
    training_set = built_version.training_set
    batch = admitted_batch(source, checkout_rows(20, start=60))
    settle(project, batch, lambda r: "ok")
    second = build(training_set)
    page = text(admin_client.get(version_url(second)))
    assert re.search(r'data-diff="added"><b>20<', page) and re.search(r'data-diff="removed"><b>0<', page)
    assert "No row moved between splits (the split rule is stable)." in page
    assert 'data-examples="added"' in page and "r60" in page
    assert 'id="comparison-0" data-against="previous"' in page and "v1 (the previous published version)" in page
    charts = admin_client.get(f"{version_url(second)}gate/0/charts", HTTP_HX_REQUEST="true")
    assert 'data-batch-charts="gate-charts-' in text(charts) and 'data-reference="v1"' in text(charts)
    assert "amount" in text(charts) and "over time" not in text(charts)  # no drift page for a version comparison
    assert admin_client.get(f"{version_url(second)}gate/5/charts").status_code == 404


def test_a_held_version_is_approved_only_with_a_comment(admin_client, built_version, source, project):
    training_set = built_version.training_set
    trainingset_update(training_set=training_set, gate_on="warn")
    batch = admitted_batch(source, checkout_rows(200, start=60, shift=40.0, prefix="s"))
    settle(project, batch, lambda r: "fraud")
    held = build(training_set)
    assert held.status == "review", held.gate_verdict
    page = text(admin_client.get(version_url(held)))
    assert 'id="decide"' in page and "Approve and publish" in page
    refused = admin_client.post(f"{version_url(held)}decide", {"decision": "approve", "comment": " "}, follow=True)
    assert "say why the version is approved despite its gate" in text(refused)
    held.refresh_from_db()
    assert held.status == "review"
    admin_client.post(f"{version_url(held)}decide", {"decision": "approve", "comment": "the shift is the new season"})
    held.refresh_from_db()
    assert (held.status, held.decision_comment, held.decided_by.username) == (
        "published", "the shift is the new season", "admin")
    page = text(admin_client.get(version_url(held)))
    assert 'id="decision">Approved by admin' in page and 'id="decide"' not in page and 'id="make-baseline"' in page


def test_make_baseline_turns_a_published_version_into_its_sources_baseline(admin_client, built_version, source):
    from validation.models import Baseline

    answer = admin_client.post(f"{version_url(built_version)}make-baseline", follow=True)
    assert "is now the active baseline of its source(s) (1)" in text(answer)
    assert Baseline.objects.get(source=source, is_active=True).origin == Baseline.Origin.TRAINING_SET


def test_lineage_finds_a_row_with_and_without_javascript(admin_client, built_version):
    url = version_url(built_version)
    page = text(admin_client.get(f"{url}?external_id=r5"))
    assert 'data-lineage-row="checkout-app:r5"' in page and 'value="r5"' in page
    fragment = text(admin_client.get(f"{url}lineage?external_id=r5&source=checkout-app", HTTP_HX_REQUEST="true"))
    row = re.search(r'<article class="lineage" data-lineage-row="checkout-app:r5">.*?</article>', fragment, re.S)
    assert row and 'class="lineage-label">fraud' in row.group(0) and "revision 1 of 1" in row.group(0)
    assert "<html" not in fragment
    missing = text(admin_client.get(f"{url}lineage?external_id=nope"))
    assert 'id="lineage-none"' in missing


def test_an_erased_row_is_marked_and_the_version_offers_a_rebuild(admin_client, people, built_version, source):
    erasure = Erasure.objects.create(kind=Erasure.Kind.RECORD, source=source, status=Erasure.Status.DONE,
                                     identity=record_identity(source.pk, "r7"))
    erasure.versions.add(built_version)
    page = text(admin_client.get(version_url(built_version)))
    assert 'id="erased"' in page and "1 erasure</b> (1 record)" in page and 'id="rebuild"' in page
    reader = text(as_user(admin_client, people["reader"]).get(version_url(built_version)))
    assert 'id="erased"' in reader and 'id="rebuild"' not in reader
    as_user(admin_client, people["staff"])
    answer = admin_client.post(f"{version_url(built_version)}rebuild")
    rebuilt = TrainingSetVersion.objects.get(number=2)
    assert answer.status_code == 302 and answer.url == version_url(rebuilt) and rebuilt.rebuilt_from == built_version


def test_a_rule_without_its_splits_is_refused_on_the_field_it_needs(admin_client, source):
    answer = admin_client.post("/training-sets/", {
        "new-name": "no-splits", "new-sources": [source.pk], "new-min_confidence": "0.7", "new-unlabeled": "drop",
        "new-split_kind": "time", "new-split_fractions": "train 0.5, test 0.5", "new-formats": ["parquet"],
        "new-gate_on": "fail"})
    field = re.search(r'id="field-new-split_cutoffs">.*?</div>', text(answer), re.S).group(0)
    assert answer.status_code == 400 and "each split with its cutoff, the last without" in field
    assert not TrainingSet.objects.exists()


# --- in a real browser: gunicorn and a Celery worker of their own, Debian's chromium


@pytest.fixture
def web(transactional_db, tmp_path, data_dir, celery_queue):
    proc, url = start_web(tmp_path, data_dir=data_dir, queue=celery_queue)
    yield url
    proc.stop()


def console_errors(page) -> list[str]:
    errors = []
    page.on("console", lambda m: errors.append(f"{m.text} {m.location.get('url', '')}")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def sign_in(page, url: str, username: str, next_url: str) -> None:
    """Through Sieve's own sign-in page, which takes people who are not staff too."""
    page.goto(f"{url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(url + next_url)


@pytest.fixture
def demo(transactional_db, data_dir, django_user_model):
    """`manage.py demo` on the test database (its set's first version built and published in process), and its
    drifted batch approved by staff: 300 more orders, larger baskets from iOS, for a second version."""
    from io import StringIO

    from django.core.management import call_command

    from collection.models import Batch
    from collection.services import batch_ingest
    from validation.services import batch_review, batch_validate

    call_command("demo", stdout=StringIO())
    drifted = Batch.objects.get(idempotency_key="demo-batch-2")
    batch_ingest(batch_id=drifted.pk, actor="test")
    batch_validate(batch_id=drifted.pk, actor="test")
    wait_for(lambda: Batch.objects.get(pk=drifted.pk).status == "quarantined", timeout=60, what="the quarantine")
    batch_review(batch_id=drifted.pk, user=django_user_model.objects.get(username="admin"), approve=True,
                 comment="the spring campaign: larger baskets, mostly from the iOS app")
    return TrainingSet.objects.get(name="demo-orders")


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.slow
def test_staff_publish_watch_the_build_approve_the_held_version_and_trace_a_row(worker, web, page, demo,
                                                                                  screenshots):
    """The demo's set (v1 published): staff publish v2 from the set's page, its row shows the build's progress
    until the gate holds it; on its page they read counts, labels, the gate's charts and the diff, download
    files, approve it with a comment (refused without one) and trace a row."""
    errors = console_errors(page)
    page.goto(f"{web}/accounts/login/?next=/training-sets/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "sieve-demo")
    page.click("#sign-in")
    page.wait_for_selector(f"tr[data-set='{demo.pk}']")
    assert page.inner_text(f"tr[data-set='{demo.pk}'] td:nth-child(4)") == "Published"
    page.screenshot(path=str(screenshots / "trainingset-list.png"), full_page=True)

    page.click(f"tr[data-set='{demo.pk}'] a")
    page.fill("#publish-comment", "with the spring campaign's orders")
    page.click("#publish-button")
    page.wait_for_url(f"**{set_url(demo)}#v2")
    assert page.get_attribute("#v2", "data-status") in ("queued", "building", "review")
    page.wait_for_selector("#v2[data-status=review]", timeout=90_000)  # polled every second until the gate held it
    assert "hx-trigger" not in page.inner_html("#versions tbody")
    assert page.inner_text("#v2 td:nth-child(3)") == "600" and page.inner_text("#v2 td:nth-child(4)") == "fail"
    page.screenshot(path=str(screenshots / "trainingset-set.png"), full_page=True)

    page.click("#v2 a")
    page.wait_for_selector("#rows")
    assert page.inner_text("#rows") == "600"
    page.wait_for_selector("canvas[data-label-chart][data-drawn=yes]")
    page.wait_for_selector("#comparison-0 [data-batch-charts] canvas")
    page.wait_for_selector("#comparison-1 [data-batch-charts] canvas")
    assert page.get_attribute("#comparison-0", "data-against") == "previous"
    assert "basket_value" in page.inner_text("#comparison-0")
    assert page.inner_text("[data-diff=added] b") == "300" and page.inner_text("[data-diff=moved_split] b") == "0"
    version = TrainingSetVersion.objects.get(training_set=demo, number=2)
    for link in page.locator("#downloads a").all()[:3]:
        body = page.request.get(web + link.get_attribute("href")).body()
        assert hashlib.sha256(body).hexdigest() == version.manifest["files"][link.inner_text()]["sha256"]

    page.click("#decide button.approve")  # no comment: refused, and told why
    page.wait_for_selector(".message.error")
    assert "say why the version is approved" in page.inner_text(".message.error")
    page.fill("#comment", "the campaign's orders are what the model must learn")
    page.click("#decide button.approve")
    page.wait_for_selector("#decision")
    assert "Approved by admin" in page.inner_text("#decision") and page.locator("#decide").count() == 0
    version.refresh_from_db()
    assert (version.status, version.decision_comment) == ("published", "the campaign's orders are what the model "
                                                                      "must learn")

    page.fill("#external_id", "order-2-00007")
    page.keyboard.press("Enter")  # htmx puts the lineage below the form, no reload
    page.wait_for_selector("#lineage article[data-lineage-row='demo-app:order-2-00007']")
    assert "(admitted" in page.inner_text("#lineage article") and "revision 1 of 1" in page.inner_text("#lineage")
    assert page.url.endswith(version_url(version))
    page.wait_for_selector("body[data-charts-drawn=yes]")
    page.locator("#lineage article").screenshot(path=str(screenshots / "trainingset-lineage.png"))
    page.evaluate("window.scrollTo(0, 0)")
    # The top of the page (summary, decision, gate with its charts, splits and labels): the rest is tables.
    page.screenshot(path=str(screenshots / "trainingset-version.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": page.locator("#label-distribution")
                          .evaluate("e => e.getBoundingClientRect().bottom + window.scrollY + 16")})
    assert not errors, errors


@pytest.mark.browser
@pytest.mark.slow
def test_a_reader_sees_the_set_without_a_publish_button_and_an_outsider_gets_404(web, browser, people,
                                                                                 built_version):
    training_set = built_version.training_set
    for name in ("reader", "outsider"):
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, web, name, "/training-sets/")
        answer = page.goto(web + set_url(training_set))
        if name == "reader":
            assert answer.status == 200 and page.locator("#v1").count() == 1
            assert page.locator("#publish").count() == 0 and page.locator("#edit-set").count() == 0
            assert page.locator("nav a", has_text="Training sets").count() == 1
        else:
            assert answer.status == 404
            assert page.goto(web + version_url(built_version)).status == 404
            assert page.locator("nav a", has_text="Training sets").count() == 0
        context.close()
