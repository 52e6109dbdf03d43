"""The queue's one-statement claim and submit on PostgreSQL: Django's cursor, no prepared statements, states
from the choices, and the lease's durability trade only when the setting asks for it."""
from django.db import connection
from django.test import override_settings

from collection.models import Record
from labeling import services
from labeling.models import Annotation, Assignment, QueueItem
from labeling.services import hot


def setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def prepared() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


def test_claim_probe_and_submit_leave_no_prepared_statement_on_the_connection(project, queued, make_rater):
    rater = make_rater()
    for _ in range(3):  # psycopg prepares a statement run often enough on a server-binding cursor
        lease = services.item_next(rater=rater, project=project, with_record=True)
        record = Record.objects.get(queue_items=lease.item_id)  # read with the claim, in the same statement
        assert (lease.record.external_id, lease.record.features) == (record.external_id, record.features)
        assert hot.claimable(rater_id=rater.pk, project_id=project.pk)
        services.assignment_submit(assignment=lease, value="positive")
    assert Annotation.objects.filter(rater=rater).count() == 3
    assert prepared() == 0  # PgBouncer in transaction mode would hand them to other clients' connections


def test_a_lease_commits_durably_unless_the_setting_trades_it(project, queued, make_rater):
    # The test runs in one transaction: a SET LOCAL made by the claim would still show here.
    assert setting("synchronous_commit") == "on"
    services.item_next(rater=make_rater(), project=project)
    assert setting("synchronous_commit") == "on"
    with override_settings(SIEVE_LEASE_ASYNC_COMMIT=True):
        lease = services.item_next(rater=make_rater(), project=project)
    assert lease.state == Assignment.State.LEASED and lease.holds_slot
    assert setting("synchronous_commit") == "off"


def test_the_statements_name_no_state_of_their_own():
    values = {v for choices in (QueueItem.State, Assignment.State, Annotation.Provenance) for v in choices.values}
    for sql in (hot.CLAIM, hot.CLAIM_WITH_RECORD, hot.CLAIMABLE, hot.SUBMIT):
        assert not [v for v in values if f"'{v}'" in sql]
