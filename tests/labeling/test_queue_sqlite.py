"""The queue's SQLite copy (what `make run` runs) against its PostgreSQL hot path (labeling/services/hot.py):
one story of leases, labels, retries, skips, undo, expiry and the reads every request makes, told on both
databases, gives the same answers."""
import json
import uuid
from datetime import timedelta

import pytest

from tests.conftest import run_on_sqlite

pytestmark = pytest.mark.slow

CHOICES = [{"value": "positive", "label": "Positive", "hotkey": "1"},
           {"value": "negative", "label": "Negative", "hotkey": "2"}]


def queue_story() -> dict:
    """Three items (overlap 2) and three raters through the queue's services; what was seen, by item index."""
    from django.utils import timezone

    from labeling import selectors, services
    from labeling.models import Annotation, Assignment
    from labeling.services import queue
    from tests import factories

    tag = uuid.uuid4().hex[:6]
    source = factories.source_make()
    project = services.project_create(name=f"story-{tag}", choices=CHOICES, overlap=2, sources=[source])
    services.batch_route(batch_id=factories.batch_of_records(source, 3, prefix=tag).pk)
    items = list(project.items.order_by("id").values_list("id", flat=True))
    index = {pk: i for i, pk in enumerate(items)}
    a, b, c, outsider = [services.rater_create(username=f"story-{tag}-{name}") for name in "abcd"]
    services.project_add_raters(project=project, raters=[a, b, c])
    seen = {}

    def counters(i: int) -> list:
        item = project.items.get(pk=items[i])
        return [item.state, item.leased_count, item.submitted_count, item.skipped_count, item.consensus]

    def error(call) -> str:
        try:
            call()
        except Exception as e:  # the error's class is what is compared
            return type(e).__name__
        return "none"

    la = services.item_next(rater=a, project=project)
    seen["a: lease, the same again"] = [index[la.item_id], services.item_next(rater=a, project=project).pk == la.pk]
    lb, lc = services.item_next(rater=b, project=project), services.item_next(rater=c, project=project)
    seen["b, c: leases"] = [index[lb.item_id], index[lc.item_id]]
    seen["item 0 leased"] = counters(0)
    seen["outsider"] = error(lambda: services.item_next(rater=outsider, project=project))
    seen["claimable for b"] = queue._claimable_exists(b, project)

    first, created = services.assignment_submit(assignment=la, value="positive")
    retried, again = services.assignment_submit(assignment=la, value="positive")
    seen["a: label, retry, other value"] = [created, again, retried.pk == first.pk, error(
        lambda: services.assignment_submit(assignment=la, value="negative"))]
    services.assignment_submit(assignment=lb, value="positive")
    seen["item 0 settled"] = counters(0)

    services.assignment_skip(assignment=lc, reason="unclear")
    seen["item 1 skipped"] = counters(1)
    seen["c after the skip"] = index[services.item_next(rater=c, project=project).item_id]
    la1 = services.item_next(rater=a, project=project)
    services.assignment_submit(assignment=la1, value="negative")
    undo = services.annotation_undo_last(rater=a, project=project)
    seen["a: undo gives a new lease"] = [index[undo.item_id], undo.pk != la1.pk, counters(1)]
    seen["expired"] = services.leases_reclaim(project=project, now=timezone.now() + timedelta(days=30))
    seen["after expiry"] = [counters(1), counters(2)]

    rater, found = selectors.rater_and_project(user=a.user, project_id=project.pk)
    none, missing = selectors.rater_and_project(user=outsider.user, project_id=0)
    mine, theirs = (selectors.assignment_of(user=a.user, assignment_id=la.pk),
                    selectors.assignment_of(user=b.user, assignment_id=la.pk))
    record = selectors.item_record(item_id=items[0])
    seen["reads"] = [rater.pk == a.pk, rater.user is a.user, found.name == project.name, none.pk == outsider.pk,
                     missing, mine.project.name == project.name, mine.state, theirs,
                     record.external_id == f"{tag}-0", record.features == {"text": f"review {tag} 0", "stars": 0}]

    labels = 0
    for _ in range(10):
        leases = [services.item_next(rater=r, project=project) for r in (a, b, c)]
        for lease in filter(None, leases):
            services.assignment_submit(assignment=lease, value="positive")
            labels += 1
        if not any(leases):
            break
    seen["drained"] = [labels, [queue._claimable_exists(r, project) for r in (a, b, c)]]
    seen["items"] = [counters(i) for i in range(3)]
    # The counters agree with the rows: slot-holding leases, and counted human labels.
    seen["rows agree"] = [
        [Assignment.objects.filter(item_id=pk, holds_slot=True).count(),
         Annotation.objects.filter(item_id=pk, provenance=Annotation.Provenance.HUMAN, undone_at__isnull=True).count()]
        == counters(i)[1:3] for i, pk in enumerate(items)]
    return seen


def test_the_sqlite_queue_tells_the_same_story_as_the_postgresql_hot_path(db, tmp_path):
    from django.db import connection

    assert connection.vendor == "postgresql"
    hot = json.loads(json.dumps(queue_story()))  # as the subprocess reports it
    sqlite = run_on_sqlite(tmp_path, __name__, "queue_story")
    assert sqlite == hot
    assert sqlite["a: lease, the same again"] == [0, True]
    assert sqlite["b, c: leases"] == [0, 1]  # item 0's two slots are leased: c gets item 1
    assert sqlite["item 0 leased"] == ["open", 2, 0, 0, None]
    assert sqlite["outsider"] == "NotAllowed"
    assert sqlite["claimable for b"] is True  # b holds a lease, but item 1 and 2 have slots
    assert sqlite["a: label, retry, other value"] == [True, False, True, "AlreadyFinished"]
    assert sqlite["item 0 settled"] == ["complete", 0, 2, 0, "positive"]
    assert sqlite["item 1 skipped"] == ["open", 0, 0, 1, None]
    assert sqlite["c after the skip"] == 2
    assert sqlite["a: undo gives a new lease"] == [1, True, ["open", 1, 0, 1, None]]
    assert sqlite["expired"] == 2
    assert sqlite["after expiry"] == [["open", 0, 0, 1, None], ["open", 0, 0, 0, None]]
    assert sqlite["reads"] == [True, True, True, True, None, True, "submitted", None, True, True]
    assert sqlite["drained"] == [4, [False, False, False]]
    assert sqlite["items"] == [["complete", 0, 2, 0, "positive"], ["complete", 0, 2, 1, "positive"],
                               ["complete", 0, 2, 0, "positive"]]
    assert sqlite["rows agree"] == [True, True, True]
