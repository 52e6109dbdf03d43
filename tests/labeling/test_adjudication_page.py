"""The adjudication page: what an expert sees (every label with its rater's kind and quality, the posterior),
deciding with and without JavaScript, who is kept out, and in a real browser an expert deciding two items
by keyboard alone, at a phone's size too."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from collection.models import Record
from labeling import services
from labeling.models import Adjudication, Annotation, Assignment, QueueItem, Rater
from tests.factories import CHOICES, batch_of_records

PASSWORD = "adjudicate-pass-1"
REVIEW = ("The kettle arrived a day late, but it boils quickly and the handle stays cool. Customer service "
          "answered within the hour. Would I buy it again? Probably, if it were cheaper.")


VALUES = ["positive", "negative", "neutral"]
# The raters' labels on the three disputed reviews, and on the nine others the reviews each rater got wrong.
DISPUTED = [("positive", "neutral", "negative", "negative"), ("negative", "negative", "positive", "positive"),
            ("neutral", "positive", "neutral", "positive")]
WRONG = {"anna": {5}, "ben": {6, 9}, "cleo": {3, 4, 7, 8, 10}, "dev": {4, 11}}


@pytest.fixture
def disputed(source):
    """A "retail" project of twelve reviews labeled by four raters, after a consensus run; the first three, on
    which they disagree, wait for adjudication. The raters have answered a gold item, so their quality shows."""
    project = services.project_create(name="review-sentiment", choices=CHOICES, overlap=4, sources=[source],
                                      domains=["retail"], instructions="Is the review **positive**?")
    batch = batch_of_records(source, 0)
    Record.objects.bulk_create([
        Record(batch=batch, source=source, line=i + 1, external_id=f"review-{i:03d}", is_current=True,
               features={"review": REVIEW, "stars": 1 + i % 5, "country": ["DE", "FR", "NL"][i % 3]})
        for i in range(13)])
    services.batch_route(batch_id=batch.pk)
    items = list(project.items.order_by("id"))
    names = [("anna", Rater.Kind.GENERALIST), ("ben", Rater.Kind.GENERALIST), ("cleo", Rater.Kind.END_USER),
             ("dev", Rater.Kind.GENERALIST)]
    raters = [services.rater_create(username=name, kind=kind, domains=["retail"]) for name, kind in names]
    services.project_add_raters(project=project, raters=raters)
    gold = items.pop()
    services.item_set_gold(item=gold, answer="positive")
    now = timezone.now()
    for rater, value in zip(raters, ("positive", "positive", "negative", "negative")):
        lease = Assignment.objects.create(item=gold, project=project, rater=rater, is_gold=True,
                                          state="submitted", leased_at=now - timedelta(minutes=1), expires_at=now)
        Annotation.objects.create(item=gold, project=project, rater=rater, assignment=lease, value=value,
                                  is_gold=True, correct=value == "positive")
    labels = []
    for i, item in enumerate(items):
        for r, rater in enumerate(raters):
            name, truth = rater.user.username, VALUES[i % 3]
            value = DISPUTED[i][r] if i < 3 else VALUES[(i + 1) % 3] if i in WRONG[name] else truth
            labels.append(Annotation(item=item, project=project, rater=rater, value=value, provenance="imported"))
    Annotation.objects.bulk_create(labels)
    QueueItem.objects.filter(pk__in=[i.pk for i in items]).update(state="complete")
    services.consensus_run_execute(run=services.consensus_run_request(project=project, trigger="demand"))
    QueueItem.objects.filter(pk__in=[i.pk for i in items[:3]]).update(state="adjudication")
    erin = services.rater_create(username="erin", kind=Rater.Kind.EXPERT, domains=["retail"], password=PASSWORD)
    services.project_add_raters(project=project, raters=[erin])
    return project, items[:3], erin


def page_of(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def test_an_expert_sees_the_record_every_label_its_raters_quality_and_the_posterior(client, disputed):
    project, items, erin = disputed
    client.force_login(erin.user)
    page = page_of(client.get(f"/label/projects/{project.pk}/adjudicate/"))
    assert f'data-item="{items[0].pk}"' in page and "review-000" in page and "boils quickly" in page
    rows = re.findall(r"<td><b>(\w+)</b>.*?</td>\s*<td>(\w+).*?</td>\s*<td>([\w -]+)</td>", page, re.S)
    assert rows == [("Positive", "anna", "Generalist"), ("Neutral", "ben", "Generalist"),
                    ("Negative", "cleo", "End user"), ("Negative", "dev", "Generalist")]
    assert page.count("1.00 <span class=\"hint\">of 1</span>") == 2  # anna and ben answered their gold item right
    assert 'id="posterior"' in page and re.search(r'id="waiting">3<', page)
    for choice in CHOICES:
        assert f'data-hotkey="{choice["hotkey"]}"' in page
    assert 'id="unlabelable"' not in page  # staff only


def test_without_javascript_a_decision_is_posted_and_the_next_item_shown(client, disputed):
    project, items, erin = disputed
    client.force_login(erin.user)
    url = f"/label/projects/{project.pk}/adjudicate/decide"
    missing = client.post(url, {"item": items[0].pk, "value": "negative", "reason": ""}, HTTP_HX_REQUEST="true")
    assert "Give a reason" in page_of(missing) and f'data-item="{items[0].pk}"' in missing.content.decode()
    assert 'value="negative" data-hotkey="2" checked' in missing.content.decode()  # the choice is kept
    answer = client.post(url, {"item": items[0].pk, "value": "negative", "reason": "sarcasm"}, follow=True)
    page = page_of(answer)
    assert "Decided: Negative." in page and f'data-item="{items[1].pk}"' in page
    decision = Adjudication.objects.get()
    assert (decision.item_id, decision.value, decision.reason, decision.decided_by) == (items[0].pk, "negative",
                                                                                        "sarcasm", erin.user)
    refused = client.post(url, {"item": items[1].pk, "unlabelable": "1", "reason": "gibberish"},
                          HTTP_HX_REQUEST="true")
    assert "only staff close an item as unlabelable" in page_of(refused)
    assert QueueItem.objects.get(pk=items[1].pk).state == "adjudication"


def test_staff_close_an_item_as_unlabelable_from_the_page(admin_client, disputed):
    project, items, _ = disputed
    page = page_of(admin_client.get(f"/label/projects/{project.pk}/adjudicate/"))
    assert 'id="unlabelable"' in page and "Adjudication</a>" in page  # the project's admin pages link here
    answer = admin_client.post(f"/label/projects/{project.pk}/adjudicate/decide",
                               {"item": items[0].pk, "unlabelable": ["", "1"], "reason": "empty review"},
                               HTTP_HX_REQUEST="true")
    assert "Closed as unlabelable." in page_of(answer)
    assert QueueItem.objects.get(pk=items[0].pk).state == "unlabelable"


def test_next_skips_to_the_following_item_and_comes_round_again(client, disputed):
    project, items, erin = disputed
    client.force_login(erin.user)
    work = f"/label/projects/{project.pk}/adjudicate/work"
    assert f'data-item="{items[1].pk}"' in page_of(client.get(f"{work}?after={items[0].pk}"))
    assert f'data-item="{items[0].pk}"' in page_of(client.get(f"{work}?after={items[2].pk}"))


def test_generalists_and_experts_of_other_projects_are_kept_out(client, disputed, source):
    project, items, _ = disputed
    anna = Rater.objects.get(user__username="anna")
    outsider = services.rater_create(username="otto", kind=Rater.Kind.EXPERT, domains=["retail"])
    for rater in (anna, outsider):
        client.force_login(rater.user)
        for url in (f"/label/projects/{project.pk}/adjudicate/", f"/label/projects/{project.pk}/adjudicate/work"):
            assert client.get(url).status_code == 404
        answer = client.post(f"/label/projects/{project.pk}/adjudicate/decide",
                             {"item": items[0].pk, "value": "positive", "reason": "mine"})
        assert answer.status_code == 404
    client.logout()
    assert client.get(f"/label/projects/{project.pk}/adjudicate/").url.startswith("/accounts/login/")
    assert not Adjudication.objects.exists()


def test_the_rater_home_partial_lists_the_projects_an_expert_may_adjudicate(disputed, rf):
    from django.template.loader import render_to_string

    from labeling.views.adjudication import adjudicable_projects

    project, _, erin = disputed
    rows = adjudicable_projects(erin.user)
    assert [(row["project"].pk, row["waiting"]) for row in rows] == [(project.pk, 3)]
    assert adjudicable_projects(Rater.objects.get(user__username="anna").user) == []
    html = render_to_string("labeling/_adjudicate_home.html", {"adjudicable": rows})
    assert f"/label/projects/{project.pk}/adjudicate/" in html and "<b>3</b>" in html


# --- in a real browser


def sign_in(page, base_url: str, username: str, next_url: str) -> None:
    """Sign in with the keyboard (type, Tab, type, Enter) and land on `next_url`."""
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.keyboard.type(username)  # the username box has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def decide_with_keys(page, key: str, reason: str) -> None:
    """A label's key, R, the reason, Enter; then wait until the next item has replaced this one."""
    before = page.get_attribute("#adjudicate-form", "data-item")
    page.keyboard.press(key)
    page.keyboard.press("r")
    page.keyboard.type(reason)
    page.keyboard.press("Enter")
    page.wait_for_function("old => document.querySelector('#adjudicate-form')?.dataset.item !== old", arg=before)


@pytest.mark.browser
def test_an_expert_adjudicates_two_items_by_keyboard_alone(live_server, page, disputed, screenshots):
    project, items, erin = disputed
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    sign_in(page, live_server.url, "erin", f"/label/projects/{project.pk}/adjudicate/")
    page.wait_for_selector("body[data-keys=ready] #adjudicate-form")
    page.screenshot(path=str(screenshots / "adjudicate.png"), full_page=True)
    page.evaluate("window.__sameDocument = true")

    decide_with_keys(page, "2", "sarcastic: 'would I buy it again? probably'")
    page.keyboard.press("n")  # skip the second item for now
    page.wait_for_function(f"document.querySelector('#adjudicate-form')?.dataset.item === '{items[2].pk}'")
    decide_with_keys(page, "1", "fast delivery and kind service outweigh the price")

    assert page.evaluate("window.__sameDocument") is True  # htmx swapped each item; the page never reloaded
    assert page.inner_text("#waiting") == "1"
    decisions = list(Adjudication.objects.order_by("id").values_list("item_id", "value", "reason",
                                                                     "decided_by__username"))
    assert decisions == [(items[0].pk, "negative", "sarcastic: 'would I buy it again? probably'", "erin"),
                         (items[2].pk, "positive", "fast delivery and kind service outweigh the price", "erin")]
    assert [QueueItem.objects.get(pk=i.pk).state for i in items] == ["complete", "adjudication", "complete"]
    assert "fast delivery" in page.inner_text("#recent")
    assert errors == []


@pytest.mark.browser
def test_a_generalist_cannot_open_the_adjudication_page(live_server, page, disputed):
    project, _, _ = disputed
    anna = Rater.objects.get(user__username="anna")
    anna.user.set_password(PASSWORD)
    anna.user.save()
    sign_in(page, live_server.url, "anna", "/label/")
    page.wait_for_selector("#projects")
    answer = page.goto(f"{live_server.url}/label/projects/{project.pk}/adjudicate/")
    assert answer.status == 404
    assert not Adjudication.objects.exists()


@pytest.mark.browser
def test_the_adjudication_page_fits_a_phone(live_server, browser, disputed):
    project, items, _ = disputed
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, "erin", f"/label/projects/{project.pk}/adjudicate/")
        page.wait_for_selector("body[data-keys=ready] #adjudicate-form")
        wide = page.evaluate("[...document.querySelectorAll('body *')]"
                             ".filter(e => e.getBoundingClientRect().right > 391)"
                             ".map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`)")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
        assert page.locator(".choice").first.bounding_box()["height"] >= 44  # a finger-sized target
        page.tap("input[value=neutral]")
        page.fill("#reason", "mixed review")
        page.tap("#decide")
        page.wait_for_selector(f"#adjudicate-form[data-item='{items[1].pk}']")
    finally:
        context.close()
    assert Adjudication.objects.get().value == "neutral"
