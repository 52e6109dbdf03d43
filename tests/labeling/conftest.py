"""Fixtures of the labeling tests: admitted batches of records, a project fed by the source, raters in it."""
import threading
import time

import pytest

from labeling import services
from labeling.models import Rater
from tests.factories import CHOICES, batch_of_records, rater_make


@pytest.fixture
def project(source):
    return services.project_create(name="sentiment", choices=CHOICES, overlap=3, sources=[source],
                                   instructions="Is the review **positive**?")


@pytest.fixture
def make_rater(project):
    def make(name: str | None = None, *, kind: str = Rater.Kind.GENERALIST, domains=(), join=project,
             password: str | None = None) -> Rater:
        return rater_make(name, kind=kind, domains=domains, project=join, password=password)
    return make


@pytest.fixture
def queued(project, source):
    """Ten items in the project's queue, from one admitted batch."""
    batch = batch_of_records(source, 10)
    services.batch_route(batch_id=batch.pk)
    return list(project.items.order_by("id"))


class ItemRowsHeld(threading.Thread):
    """Another connection holding every item row of a project (`SELECT ... FOR UPDATE`), as in the repro
    of issue 10 bug 1, until released, or (`until_probed`) until `next` has looked past the locked rows:
    its probe for a claimable item shows in pg_stat_activity."""

    def __init__(self, project_id: int, *, until_probed: bool = False):
        super().__init__(daemon=True)
        self.project_id, self.until_probed = project_id, until_probed
        self.held, self.released, self.probed = threading.Event(), threading.Event(), False

    def run(self) -> None:
        from django.db import connection, transaction

        from labeling.services.hot import PROBE_MARK
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT id FROM labeling_queueitem WHERE project_id = %s FOR UPDATE", [self.project_id])
                self.held.set()
                deadline = time.monotonic() + 60
                while self.until_probed and not self.released.is_set() and time.monotonic() < deadline:
                    # Activity is a snapshot per transaction unless cleared.
                    cursor.execute("SELECT pg_stat_clear_snapshot()")
                    cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                   "AND position(%s in query) > 0)", [PROBE_MARK])
                    if cursor.fetchone()[0]:
                        self.probed = True
                        return
                    time.sleep(0.01)
                self.released.wait(timeout=60)
        finally:
            self.held.set()
            connection.close()

    def release(self) -> None:
        self.released.set()
        self.join(timeout=60)


@pytest.fixture
def hold_items():
    """`hold_items(project, until_probed=False)`: start an ItemRowsHeld, return it once the rows are locked."""
    holders = []

    def hold(project, *, until_probed: bool = False) -> ItemRowsHeld:
        holder = ItemRowsHeld(project.pk, until_probed=until_probed)
        holders.append(holder)
        holder.start()
        holder.held.wait(timeout=30)
        return holder

    yield hold
    for holder in holders:
        holder.release()
