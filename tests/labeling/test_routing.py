"""The route step: admitted batches become queue items of the projects their source feeds, exactly once."""
import threading

import pytest
from django.core.management import call_command
from django.db import connection

from collection.models import Batch, Record
from collection.services import batch_transition
from labeling import services
from labeling.models import QueueItem, RoutedBatch
from labeling.tasks import route_batch
from tests.factories import CHOICES, batch_of_records, project_make


def test_an_admitted_batch_is_queued_once_however_often_it_is_routed(project, source):
    batch = batch_of_records(source, 25)
    first = services.batch_route(batch_id=batch.pk)
    assert [(r.project_id, r.item_count) for r in first] == [(project.pk, 25)]
    assert services.batch_route(batch_id=batch.pk) == []
    assert route_batch(batch.pk) == batch.pk  # the task, called as a function, runs the same service
    assert QueueItem.objects.filter(project=project).count() == 25
    assert RoutedBatch.objects.get().actor == "task:route"
    item = QueueItem.objects.first()
    assert (item.needed, item.state, item.leased_count, item.submitted_count) == (3, "open", 0, 0)


@pytest.mark.parametrize("status", ["quarantined", "rejected", "ingested", "failed"])
def test_a_batch_that_is_not_admitted_is_not_routed(project, source, status):
    batch = batch_of_records(source, 5, status=status)
    assert services.batch_route(batch_id=batch.pk) == []
    assert not QueueItem.objects.exists() and not RoutedBatch.objects.exists()
    with pytest.raises(services.RouteError):
        services.batch_add_to_project(project=project, batch=batch, actor="test")


def test_every_project_of_the_source_gets_the_batch_and_others_do_not(project, source):
    from collection.services import source_create

    twin = project_make(source, name="twin", overlap=2)
    elsewhere = services.project_create(name="elsewhere", choices=CHOICES,
                                        sources=[source_create(name="other-app", kind="app")])
    services.batch_route(batch_id=batch_of_records(source, 4).pk)
    counts = {p.name: p.items.count() for p in (project, twin, elsewhere)}
    assert counts == {"sentiment": 4, "twin": 4, "elsewhere": 0}
    assert set(twin.items.values_list("needed", flat=True)) == {2}


def test_only_current_records_are_queued_and_a_record_once_per_project(project, source):
    batch = batch_of_records(source, 6, prefix="rev")
    Record.objects.filter(batch=batch, line__lte=2).update(is_current=False)  # superseded by a later revision
    assert services.batch_route(batch_id=batch.pk)[0].item_count == 4
    assert services.items_queue_batch(project=project, batch_id=batch.pk) == 0  # already there: nothing added


def test_concurrent_routes_of_one_batch_queue_it_once(transactional_db, project, source):
    batch = batch_of_records(source, 300)
    start, results, errors = threading.Barrier(4), [], []

    def route():
        try:
            start.wait()
            results.append(len(services.batch_route(batch_id=batch.pk)))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=route) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(results) == [0, 0, 0, 1]
    assert QueueItem.objects.count() == 300 and RoutedBatch.objects.get().item_count == 300


def test_an_approved_quarantined_batch_announces_its_admission_after_commit(project, source,
                                                                          django_capture_on_commit_callbacks):
    from collection.signals import batch_admitted

    heard = []

    def listener(sender, batch_id, actor, **kwargs):
        heard.append((batch_id, actor))

    batch_admitted.connect(listener)
    try:
        batch = batch_of_records(source, 3, status=Batch.Status.QUARANTINED)
        with django_capture_on_commit_callbacks(execute=True):
            batch_transition(batch_id=batch.pk, from_status="quarantined", to_status="admitted", actor="user:admin")
        with django_capture_on_commit_callbacks(execute=True):
            batch_transition(batch_id=batch.pk, from_status="admitted", to_status="rejected", actor="user:admin")
    finally:
        batch_admitted.disconnect(listener)
    assert heard == [(batch.pk, "user:admin")]


def test_an_admin_queues_admitted_batches_by_hand(project, source):
    from collection.services import source_create

    late = services.project_create(name="late", choices=CHOICES, sources=[])
    fed = batch_of_records(source, 3)
    stranger = batch_of_records(source_create(name="another", kind="app"), 2)
    held = batch_of_records(source, 2, status=Batch.Status.QUARANTINED)
    late.sources.add(source)
    routed = services.project_queue_admitted(project=late, actor="user:admin")
    assert [r.batch_id for r in routed] == [fed.pk]  # its sources' admitted batches only
    assert services.project_queue_admitted(project=late, actor="user:admin") == []
    by_id = services.project_queue_admitted(project=late, actor="user:admin", batch_ids=[stranger.pk])
    assert [(r.batch_id, r.item_count) for r in by_id] == [(stranger.pk, 2)]
    with pytest.raises(services.RouteError):
        services.project_queue_admitted(project=late, actor="user:admin", batch_ids=[held.pk])
    with pytest.raises(services.RouteError):
        services.project_queue_admitted(project=late, actor="user:admin", batch_ids=[999999])
    assert late.items.count() == 5


def test_the_queue_batches_command_adds_named_batches(project, source, capsys):
    batch = batch_of_records(source, 4)
    call_command("queue_batches", "sentiment", str(batch.pk))
    assert "1 batch(es) queued" in capsys.readouterr().out
    assert project.items.count() == 4
