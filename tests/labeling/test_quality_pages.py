"""The label quality pages: staff see a project's alpha, raters, gold, bias and cost, and one rater's confusion
matrices and trend, pause and resume them; raters are kept out (in a real browser too)."""
import random
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from collection.models import FeedbackEvent, Record, Source
from labeling import services
from labeling.models import Annotation, Assignment, ConsensusRun, Membership, QueueItem, Rater
from tests.factories import CHOICES, batch_of_records
from validation.models import Alert

PASSWORD = "quality-pass-1"
VALUES = [c["value"] for c in CHOICES]


def crowd(project, source, *, items: int = 120, seed: int = 3) -> dict:
    """A project's worth of labels over four weeks: eight raters of three kinds with their own accuracy (one who
    answers "negative" far too often), gold items, timed leases, a feedback rule, a model's labels and a
    finished Dawid-Skene run."""
    rng = random.Random(seed)
    model = Source.objects.create(name="sentiment-model-v3", kind=Source.Kind.MODEL_OUTPUT)
    project.sources.add(model)
    batch = batch_of_records(model, items)
    truth = {}
    for record in Record.objects.filter(batch=batch):
        truth[record.pk] = rng.choice(VALUES)
        record.label = truth[record.pk] if rng.random() < 0.8 else rng.choice(VALUES)
        record.save(update_fields=["label"])
    services.batch_route(batch_id=batch.pk)
    queue = list(project.items.select_related("record").order_by("id"))
    gold = queue[:8]
    for item in gold:
        services.item_set_gold(item=item, answer=truth[item.record_id])
    people = [("anna", Rater.Kind.GENERALIST, 0.9), ("ben", Rater.Kind.GENERALIST, 0.8),
              ("cara", Rater.Kind.GENERALIST, 0.7), ("dave", Rater.Kind.GENERALIST, 0.55),
              ("erin", Rater.Kind.EXPERT, 0.95), ("femi", Rater.Kind.EXPERT, 0.9),
              ("gus", Rater.Kind.END_USER, 0.6), ("hana", Rater.Kind.END_USER, 0.75)]
    raters = {}
    now = timezone.now()
    for name, kind, accuracy in people:
        rater = services.rater_create(username=name, kind=kind, password=PASSWORD)
        services.project_add_raters(project=project, raters=[rater])
        raters[name] = (rater, accuracy)

    def answer(name, item):
        rater, accuracy = raters[name]
        if name == "dave" and rng.random() < 0.75:
            return "negative"  # his bias
        return truth[item.record_id] if rng.random() < accuracy else rng.choice(VALUES)

    for n, item in enumerate(queue[8:]):
        for name in rng.sample(list(raters), 3):
            rater = raters[name][0]
            leased = now - timedelta(days=27 - n * 27 // len(queue), minutes=rng.randint(0, 600))
            lease = Assignment.objects.create(item=item, project=project, rater=rater, state="submitted",
                                              leased_at=leased, expires_at=leased + timedelta(minutes=15),
                                              finished_at=leased + timedelta(seconds=rng.randint(5, 40)))
            Annotation.objects.create(item=item, project=project, rater=rater, assignment=lease,
                                      value=answer(name, item), created_at=lease.finished_at)
        values = list(Annotation.objects.filter(item=item).values_list("value", flat=True))
        top = max(set(values), key=values.count)
        QueueItem.objects.filter(pk=item.pk).update(state="complete", submitted_count=3,
                                                    consensus=top if values.count(top) > 1 else None)
    for name in raters:
        for item in gold:
            value = answer(name, item)
            Annotation.objects.create(item=item, project=project, rater=raters[name][0], value=value,
                                      provenance=Annotation.Provenance.IMPORTED, is_gold=True,
                                      correct=value == truth[item.record_id],
                                      created_at=now - timedelta(days=rng.randint(0, 27)))
    rule = services.feedback_rule_create(project=project, name="thumbs up", signal="thumbs", op="eq",
                                         threshold="up", label="positive")
    for n, item in enumerate(queue[8:28]):
        event = FeedbackEvent.objects.create(source=source, record=item.record, signal="thumbs", value="up",
                                             actor=f"user{n}", idempotency_key=f"t{n}", occurred_at=now)
        Annotation.objects.create(item=item, project=project, provenance=Annotation.Provenance.PROCESS_FEEDBACK,
                                  actor=f"user{n}", value="positive", rule=rule, feedback_event_id=event.pk)
    diagonal = {"anna": 0.9, "ben": 0.8, "cara": 0.7, "dave": 0.5, "erin": 0.95, "femi": 0.9, "gus": 0.6,
                "hana": 0.75}
    ConsensusRun.objects.create(
        project=project, status=ConsensusRun.Status.DONE, finished_at=now, classes=VALUES,
        rater_accuracy={str(raters[n][0].pk): d for n, d in diagonal.items()},
        rater_confusion={str(raters[n][0].pk): [[d if i == j else (1 - d) / 2 for j in range(3)] for i in range(3)]
                         for n, d in diagonal.items()})
    project.hourly_rates = {"generalist": 18, "expert": 70, "end_user": 0}
    project.min_gold_accuracy, project.min_gold_answers = 0.6, 5
    project.save()
    return {name: r for name, (r, _) in raters.items()}


def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_quality_pages_are_for_staff_only(client, admin_client, project, source, make_rater):
    rater = make_rater("gina", password=PASSWORD)
    urls = [f"/label/admin/projects/{project.pk}/quality/",
            f"/label/admin/projects/{project.pk}/quality/raters/{rater.pk}/"]
    signed_in(client, rater.user)
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 302 and answer.url.startswith("/accounts/login/"), url
        assert admin_client.get(url).status_code == 200, url
    answer = client.post(f"/label/admin/projects/{project.pk}/quality/raters/{rater.pk}/pause", {"reason": "me"})
    assert answer.status_code == 302 and answer.url.startswith("/accounts/login/")
    assert not Membership.objects.get(rater=rater).is_paused


def test_the_project_page_shows_alpha_raters_kinds_gold_bias_and_cost(admin_client, project, source):
    crowd(project, source)
    page = admin_client.get(f"/label/admin/projects/{project.pk}/quality/").content.decode()
    assert re.search(r'id="alpha">0\.\d{3}<', page)
    assert 'id="alpha-interval"' in page and 'data-alpha-chart="alpha-series"' in page
    assert page.count('data-rater="') == 8 and 'id="kinds"' in page and 'id="gold-confusion"' in page
    assert "dave" in re.search(r'id="bias-raters".*?</table>', page, re.S).group(0)  # the rater who overuses one class
    assert "thumbs up" in page and "sentiment-model-v3" in page
    assert re.search(r'id="cost-per-label">\d+\.\d\d<', page) and re.search(r'id="cost-to-finish">', page)


def test_the_rater_table_sorts_and_pages_through_the_query_string(admin_client, project, source):
    crowd(project, source)
    url = f"/label/admin/projects/{project.pk}/quality/"
    names = lambda page: re.findall(r'data-rater="\d+">\s*<td><a [^>]+>(\w+)</a>', page)  # noqa: E731
    assert names(admin_client.get(url).content.decode()) == sorted(names(admin_client.get(url).content.decode()))
    by_gold = admin_client.get(f"{url}?sort=-gold_accuracy").content.decode()
    assert 'aria-sort="descending" data-sort="gold_accuracy"' in by_gold
    assert names(by_gold) != sorted(names(by_gold))


def test_the_overview_headline_is_alpha_with_a_link_to_the_quality_page(admin_client, project, source):
    crowd(project, source)
    page = admin_client.get(f"/label/admin/projects/{project.pk}/").content.decode()
    assert re.search(r'Krippendorff\'s α \(nominal\): <b id="alpha">0\.\d{3}</b>', page)
    assert f'href="/label/admin/projects/{project.pk}/quality/"' in page
    assert "Mean agreement of complete items" not in page


def test_staff_pause_and_resume_a_rater_from_their_page(admin_client, project, source, queued, make_rater):
    rater = make_rater("gina")
    lease = services.item_next(rater=rater, project=project)
    url = f"/label/admin/projects/{project.pk}/quality/raters/{rater.pk}/"
    answer = admin_client.post(url + "pause", {"reason": "labels too fast; call them first"})
    assert answer.status_code == 302 and answer.url == url
    page = admin_client.get(url).content.decode()
    assert 'id="paused"' in page and "labels too fast; call them first" in page and "by admin" in page
    assert Assignment.objects.get(pk=lease.pk).state == Assignment.State.EXPIRED
    with pytest.raises(services.NotAllowed, match="paused in this project: labels too fast"):
        services.item_next(rater=rater, project=project)
    assert not Alert.objects.exists()  # staff paused them: nobody needs telling
    admin_client.post(url + "resume")
    assert services.item_next(rater=rater, project=project) is not None
    assert admin_client.get(url + "pause").status_code == 405  # POST only


# --- in a real browser


@pytest.mark.browser
def test_staff_read_alpha_sort_the_raters_and_open_a_raters_confusion_matrix(live_server, page, project, source,
                                                                             django_user_model, screenshots):
    from tests.conftest import log_in

    raters = crowd(project, source)
    django_user_model.objects.create_superuser("admin", "a@example.com", "admin-pass-123")
    errors = []  # what the browser's console reports (Django admin's sign-in page has no icon: its /favicon.ico aside)
    page.on("console", lambda message: errors.append(f"{message.text} {message.location.get('url', '')}")
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico") else None)
    log_in(page, live_server.url, "admin", "admin-pass-123", next_url=f"/label/admin/projects/{project.pk}/quality/")
    page.wait_for_selector("#alpha")
    assert re.fullmatch(r"0\.\d{3}", page.inner_text("#alpha"))
    page.wait_for_selector("body[data-charts-drawn=yes]")
    page.screenshot(path=str(screenshots / "label-quality.png"), full_page=True)
    page.click("th[data-sort=gold_accuracy] a")
    page.wait_for_selector("th[data-sort=gold_accuracy][aria-sort=descending]")
    shown = [float(t) for t in page.locator("#raters tbody tr td:nth-child(5)").all_inner_texts()]
    assert shown == sorted(shown, reverse=True) and len(shown) == 8
    page.click("th[data-sort=gold_accuracy] a")
    page.wait_for_selector("th[data-sort=gold_accuracy][aria-sort=ascending]")
    shown = [float(t) for t in page.locator("#raters tbody tr td:nth-child(5)").all_inner_texts()]
    assert shown == sorted(shown)
    page.click(f"#raters tr[data-rater='{raters['dave'].pk}'] a")
    page.wait_for_selector("#confusion-consensus")
    assert page.locator("#confusion-consensus tbody tr").count() == 3
    assert page.locator("#confusion-model tbody tr").count() == 3
    assert "biased" in page.inner_text("#bias-verdict")
    page.wait_for_selector("body[data-charts-drawn=yes]")
    page.screenshot(path=str(screenshots / "label-rater.png"), full_page=True)
    page.fill("#pause-reason", "overuses negative; retrain first")
    page.click("#pause")
    page.wait_for_selector("#paused")
    assert Membership.objects.get(rater=raters["dave"], project=project).is_paused
    page.click("#resume")
    page.wait_for_selector("#pause")
    assert not Membership.objects.get(rater=raters["dave"], project=project).is_paused
    assert errors == []


@pytest.mark.browser
def test_a_rater_is_refused_the_quality_pages(live_server, page, project, source, make_rater):
    rater = make_rater("gina", password=PASSWORD)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "gina")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_selector("#projects")
    for url in (f"/label/admin/projects/{project.pk}/quality/",
                f"/label/admin/projects/{project.pk}/quality/raters/{rater.pk}/"):
        page.goto(live_server.url + url)
        assert "/accounts/login/" in page.url
        assert page.locator("#alpha").count() == 0 and page.locator("#confusion-consensus").count() == 0
