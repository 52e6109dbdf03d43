"""The labeling pages: a rater's projects and keyboard-first labeling page (in a real browser too, at a
phone's size as well), who is kept out of what, and the project admin's pages with the rule preview."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from collection.models import FeedbackEvent
from labeling import services
from labeling.models import Annotation, Assignment, FeedbackRule, LabelingProject, Rater
from tests.factories import CHOICES, batch_of_records, project_make

PASSWORD = "labeling-pass-1"


@pytest.fixture
def expert_project(source):
    return services.project_create(name="fraud-review", choices=CHOICES, overlap=1, sources=[source],
                                   allowed_kinds=[Rater.Kind.EXPERT], domains=["payments"])


def signed_in(client, rater: Rater):
    client.force_login(rater.user)
    return client


def work(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def live_assignment(rater: Rater, project) -> Assignment:
    return Assignment.objects.get(rater=rater, project=project, state=Assignment.State.LEASED)


# --- who sees what


def test_a_rater_sees_only_the_projects_they_belong_to_and_fit(client, project, expert_project, make_rater, source):
    other = services.project_create(name="other-team", choices=CHOICES, sources=[source])
    rater = make_rater("gina", password=PASSWORD)
    # A member of the expert project, but a generalist: it stays invisible to her.
    services.project_add_raters(project=expert_project, raters=[rater])
    page = work(signed_in(client, rater).get("/label/"))
    assert "sentiment" in page
    assert "fraud-review" not in page and "other-team" not in page
    assert client.get(f"/label/projects/{other.pk}/").status_code == 404
    assert client.get(f"/label/projects/{expert_project.pk}/").status_code == 404
    assert client.get(f"/label/projects/{project.pk}/").status_code == 200


def test_another_projects_labeling_page_and_its_actions_are_refused(client, project, make_rater, source, queued):
    other = services.project_create(name="other-team", choices=CHOICES, sources=[source])
    services.project_queue_admitted(project=other, actor="test")
    stranger = make_rater("stranger", join=other)
    lease = services.item_next(rater=stranger, project=other)
    rater = make_rater("gina", password=PASSWORD)
    signed_in(client, rater)
    assert client.get(f"/label/projects/{other.pk}/work").status_code == 404
    # Someone else's assignment, posted to the rater's own project or to its own: not found either way.
    for pk in (project.pk, other.pk):
        answer = client.post(f"/label/projects/{pk}/submit", {"assignment": lease.pk, "value": "positive"})
        assert answer.status_code == 404
        assert client.post(f"/label/projects/{pk}/skip", {"assignment": lease.pk}).status_code == 404
    assert not Annotation.objects.exists()
    lease.refresh_from_db()
    assert lease.state == Assignment.State.LEASED


def test_signed_out_visitors_are_sent_to_sign_in_and_land_where_they_belong(client, project, make_rater,
                                                                            django_user_model):
    assert client.get("/label/").url.startswith("/accounts/login/")
    make_rater("gina", password=PASSWORD)
    answer = client.post("/accounts/login/", {"username": "gina", "password": PASSWORD})
    assert answer.status_code == 302 and answer.url == "/label/"
    client.post("/accounts/logout/")
    django_user_model.objects.create_superuser("boss", "boss@example.com", "boss-pass-123")
    answer = client.post("/accounts/login/", {"username": "boss", "password": "boss-pass-123"})
    assert answer.url == "/quality/"


def test_a_user_who_is_not_a_rater_is_told_so(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitor", password="pw-12345678"))
    answer = client.get("/label/")
    assert answer.status_code == 403 and "not a rater" in answer.content.decode()


def test_password_reset_by_email_reaches_a_rater(client, project, make_rater, mailoutbox):
    rater = make_rater("gina", password=PASSWORD)
    rater.user.email = "gina@example.com"
    rater.user.save()
    assert client.post("/accounts/password_reset/", {"email": "gina@example.com"}).status_code == 302
    assert len(mailoutbox) == 1
    link = re.search(r"http://\S+/accounts/reset/\S+/", mailoutbox[0].body).group(0)
    form = client.get(link, follow=True)
    assert "Choose your password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0],
                       {"new_password1": "a-new-secret-42", "new_password2": "a-new-secret-42"})
    assert done.status_code == 302
    assert client.login(username="gina", password="a-new-secret-42")


# --- the labeling page


def test_the_page_shows_the_record_safe_instructions_and_the_keys(client, source, make_rater):
    project = services.project_create(
        name="pictures", choices=CHOICES, sources=[source],
        instructions=("Label the **mood**.\n\n<script>alert('x')</script><img src=x onerror=alert(1)>"
                      "[ok](javascript:alert(2))"))
    batch = batch_of_records(source, 0)
    from collection.models import Record

    Record.objects.create(batch=batch, source=source, line=1, external_id="pic-1", is_current=True, features={
        "photo": "https://images.example.com/cat.jpg", "caption": "a cat " * 40, "score": 0.5, "note": None})
    services.project_queue_admitted(project=project, actor="test")
    page = work(signed_in(client, make_rater("gina", join=project)).get(f"/label/projects/{project.pk}/"))
    assert "<strong>mood</strong>" in page
    assert "<script>alert" not in page and "onerror" not in page and "javascript:" not in page
    assert re.search(r'<img src="https://images.example.com/cat.jpg" alt="photo of record pic-1" loading="lazy">', page)
    assert 'class="feature-long"' in page and "missing" in page
    for choice in CHOICES:
        assert f'data-hotkey="{choice["hotkey"]}"' in page and choice["label"] in page
    assert f'name="assignment" value="{live_assignment(Rater.objects.get(user__username="gina"), project).pk}"' in page


def test_submitting_shows_the_next_item_and_a_double_submit_is_harmless(client, project, make_rater, queued):
    rater = make_rater("gina", password=PASSWORD)
    signed_in(client, rater).get(f"/label/projects/{project.pk}/")
    first = live_assignment(rater, project)
    headers = {"HTTP_HX_REQUEST": "true"}
    page = work(client.post(f"/label/projects/{project.pk}/submit", {"assignment": first.pk, "value": "negative"},
                            **headers))
    assert "Saved." in page and page.startswith('<div id="work"')
    second = live_assignment(rater, project)
    assert second.pk != first.pk and f'value="{second.pk}"' in page
    assert re.search(r'id="done-today">1<', page)
    again = work(client.post(f"/label/projects/{project.pk}/submit", {"assignment": first.pk, "value": "negative"},
                             **headers))
    assert "already saved" in again
    assert list(Annotation.objects.filter(rater=rater).values_list("value", flat=True)) == ["negative"]
    assert live_assignment(rater, project).pk == second.pk  # the repeat did not burn an item


def test_a_submit_without_a_label_keeps_the_item_and_says_why(client, project, make_rater, queued):
    rater = make_rater("gina", password=PASSWORD)
    signed_in(client, rater).get(f"/label/projects/{project.pk}/")
    lease = live_assignment(rater, project)
    page = work(client.post(f"/label/projects/{project.pk}/submit", {"assignment": lease.pk},
                            HTTP_HX_REQUEST="true"))
    assert "Choose a label first." in page and f'value="{lease.pk}"' in page
    assert not Annotation.objects.exists()


def test_skip_with_a_reason_then_undo_brings_back_the_last_label(client, project, make_rater, queued):
    rater = make_rater("gina", password=PASSWORD)
    signed_in(client, rater).get(f"/label/projects/{project.pk}/")
    hx = {"HTTP_HX_REQUEST": "true"}
    skipped = live_assignment(rater, project)
    page = work(client.post(f"/label/projects/{project.pk}/skip", {"assignment": skipped.pk, "reason": "not English"},
                            **hx))
    assert "Skipped. Reason: not English" in page
    skipped.refresh_from_db()
    assert (skipped.state, skipped.skip_reason) == ("skipped", "not English")
    labeled = live_assignment(rater, project)
    page = work(client.post(f"/label/projects/{project.pk}/submit", {"assignment": labeled.pk, "value": "neutral"},
                            **hx))
    assert 'id="undo-form"' in page
    page = work(client.post(f"/label/projects/{project.pk}/undo", **hx))
    assert "Undone" in page
    again = live_assignment(rater, project)
    assert again.item_id == labeled.item_id
    assert re.search(r'value="neutral" data-hotkey="3" checked', page)  # the withdrawn answer, ready to change
    assert not Annotation.objects.filter(rater=rater, undone_at__isnull=True).exists()


def test_the_page_says_busy_and_retries_while_other_requests_hold_the_items(transactional_db, client, project,
                                                                             make_rater, queued, hold_items, settings):
    settings.SIEVE_NEXT_CONTENTION_SECONDS = 0.3
    signed_in(client, make_rater("gina"))
    holder = hold_items(project)
    page = work(client.get(f"/label/projects/{project.pk}/work"))
    holder.release()
    assert 'id="queue-busy"' in page and 'hx-trigger="load delay:1s"' in page and "queue-empty" not in page
    assert 'id="label-form"' in work(client.get(f"/label/projects/{project.pk}/work"))


def test_a_multiple_choice_label_is_every_ticked_choice(client, source, make_rater):
    project = services.project_create(name="topics", label_kind=LabelingProject.LabelKind.MULTIPLE, choices=CHOICES,
                                      overlap=1, sources=[source])
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    rater = make_rater("gina", join=project)
    page = work(signed_in(client, rater).get(f"/label/projects/{project.pk}/"))
    assert page.count('type="checkbox" name="value"') == 3
    lease = live_assignment(rater, project)
    work(client.post(f"/label/projects/{project.pk}/submit", {"assignment": lease.pk, "value": ["neutral", "positive"]},
                     HTTP_HX_REQUEST="true"))
    assert Annotation.objects.get(rater=rater).value == ["positive", "neutral"]  # in the project's order


def test_the_page_says_clearly_when_the_queue_is_empty(client, project, make_rater):
    page = work(signed_in(client, make_rater("gina", password=PASSWORD)).get(f"/label/projects/{project.pk}/"))
    assert 'id="queue-empty"' in page and "Nothing left for you to label" in page


def test_without_javascript_the_forms_still_work(client, project, make_rater, queued):
    rater = make_rater("gina", password=PASSWORD)
    signed_in(client, rater).get(f"/label/projects/{project.pk}/")
    lease = live_assignment(rater, project)
    answer = client.post(f"/label/projects/{project.pk}/submit", {"assignment": lease.pk, "value": "positive"},
                         follow=True)
    assert answer.redirect_chain[-1][0] == f"/label/projects/{project.pk}/"
    assert "Saved." in answer.content.decode()
    assert Annotation.objects.filter(rater=rater, value="positive").count() == 1


# --- the project admin's pages


def test_the_project_admin_pages_are_for_staff_only(client, admin_client, project, make_rater):
    rule = services.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold="up", label="positive")
    urls = ["/label/admin/", f"/label/admin/projects/{project.pk}/", f"/label/admin/projects/{project.pk}/rules/",
            f"/label/admin/projects/{project.pk}/rules/{rule.pk}/", f"/label/admin/projects/{project.pk}/conflicts/"]
    signed_in(client, make_rater("gina", password=PASSWORD))
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 302 and answer.url.startswith("/accounts/login/"), url
        assert admin_client.get(url).status_code == 200, url
    client.post(f"/label/admin/projects/{project.pk}/rules/", {"signal": "click", "op": "any", "label": "positive",
                                                              "enabled": "on", "save": "1"})
    assert FeedbackRule.objects.count() == 1


def label_items(project, raters, values):
    """Each rater labels the items the queue gives them, with the next of `values` in turn."""
    for rater, value in zip(raters, values):
        while (lease := services.item_next(rater=rater, project=project)) is not None:
            services.assignment_submit(assignment=lease, value=value)


def test_the_project_page_counts_items_and_shows_each_raters_agreement(admin_client, project, make_rater, queued):
    anna, ben, cara = (make_rater(name) for name in ("anna", "ben", "cara"))
    label_items(project, [anna, ben, cara], ["positive", "positive", "negative"])
    page = work(admin_client.get(f"/label/admin/projects/{project.pk}/"))
    assert re.search(r'id="count-complete">10<', page) and re.search(r'id="count-open">0<', page)
    rows = re.findall(r"<tr><td>(\w+)</td><td>generalist</td><td>(\d+)</td><td>(\d+)</td><td>([\d.]+)</td>", page)
    assert rows == [("anna", "10", "10", "1.00"), ("ben", "10", "10", "1.00"), ("cara", "10", "0", "0.00")]
    assert "0.67" in page  # mean agreement
    assert f"/admin/labeling/labelingproject/{project.pk}/change/" in page


def test_the_project_figures_are_at_most_a_minute_old_unless_asked_fresh(admin_client, project, make_rater, queued):
    url = f"/label/admin/projects/{project.pk}/"
    assert re.search(r'id="count-complete">0<', work(admin_client.get(url)))
    label_items(project, [make_rater(name) for name in ("anna", "ben", "cara")], ["positive"] * 3)
    cached = work(admin_client.get(url))
    assert re.search(r'id="count-complete">0<', cached) and 'id="as-of"' in cached
    assert re.search(r'id="count-complete">10<', work(admin_client.get(f"{url}?fresh=1")))


def test_a_tie_is_counted_as_waiting_for_a_tie_breaker(admin_client, source, make_rater):
    project = project_make(source, name="pairs", overlap=2)
    services.batch_route(batch_id=batch_of_records(source, 2).pk)
    anna, ben = make_rater("anna", join=project), make_rater("ben", join=project)
    label_items(project, [anna, ben], ["positive", "negative"])
    assert re.search(r'id="count-tie">2<', work(admin_client.get(f"/label/admin/projects/{project.pk}/")))


def feedback(source, items, signal: str, values):
    """Process feedback about the items' records, one event an item, as the API stores it."""
    from collection.services import feedback_receive

    feedback_receive(source=source, events=[
        {"external_id": item.record.external_id, "signal": signal, "value": value, "actor": f"user-{i % 3}",
         "occurred_at": timezone.now() - timedelta(minutes=i), "idempotency_key": f"{signal}-{i}"}
        for i, (item, value) in enumerate(zip(items, values))])
    assert FeedbackEvent.objects.filter(signal=signal, record__isnull=False).count() == len(values)


def test_the_rule_preview_counts_matches_and_labels_and_writes_nothing(admin_client, project, source, queued):
    feedback(source, queued, "rating", [5, 4, 1, 2, 5, 3, 4, 5, 1, 2])
    answer = admin_client.post(f"/label/admin/projects/{project.pk}/rules/",
                               {"signal": "rating", "op": "gte", "threshold": "4", "label": "positive",
                                "enabled": "on", "preview": "1"}, HTTP_HX_REQUEST="true")
    page = work(answer)
    assert re.search(r'id="preview-matched">5<', page)
    assert re.search(r"<tr><td>Positive</td><td>5</td></tr>", page)
    assert page.count("<code>5</code>") == 3 and "Save" not in page  # the sample, in the fragment alone
    assert not FeedbackRule.objects.exists() and not Annotation.objects.exists()


def test_a_rule_is_saved_from_the_page_and_edited_with_its_preview(admin_client, project, source, queued):
    feedback(source, queued, "thumbs", ["up", "down"] * 5)
    url = f"/label/admin/projects/{project.pk}/rules/"
    answer = admin_client.post(url, {"name": "thumbs down", "signal": "thumbs", "op": "eq", "threshold": "down",
                                     "label": "negative", "enabled": "on", "save": "1"})
    assert answer.status_code == 302
    rule = FeedbackRule.objects.get()
    assert (rule.signal, rule.op, rule.threshold, rule.label, rule.position) == ("thumbs", "eq", "down", "negative", 0)
    edit = f"{url}{rule.pk}/"
    page = work(admin_client.get(edit))
    assert 'value="down"' in page and "Edit rule thumbs down" in page
    changed = {"name": "thumbs", "signal": "thumbs", "op": "in", "threshold": "up, down", "label": "neutral",
               "enabled": "on"}
    preview = work(admin_client.post(edit, {**changed, "preview": "1"}, HTTP_HX_REQUEST="true"))
    assert re.search(r'id="preview-matched">10<', preview)
    rule.refresh_from_db()
    assert rule.threshold == "down"
    answer = admin_client.post(edit, {**changed, "save": "1"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 204 and answer["HX-Redirect"] == url
    rule.refresh_from_db()
    assert (rule.op, rule.threshold, rule.label) == ("in", ["up", "down"], "neutral")
    assert FeedbackRule.objects.count() == 1 and not Annotation.objects.exists()


def test_a_rule_with_a_bad_condition_is_refused_with_the_reason(admin_client, project):
    page = work(admin_client.post(f"/label/admin/projects/{project.pk}/rules/", {
        "signal": "rating", "op": "gte", "threshold": "high", "label": "positive", "save": "1"}))
    assert "needs a number" in page
    page = work(admin_client.post(f"/label/admin/projects/{project.pk}/rules/", {
        "signal": "rating", "op": "any", "save": "1"}))
    assert "Choose the label this rule gives" in page
    assert not FeedbackRule.objects.exists()


def test_conflicts_between_feedback_and_raters_are_listed(admin_client, project, source, make_rater, queued):
    raters = [make_rater(name) for name in ("anna", "ben", "cara")]
    label_items(project, raters, ["positive"] * 3)
    feedback(source, queued[:2], "thumbs", ["down", "down"])
    services.feedback_rule_create(project=project, signal="thumbs", op="eq", threshold="down", label="negative")
    services.feedback_apply_rules(project=project)
    page = work(admin_client.get(f"/label/admin/projects/{project.pk}/conflicts/"))
    for item in queued[:2]:
        assert f">{item.record.external_id}<" in page
    assert page.count("<td>Positive</td><td>3</td><td>Negative</td><td>1</td>") == 2
    assert queued[2].record.external_id not in page


# --- in a real browser


def log_in_as_rater(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Sign in with the keyboard: type, then Enter."""
    page.goto(f"{base_url}/accounts/login/")
    page.keyboard.type(username)  # the username box has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#projects")


def label_with_keys(page, keys: list[str]) -> None:
    """Per item: press its keys, then Enter, and wait until the next item has replaced it (no reload)."""
    page.wait_for_selector("body[data-keys=ready]")
    page.evaluate("window.__sameDocument = true")
    for key in keys:
        before = page.get_attribute("#label-form", "data-assignment")
        page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "old => document.querySelector('#label-form')?.dataset.assignment !== old", arg=before)
    assert page.evaluate("window.__sameDocument") is True  # htmx swapped the item; the page never reloaded


def long_records(source, n: int):
    """Records with a long text, a few numbers and a category: what a rater reads in a real project."""
    from collection.models import Record

    batch = batch_of_records(source, 0)
    text = ("Ordered the blue kettle on Monday; it arrived quickly, boils fast and the handle stays cool. "
            "The lid is a little stiff at first. Would buy again for the price.")
    Record.objects.bulk_create([
        Record(batch=batch, source=source, line=i + 1, external_id=f"review-{i:03d}", is_current=True,
               features={"review": text, "stars": 1 + i % 5, "country": ["DE", "FR", "NL"][i % 3],
                         "verified_buyer": i % 2 == 0})
        for i in range(n)])
    return batch


@pytest.mark.browser
def test_a_rater_signs_in_and_labels_five_items_with_the_keyboard_alone(live_server, page, project, source,
                                                                        make_rater, screenshots):
    services.batch_route(batch_id=long_records(source, 20).pk)
    rater = make_rater("gina", password=PASSWORD)
    errors = []  # what the browser's console reports: a failed script, style or icon
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in_as_rater(page, live_server.url, "gina")
    assert page.url == f"{live_server.url}/label/"
    page.focus("#projects a.start")  # as Tab would: then Enter follows the link
    page.keyboard.press("Enter")
    page.wait_for_selector("#label-form")
    page.screenshot(path=str(screenshots / "label-item.png"), full_page=True)
    label_with_keys(page, ["1", "2", "1", "3", "1"])
    assert page.inner_text("#done-today") == "5"
    values = list(Annotation.objects.filter(rater=rater).order_by("id").values_list("value", flat=True))
    assert values == ["positive", "negative", "positive", "neutral", "positive"]
    # Z withdraws the last label and shows that item again, its answer chosen.
    page.keyboard.press("z")
    page.wait_for_selector("#notice >> text=Undone")
    assert page.is_checked("input[value=positive]")
    assert Annotation.objects.filter(rater=rater, undone_at__isnull=True).count() == 4
    page.keyboard.press("s")
    page.wait_for_selector("#notice >> text=Skipped")
    assert Assignment.objects.filter(rater=rater, state="skipped").count() == 1
    assert errors == []


@pytest.mark.browser
def test_an_end_user_labels_five_items_on_a_phone_sized_screen(live_server, browser, source, screenshots):
    project = services.project_create(name="was-this-helpful", label_kind=LabelingProject.LabelKind.RATING,
                                      scale_min=1, scale_max=5, overlap=1, sources=[source],
                                      allowed_kinds=[Rater.Kind.END_USER],
                                      instructions="How helpful was this answer? **1** not at all, **5** very.")
    services.batch_route(batch_id=long_records(source, 12).pk)
    user = services.rater_create(username="eve", kind=Rater.Kind.END_USER, password=PASSWORD)
    services.project_add_raters(project=project, raters=[user])
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    try:
        log_in_as_rater(page, live_server.url, "eve")
        page.goto(f"{live_server.url}/label/projects/{project.pk}/")
        page.wait_for_selector("#label-form")
        wide = page.evaluate("[...document.querySelectorAll('body *')]"
                             ".filter(e => e.getBoundingClientRect().right > 391)"
                             ".map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`)")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide  # nothing wider than the phone
        box = page.locator(".choice").first.bounding_box()
        assert box["height"] >= 44  # a finger-sized target
        page.screenshot(path=str(screenshots / "label-phone.png"), full_page=False)
        label_with_keys(page, ["5", "4", "5", "1", "3"])
    finally:
        context.close()
    assert list(Annotation.objects.filter(rater__user__username="eve").order_by("id")
                .values_list("value", flat=True)) == [5, 4, 5, 1, 3]


@pytest.mark.browser
def test_typing_a_free_text_label_takes_no_key_from_the_rater(live_server, page, source):
    project = services.project_create(name="summaries", label_kind=LabelingProject.LabelKind.TEXT, overlap=1,
                                      sources=[source])
    services.batch_route(batch_id=long_records(source, 3).pk)
    rater = services.rater_create(username="sam", password=PASSWORD)
    services.project_add_raters(project=project, raters=[rater])
    log_in_as_rater(page, live_server.url, "sam")
    page.goto(f"{live_server.url}/label/projects/{project.pk}/")
    page.wait_for_selector("#free-text:focus")
    before = page.get_attribute("#label-form", "data-assignment")
    page.keyboard.type("sturdy kettle, zero complaints 1 2 3")
    page.keyboard.press("Enter")
    page.wait_for_function("old => document.querySelector('#label-form')?.dataset.assignment !== old", arg=before)
    assert list(Annotation.objects.filter(rater=rater).values_list("value", flat=True)) == [
        "sturdy kettle, zero complaints 1 2 3"]
    assert not Assignment.objects.filter(rater=rater, state="skipped").exists()


@pytest.mark.browser
def test_an_expert_only_project_is_invisible_to_a_generalist(live_server, page, project, expert_project, source,
                                                             make_rater):
    services.batch_route(batch_id=batch_of_records(source, 5).pk)
    rater = make_rater("gina", password=PASSWORD)
    services.project_add_raters(project=expert_project, raters=[rater])
    log_in_as_rater(page, live_server.url, "gina")
    assert "sentiment" in page.inner_text("#projects")
    assert "fraud-review" not in page.content()
    answer = page.goto(f"{live_server.url}/label/projects/{expert_project.pk}/")
    assert answer.status == 404
    assert not Assignment.objects.filter(project=expert_project).exists()


@pytest.mark.browser
def test_an_admin_previews_a_feedback_rule_before_saving_it(live_server, page, project, source, queued,
                                                            django_user_model, screenshots):
    from tests.conftest import log_in

    feedback(source, queued, "rating", [5, 4, 1, 2, 5, 3, 4, 5, 1, 2])
    services.feedback_rule_create(project=project, name="thumbs down", signal="thumbs", op="eq", threshold="down",
                                  label="negative")
    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    log_in(page, live_server.url, "admin", "admin-pass-123", next_url=f"/label/admin/projects/{project.pk}/rules/")
    page.wait_for_selector("#rule-form")
    page.fill("#id_name", "good ratings")
    page.fill("#id_signal", "rating")
    page.select_option("#id_op", "gte")
    page.fill("#id_threshold", "4")
    page.select_option("#id_label", "positive")
    page.wait_for_selector("#preview-matched")
    assert page.inner_text("#preview-matched") == "5"
    assert FeedbackRule.objects.count() == 1
    page.screenshot(path=str(screenshots / "label-rules.png"), full_page=True)
    page.click("#save")
    page.wait_for_selector("#rules >> text=good ratings")
    assert FeedbackRule.objects.filter(signal="rating", op="gte", threshold=4, label="positive").exists()


@pytest.mark.browser
def test_on_a_phone_the_instructions_start_closed_submit_is_in_view_and_no_key_hints_show(live_server, browser,
                                                                                         source):
    instructions = "\n\n".join(f"Rule {i}: read the whole review before you answer, twice if need be."
                               for i in range(12))
    project = services.project_create(name="phone-sentiment", choices=CHOICES, overlap=1, sources=[source],
                                      instructions=instructions)
    services.batch_route(batch_id=batch_of_records(source, 3).pk)
    rater = services.rater_create(username="pia", password=PASSWORD)
    services.project_add_raters(project=project, raters=[rater])
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        log_in_as_rater(page, live_server.url, "pia")
        page.goto(f"{live_server.url}/label/projects/{project.pk}/")
        page.wait_for_selector("#label-form")
        assert page.evaluate("document.querySelector('details.instructions').open") is False
        box = page.locator("#submit").bounding_box()
        assert box["y"] + box["height"] <= 844, box  # Submit in view without scrolling
        assert not page.locator("#keys").is_visible() and not page.locator("#submit kbd").is_visible()
        assert not page.locator(".choice kbd").first.is_visible()
        page.tap(".choice >> nth=0")
        page.tap("#submit")
        page.wait_for_function("document.querySelector('#done-today').textContent === '1'")
        box = page.locator("#submit").bounding_box()
        assert box["y"] + box["height"] <= 844, box  # and on the next item
    finally:
        context.close()
