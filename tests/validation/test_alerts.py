"""Alerts: one open per source and kind, delivered by email and signed webhook, closed when the cause clears."""
import http.server
import json
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from collection import services as collection
from collection.models import Batch
from collection.storage import data_path
from tests.conftest import free_port, start_worker, wait_for
from tests.factories import baseline_from_records, batch_ingested, batch_received, checkout_records
from validation import alerts, services
from validation.models import Alert, AlertDelivery


def judged(source, body: bytes) -> Batch:
    return services.batch_validate(batch_id=batch_ingested(source, body).pk)


def test_quarantines_make_one_alert_that_counts_them_and_closes_when_reviewed(source, admin_user):
    first = judged(source, checkout_records(20, seed=1))
    second = judged(source, checkout_records(20, seed=2, prefix="s"))
    alert = Alert.objects.get(source=source, kind="quarantine", resolved_at__isnull=True)
    assert alert.occurrences == 2 and alert.batch_id == second.pk and "no baseline" in alert.message
    services.batch_review(batch_id=first.pk, user=admin_user, approve=True)
    assert Alert.objects.get(pk=alert.pk).resolved_at is None  # one batch still waits
    services.batch_review(batch_id=second.pk, user=admin_user, approve=False)
    assert Alert.objects.get(pk=alert.pk).resolved_at is not None


def test_a_clean_verdict_closes_a_warning(source, tmp_path):
    baseline_from_records(source, tmp_path, checkout_records(3000))
    alerts.alert_raise(source_id=source.pk, kind="warn", message="earlier warning")
    assert judged(source, checkout_records(2000, seed=3, prefix="c")).status == "admitted"
    assert not Alert.objects.filter(source=source, kind="warn", resolved_at__isnull=True).exists()


def test_a_failed_ingest_raises_an_alert_and_the_next_good_batch_closes_it(source, django_capture_on_commit_callbacks):
    batch = batch_received(source, checkout_records(5))
    data_path(batch.payload).write_bytes(b"not json\n")
    with django_capture_on_commit_callbacks(execute=True):
        assert collection.batch_ingest(batch_id=batch.pk).status == "failed"
    alert = Alert.objects.get(source=source, kind="ingest_failed")
    assert alert.batch_id == batch.pk and "line 1" in alert.message
    judged(source, checkout_records(5, seed=4, prefix="ok"))
    assert Alert.objects.get(pk=alert.pk).resolved_at is not None


def test_a_source_silent_past_its_interval_raises_an_alert_until_it_speaks(source):
    source.expected_interval = timedelta(hours=1)
    source.created_at = timezone.now() - timedelta(hours=3)
    source.save()
    assert alerts.sources_check_silence() == {"silent": 1, "resolved": 0}
    assert alerts.sources_check_silence()["silent"] == 1
    assert Alert.objects.get(source=source, kind="silent_source").occurrences == 2
    batch_received(source, checkout_records(3))
    assert alerts.sources_check_silence() == {"silent": 0, "resolved": 1}


def test_an_alert_is_emailed_and_the_attempt_logged(source, settings):
    settings.SIEVE_ALERT_EMAILS = ["data-team@example.com"]
    alert = alerts.alert_raise(source_id=source.pk, kind="quarantine", message="batch 1 quarantined")
    assert alerts.alert_deliver(alert_id=alert.pk, channel="email", attempt=1)
    assert mail.outbox[0].to == ["data-team@example.com"] and "checkout-app" in mail.outbox[0].subject
    assert AlertDelivery.objects.get().ok


class Receiver:
    """A webhook receiver on 127.0.0.1 that checks the signature and fails the first `failures` calls."""

    def __init__(self, secret: str, failures: int):
        self.secret, self.failures, self.calls = secret, failures, []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = alerts.webhook_signature(receiver.secret, self.headers["X-Sieve-Timestamp"], body)
                valid = self.headers["X-Sieve-Signature"] == expected
                receiver.calls.append((valid, json.loads(body)))
                code = 500 if len(receiver.calls) <= receiver.failures else (200 if valid else 401)
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    hook = Receiver("hook-secret", failures=1)
    yield hook
    hook.close()


def test_a_webhook_is_signed_and_each_attempt_logged(source, settings, receiver):
    settings.SIEVE_ALERT_WEBHOOK_URL, settings.SIEVE_ALERT_WEBHOOK_SECRET = receiver.url, "hook-secret"
    alert = alerts.alert_raise(source_id=source.pk, kind="quarantine", message="batch 9 quarantined")
    assert not alerts.alert_deliver(alert_id=alert.pk, channel="webhook", attempt=1)
    assert alerts.alert_deliver(alert_id=alert.pk, channel="webhook", attempt=2)
    assert [valid for valid, _ in receiver.calls] == [True, True]
    assert receiver.calls[0][1]["kind"] == "quarantine" and receiver.calls[0][1]["source"] == "checkout-app"
    assert list(AlertDelivery.objects.values_list("attempt", "ok", "status_code")) == [(1, False, 500), (2, True, 200)]
    settings.SIEVE_ALERT_WEBHOOK_SECRET = "another-secret"  # the receiver refuses what it cannot verify
    assert not alerts.alert_deliver(alert_id=alert.pk, channel="webhook", attempt=3)


@pytest.mark.worker
def test_a_worker_retries_a_failing_webhook_with_backoff(transactional_db, tmp_path, data_dir, celery_queue, source,
                                                         settings, receiver):
    settings.SIEVE_ALERT_WEBHOOK_URL = receiver.url  # so this process enqueues a webhook delivery
    worker = start_worker(tmp_path, data_dir=data_dir, queue=celery_queue, SIEVE_ALERT_WEBHOOK_URL=receiver.url,
                          SIEVE_ALERT_WEBHOOK_SECRET="hook-secret", SIEVE_ALERT_BACKOFF=1)
    try:
        alert = alerts.alert_raise(source_id=source.pk, kind="silent_source", message="quiet")
        wait_for(lambda: AlertDelivery.objects.filter(alert=alert, ok=True).exists(), timeout=60,
                 what="the webhook to get through")
    finally:
        worker.stop()
    assert list(AlertDelivery.objects.filter(alert=alert).values_list("attempt", "ok")) == [(1, False), (2, True)]
    assert [valid for valid, _ in receiver.calls] == [True, True]
