"""Raters at once on PostgreSQL, each on its own connection: 50 of them with no item over-assigned and none lost to
expired leases, and `next` while another transaction holds the rows it would claim."""
import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from labeling import services
from labeling.models import Annotation, Assignment, QueueItem
from tests.conftest import wait_for
from tests.factories import batch_of_records

RATERS, FLAKY, ITEMS, OVERLAP = 50, 10, 1000, 3


def work(rater, project, *, flaky: bool, seed: int, start: threading.Barrier, errors: list, stats: dict) -> None:
    """Label until nothing is left for this rater. A flaky rater has 1 s leases and every fourth item walks
    away from its lease, comes back after it ran out, and sometimes still tries to submit it."""
    rng = random.Random(seed)
    lease_time = timedelta(seconds=1) if flaky else None
    try:
        start.wait()
        idle_since = None
        count = 0
        while True:
            lease = services.item_next(rater=rater, project=project, lease=lease_time)
            if lease is None:
                # Items may still be leased by others who will submit or walk away: wait for them.
                if not QueueItem.objects.filter(project=project, state="open").exclude(
                        annotations__rater=rater).exists():
                    return
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 60:
                    raise AssertionError(f"{rater}: open items remain but no work came for 60 s")
                time.sleep(0.05)
                continue
            idle_since = None
            count += 1
            value = rng.choice(["positive", "negative"])  # two choices and three raters: never a tie
            if flaky and count % 4 == 0:
                # The rater walks away until the lease has run out.
                wait_for(lambda: timezone.now() > lease.expires_at, timeout=10, interval=0.05,
                         what="the lease to run out")
                stats["abandoned"] += 1
                if rng.random() < 0.5:
                    try:
                        services.assignment_submit(assignment=lease, value=value)
                        stats["late_ok"] += 1
                    except services.LeaseLost:
                        stats["late_lost"] += 1
                continue
            try:
                services.assignment_submit(assignment=lease, value=value)
            except services.LeaseLost:
                if not flaky:
                    raise  # a 15-minute lease never runs out in this test
                stats["slow_lost"] += 1  # a 1 s lease can run out between next and submit on a busy machine
    except Exception as exc:  # reported by the test: an assertion in a thread would pass silently
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.slow
def test_fifty_raters_label_a_thousand_items_exactly_three_times_each(transactional_db, source, project, make_rater):
    services.batch_route(batch_id=batch_of_records(source, ITEMS).pk)
    raters = [make_rater(f"r{i:02d}") for i in range(RATERS)]
    start = threading.Barrier(RATERS)
    errors, stats = [], {"abandoned": 0, "late_ok": 0, "late_lost": 0, "slow_lost": 0}
    threads = [threading.Thread(target=work, args=(rater, project),
                                kwargs={"flaky": i < FLAKY, "seed": i, "start": start, "errors": errors, "stats": stats})
               for i, rater in enumerate(raters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    assert stats["abandoned"] > 0  # leases really did expire mid-run

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT q.id, q.state, q.submitted_count, q.leased_count, count(a.id), count(DISTINCT a.rater_id)
              FROM labeling_queueitem q
              LEFT JOIN labeling_annotation a ON a.item_id = q.id AND a.undone_at IS NULL AND a.provenance = 'human'
             WHERE q.project_id = %s GROUP BY q.id""", [project.pk])
        rows = cursor.fetchall()
    assert len(rows) == ITEMS
    wrong = [row for row in rows if row[1:] != ("complete", OVERLAP, 0, OVERLAP, OVERLAP)]
    assert wrong == []
    assert Annotation.objects.filter(project=project).count() == ITEMS * OVERLAP
    assert not Assignment.objects.filter(project=project, state="leased", holds_slot=True).exists()
    for item in QueueItem.objects.filter(project=project).prefetch_related("annotations")[:200]:
        values = [a.value for a in item.annotations.all()]
        assert values.count(item.consensus) >= 2 and item.agreement == values.count(item.consensus) / OVERLAP


def test_next_waits_out_rows_another_transaction_holds_briefly_and_returns_a_lease(transactional_db, project, queued,
                                                                                   make_rater, hold_items, settings):
    settings.SIEVE_NEXT_CONTENTION_SECONDS = 30  # far longer than the rows are held
    rater = make_rater()
    holder = hold_items(project, until_probed=True)  # lets go once `next` found the rows held
    lease = services.item_next(rater=rater, project=project)
    holder.release()
    assert holder.probed, "next never looked past the held rows"
    assert lease is not None and lease.item_id == queued[0].pk


def test_next_raises_queue_busy_when_the_rows_stay_held_past_the_bound(transactional_db, project, queued, make_rater,
                                                                       hold_items, settings):
    settings.SIEVE_NEXT_CONTENTION_SECONDS = 0.3
    rater = make_rater()
    holder = hold_items(project)
    with pytest.raises(services.QueueBusy) as busy:
        services.item_next(rater=rater, project=project)
    holder.release()
    assert busy.value.code == "queue_busy" and busy.value.status == 503 and busy.value.retry_after >= 1
    assert not Assignment.objects.filter(rater=rater).exists()
    assert services.item_next(rater=rater, project=project) is not None  # released: work again


def test_next_answers_none_at_once_when_only_other_raters_work_is_held(transactional_db, project, queued, make_rater,
                                                                       hold_items, settings):
    # Held rows that this rater could not take anyway (labeled by them already) are not contention.
    settings.SIEVE_NEXT_CONTENTION_SECONDS = 30
    rater = make_rater()
    for _ in queued:
        lease = services.item_next(rater=rater, project=project)
        services.assignment_submit(assignment=lease, value="positive")
    holder = hold_items(project)
    assert services.item_next(rater=rater, project=project) is None  # not QueueBusy after 30 s
    holder.release()
