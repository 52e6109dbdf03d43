"""The staff labels API: every label out by cursor and as CSV/Parquet, a real crowd set imported with located errors,
an item assigned to a rater, and who may do any of it."""
import csv
import io
from collections import Counter
from pathlib import Path

import orjson
import pandas as pd
import pytest
from rest_framework.test import APIClient

from collection.models import Batch, Record
from labeling import services
from labeling.models import Annotation, Assignment, QueueItem
from tests.factories import batch_of_records

TEMP = Path(__file__).resolve().parent.parent / "data" / "crowd" / "snow2008" / "temp.standardized.tsv"
NDJSON = "application/x-ndjson"


def ndjson(*rows) -> bytes:
    return b"".join((row if isinstance(row, bytes) else orjson.dumps(row)) + b"\n" for row in rows)


def client_for(rater) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {services.rater_token(rater=rater)}")
    return client


@pytest.fixture
def staff(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def label(rater, project, value):
    lease = services.item_next(rater=rater, project=project)
    return services.assignment_submit(assignment=lease, value=value)[0]


def import_labels(staff, project, *rows, content_type=NDJSON):
    return staff.post(f"/api/v1/projects/{project.pk}/labels/import", data=ndjson(*rows), content_type=content_type)


# --- who may


@pytest.mark.parametrize("path", ["labels", "labels.csv", "labels.parquet", "labels/import", "assign"])
def test_only_staff_use_the_labels_api(project, queued, make_rater, api, staff, path):
    def call(client, project_id):
        if path == "assign":
            return client.post(f"/api/v1/items/{queued[0].pk if project_id else 999999}/assign", {"rater": "x"},
                               format="json")
        url = f"/api/v1/projects/{project_id or 999999}/{path}"
        return client.post(url, data=b"[]", content_type="application/json") if path.endswith("import") \
            else client.get(url)

    rater = call(client_for(make_rater()), project.pk)
    assert rater.status_code == 403 and rater.json()["error"] == "permission_denied"
    source_key = call(api, project.pk)
    assert source_key.status_code == 401 and source_key.json()["error"] == "source_key_not_accepted"
    assert call(APIClient(), project.pk).status_code == 401
    unknown = call(staff, None)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"


# --- out


@pytest.fixture
def history(project, queued, make_rater):
    """Nine labels: three raters on the first three items, the last one of them undone and labeled again."""
    raters = [make_rater(name) for name in ("alice", "bob", "carol")]
    for rater in raters:
        for value in ("positive", "negative", "neutral"):
            label(rater, project, value)
    return raters


def walk(staff, url: str, between=None) -> list[dict]:
    """Follow `next` to the end; `between(page_number)` runs between pages."""
    rows, number = [], 0
    while url:
        page = staff.get(url)
        assert page.status_code == 200, page.content
        rows += page.json()["results"]
        url = page.json()["next"]
        number += 1
        if between and url:
            between(number)
    return rows


def test_the_cursor_lists_every_label_exactly_once_while_labels_are_being_added(project, queued, history, staff,
                                                                                make_rater):
    late = [make_rater(f"late-{n}") for n in range(3)]

    def add_labels(page_number):
        if page_number <= len(late):
            label(late[page_number - 1], project, "positive")
            label(late[page_number - 1], project, "negative")

    rows = walk(staff, f"/api/v1/projects/{project.pk}/labels?limit=2", between=add_labels)
    ids = [row["annotation_id"] for row in rows]
    assert len(ids) == len(set(ids)) == Annotation.objects.filter(project=project).count() == 15
    assert ids == sorted(ids)


def test_a_label_carries_its_item_record_rater_and_provenance(project, queued, history, staff):
    alice = history[0]
    first = staff.get(f"/api/v1/projects/{project.pk}/labels?limit=1").json()["results"][0]
    annotation = Annotation.objects.order_by("id").first()
    assert first == {
        "annotation_id": annotation.pk, "item_id": queued[0].pk, "external_id": queued[0].record.external_id,
        "source": "checkout-app", "rater_id": alice.pk, "rater_username": "alice", "rater_kind": "generalist",
        "actor": "", "provenance": "human", "rule_id": None, "value": "positive",
        "created_at": annotation.created_at.isoformat().replace("+00:00", "Z"), "is_gold": False, "correct": None,
        "undone_at": None, "item_state": QueueItem.objects.get(pk=queued[0].pk).state,
        "consensus": QueueItem.objects.get(pk=queued[0].pk).consensus,
    }


def test_the_filters_are_kept_in_the_next_page(project, queued, history, staff, make_rater):
    dan = make_rater("dan")
    label(dan, project, "positive")
    label(dan, project, "negative")
    services.annotation_undo_last(rater=dan, project=project)
    services.labels_import(project=project, lines=services.labels_parse(ndjson(
        {"external_id": queued[5].record.external_id, "rater": "dan", "value": "neutral"}), fmt="ndjson"))
    base = f"/api/v1/projects/{project.pk}/labels"
    dans = walk(staff, f"{base}?rater=dan&limit=1")
    assert len(dans) == 3 and {r["rater_username"] for r in dans} == {"dan"}
    assert [r["undone_at"] is not None for r in dans] == [False, True, False]
    assert len(walk(staff, f"{base}?rater=dan&include_undone=false&limit=1")) == 2
    assert [r["provenance"] for r in walk(staff, f"{base}?provenance=imported")] == ["imported"]
    since = Annotation.objects.order_by("-id")[1].created_at.isoformat()
    assert len(walk(staff, f"{base}?{_query(since=since)}")) == 2
    assert staff.get(f"{base}?provenance=robot").json()["field"] == "provenance"
    assert staff.get(f"{base}?since=yesterday").json()["field"] == "since"
    bad = staff.get(f"{base}?cursor=bm9wZQ")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cursor"


def _query(**params) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def test_a_page_is_read_in_one_query_however_many_labels_it_holds(project, queued, history, staff,
                                                                  django_assert_max_num_queries):
    url = f"/api/v1/projects/{project.pk}/labels?limit=5000"
    with django_assert_max_num_queries(2):  # the project, then the page
        page = staff.get(url)
    assert len(page.json()["results"]) == 9 and page.json()["next"] is None


def test_the_csv_and_parquet_downloads_hold_the_same_rows_as_the_api(project, queued, history, staff):
    listed = walk(staff, f"/api/v1/projects/{project.pk}/labels")
    answer = staff.get(f"/api/v1/projects/{project.pk}/labels.csv")
    assert answer.status_code == 200 and answer.streaming
    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    assert answer["Content-Disposition"] == f'attachment; filename="project-{project.pk}-labels.csv"'
    table = pd.read_csv(io.BytesIO(b"".join(answer.streaming_content)), dtype=str, keep_default_na=False)
    assert table["annotation_id"].astype(int).tolist() == [r["annotation_id"] for r in listed]
    assert table["value"].tolist() == [r["value"] for r in listed]
    assert table["created_at"].tolist() == [r["created_at"] for r in listed]
    parquet = staff.get(f"/api/v1/projects/{project.pk}/labels.parquet")
    assert parquet.status_code == 200 and parquet["Content-Type"] == "application/vnd.apache.parquet"
    assert f'filename="project-{project.pk}-labels.parquet"' in parquet["Content-Disposition"]
    frame = pd.read_parquet(io.BytesIO(b"".join(parquet.streaming_content)))
    assert frame["annotation_id"].tolist() == [r["annotation_id"] for r in listed]
    assert frame["rater_username"].tolist() == [r["rater_username"] for r in listed]
    assert frame["value"].tolist() == [r["value"] for r in listed]


def test_the_project_admin_page_links_to_the_downloads(project, admin_client):
    page = admin_client.get(f"/label/admin/projects/{project.pk}/").content.decode()
    assert f'href="/api/v1/projects/{project.pk}/labels.csv"' in page
    assert f'href="/api/v1/projects/{project.pk}/labels.parquet"' in page


# --- in


def temp_set(n_items: int = 200) -> tuple[list[str], list[dict]]:
    """The first `n_items` items of Snow et al.'s TEMP set (tests/data/crowd), with their ten labels each."""
    with open(TEMP, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    items = list(dict.fromkeys(r["orig_id"] for r in rows))[:n_items]
    keep = set(items)
    return items, [r for r in rows if r["orig_id"] in keep]


@pytest.fixture
def temp_project(source):
    """A project on TEMP's 200 first items (records queued through the route step) and a rater per worker."""
    items, rows = temp_set()
    project = services.project_create(name="temp", overlap=3, sources=[source], choices=[
        {"value": "1", "label": "Before", "hotkey": "1"}, {"value": "2", "label": "After", "hotkey": "2"}])
    batch = Batch.objects.create(source=source, status=Batch.Status.ADMITTED, format=Batch.Format.NDJSON,
                                 payload="test", sha256="temp", record_count=len(items), ingested_count=len(items))
    Record.objects.bulk_create([Record(batch=batch, source=source, line=n, external_id=orig_id,
                                       features={"orig_id": orig_id}, is_current=True)
                                for n, orig_id in enumerate(items, start=1)])
    services.batch_route(batch_id=batch.pk)
    workers = sorted({r["!amt_worker_ids"] for r in rows})
    raters = [services.rater_create(username=w) for w in workers]
    services.project_add_raters(project=project, raters=raters)
    return project, items, rows


def test_a_real_crowd_set_imported_through_the_api_reaches_the_majority(temp_project, staff):
    project, items, rows = temp_project
    body = [{"external_id": r["orig_id"], "rater": r["!amt_worker_ids"], "value": r["response"]} for r in rows]
    answer = import_labels(staff, project, *body)
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"created": 2000, "unchanged": 0, "items": 200}
    votes: dict[str, Counter] = {}
    for r in rows:
        votes.setdefault(r["orig_id"], Counter())[r["response"]] += 1
    found = {i.record.external_id: i for i in QueueItem.objects.filter(project=project).select_related("record")}
    strict = 0
    for orig_id, counts in votes.items():
        (top, n), *rest = counts.most_common()
        item = found[orig_id]
        assert item.submitted_count == 10 and item.needed >= 10  # imported labels hold slots
        if not rest or rest[0][1] < n:
            strict += 1
            assert (item.state, item.consensus) == ("complete", top), orig_id
        else:
            assert item.consensus is None
    assert strict > 150
    assert Annotation.objects.filter(project=project, provenance="imported", assignment__isnull=True).count() == 2000
    again = import_labels(staff, project, *body)
    assert again.json() == {"created": 0, "unchanged": 2000, "items": 0}
    as_array = staff.post(f"/api/v1/projects/{project.pk}/labels/import", data=orjson.dumps(body[:10]),
                          content_type="application/json")
    assert as_array.json() == {"created": 0, "unchanged": 10, "items": 0}


def test_an_import_with_one_of_each_mistake_lists_them_all_by_line_and_writes_nothing(project, queued, source,
                                                                                       make_rater, staff):
    _ann, bob, _cat = make_rater("ann"), make_rater("bob"), make_rater("cat")
    make_rater("outsider", join=None)
    done = label(bob, project, "positive")
    ext = [item.record.external_id for item in queued]
    earlier = import_labels(staff, project, {"external_id": ext[3], "rater": "cat", "value": "negative"})
    assert earlier.status_code == 200
    services.item_set_gold(item=queued[9], answer="positive")
    unqueued = Record.objects.get(batch=batch_of_records(source, 1))  # admitted, never routed
    before = Annotation.objects.count()
    answer = import_labels(
        staff, project,
        {"external_id": ext[1], "rater": "ann", "value": "positive"},  # 1: good
        b'{"external_id": "x", "rater": ',  # 2: not JSON
        {"external_id": "no-such-record", "rater": "ann", "value": "positive"},  # 3
        {"external_id": unqueued.external_id, "rater": "ann", "value": "positive"},  # 4: not an item
        {"external_id": ext[2], "rater": "nobody", "value": "positive"},  # 5
        {"external_id": ext[2], "rater": "outsider", "value": "positive"},  # 6: not a member
        {"external_id": ext[2], "rater": "ann", "value": "great"},  # 7: not a choice
        {"external_id": ext[4], "rater": "ann", "value": "positive", "created_at": "yesterday"},  # 8
        {"external_id": ext[9], "rater": "ann", "value": "positive"},  # 9: gold
        {"external_id": ext[1], "rater": "ann", "value": "negative"},  # 10: line 1 again
        {"external_id": ext[5], "rater": "ann", "value": "positive", "raters": "x"},  # 11
        {"external_id": ext[5], "source": "elsewhere", "rater": "ann", "value": "positive"},  # 12
        {"external_id": done.item.record.external_id, "rater": "bob", "value": "positive"},  # 13: labeled in Sieve
        {"external_id": ext[3], "rater": "cat", "value": "positive"},  # 14: imported before as negative
        {"external_id": ext[6], "rater": "ann"},  # 15: no value
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "invalid_labels" and body["more"] == 0
    assert [(e["line"], e["field"], e["code"]) for e in body["errors"]] == [
        (2, None, "malformed"), (3, "external_id", "unknown_record"), (4, "external_id", "not_queued"),
        (5, "rater", "unknown_rater"), (6, "rater", "not_a_member"), (7, "value", "invalid_label"),
        (8, "created_at", "invalid_timestamp"), (9, "external_id", "gold_item"), (10, "rater", "duplicate"),
        (11, "raters", "unknown_field"), (12, "source", "unknown_source"), (13, "rater", "already_labeled"),
        (14, "value", "conflict"), (15, "value", "missing"),
    ]
    assert body["errors"][5]["value"] == "great" and "line 1" in body["errors"][8]["detail"]
    assert Annotation.objects.count() == before
    assert QueueItem.objects.get(pk=queued[1].pk).submitted_count == 0


def test_a_conflicting_value_is_refused_with_its_line(project, queued, make_rater, staff):
    make_rater("ann")
    line = {"external_id": queued[0].record.external_id, "rater": "ann", "value": "positive"}
    assert import_labels(staff, project, line).json()["created"] == 1
    answer = import_labels(staff, project, {**line, "external_id": queued[1].record.external_id},
                           {**line, "value": "neutral"})
    assert answer.status_code == 400
    assert [(e["line"], e["code"], e["value"]) for e in answer.json()["errors"]] == [(2, "conflict", "neutral")]
    assert Annotation.objects.filter(provenance="imported").count() == 1


def test_the_error_list_stops_at_a_hundred_and_says_how_many_more(project, queued, make_rater, staff):
    make_rater("ann")
    answer = import_labels(staff, project, *({"external_id": f"missing-{n}", "rater": "ann", "value": "positive"}
                                             for n in range(150)))
    assert len(answer.json()["errors"]) == 100 and answer.json()["more"] == 50
    assert answer.json()["errors"][-1]["line"] == 100


def test_an_import_past_the_limit_is_413_and_an_unknown_format_415(project, queued, make_rater, staff, settings):
    settings.SIEVE_LABEL_IMPORT_MAX = 3
    make_rater("ann")
    rows = [{"external_id": item.record.external_id, "rater": "ann", "value": "positive"} for item in queued[:4]]
    too_many = import_labels(staff, project, *rows)
    assert too_many.status_code == 413 and too_many.json() == {
        "error": "too_many_labels", "detail": "an import takes at most 3 labels; split the file", "limit": 3}
    as_array = staff.post(f"/api/v1/projects/{project.pk}/labels/import", data=orjson.dumps(rows),
                          content_type="application/json")
    assert as_array.status_code == 413
    assert import_labels(staff, project, *rows[:3]).json()["created"] == 3
    wrong = staff.post(f"/api/v1/projects/{project.pk}/labels/import", data=b"x", content_type="text/plain")
    assert wrong.status_code == 415 and wrong.json()["error"] == "unsupported_media_type"


def test_labels_are_imported_from_csv_too(project, queued, make_rater, staff):
    make_rater("ann")
    body = "external_id,rater,value\n" + "".join(f"{i.record.external_id},ann,negative\n" for i in queued[:2])
    answer = staff.post(f"/api/v1/projects/{project.pk}/labels/import", data=body.encode(), content_type="text/csv")
    assert answer.json() == {"created": 2, "unchanged": 0, "items": 2}


# --- assign


def test_staff_assign_an_item_and_the_raters_next_returns_it(project, queued, make_rater, staff):
    rater = make_rater("ann")
    client = client_for(rater)
    current = client.get(f"/api/v1/projects/{project.pk}/next").json()
    assert current["item"] == queued[0].pk
    answer = staff.post(f"/api/v1/items/{queued[6].pk}/assign", {"rater": "ann"}, format="json")
    assert answer.status_code == 201, answer.content
    lease = answer.json()
    assert (lease["item"], lease["rater"], lease["state"], lease["handed_back"]) == (queued[6].pk, "ann", "leased",
                                                                                       current["id"])
    assert client.get(f"/api/v1/projects/{project.pk}/next").json()["id"] == lease["id"]
    again = staff.post(f"/api/v1/items/{queued[6].pk}/assign", {"rater": "ann"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == lease["id"]
    assert Assignment.objects.get(pk=current["id"]).state == "expired"


def test_an_assignment_the_queue_cannot_honour_is_refused_with_a_code(project, queued, make_rater, staff):
    rater = make_rater("ann")
    done = label(rater, project, "positive")
    taken = staff.post(f"/api/v1/items/{done.item_id}/assign", {"rater": "ann"}, format="json")
    assert taken.status_code == 409 and taken.json()["error"] == "not_assignable"
    unknown = staff.post(f"/api/v1/items/{queued[1].pk}/assign", {"rater": "nobody"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["error"] == "unknown_rater"
    make_rater("outsider", join=None)
    outsider = staff.post(f"/api/v1/items/{queued[1].pk}/assign", {"rater": "outsider"}, format="json")
    assert outsider.status_code == 409 and outsider.json()["field"] == "rater"
    short = staff.post(f"/api/v1/items/{queued[1].pk}/assign", {"rater": "ann", "lease_seconds": 1}, format="json")
    assert short.status_code == 400


def test_the_openapi_schema_describes_the_labels_endpoints(client):
    schema = client.get("/api/schema/").content.decode()
    for path in ("/api/v1/projects/{id}/labels:", "/api/v1/projects/{id}/labels.csv:",
                 "/api/v1/projects/{id}/labels.parquet:", "/api/v1/projects/{id}/labels/import:",
                 "/api/v1/items/{id}/assign:"):
        assert path in schema
    assert "LabelPage:" in schema and "ImportRejected:" in schema and "application/vnd.apache.parquet" in schema
