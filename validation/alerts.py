"""Alerts: raised on quarantine, on a `warn` verdict, on a failed ingest and on a silent source;
delivered in the app, by email and by signed webhook; closed when their condition clears."""
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import Alert, AlertDelivery
from .selectors import source_silences

log = logging.getLogger(__name__)


def alert_raise(*, kind: str, message: str, source_id: int | None = None, subject: str = "", link: str = "",
                batch_id: int | None = None) -> Alert:
    """Open an alert, or count one more occurrence of the open one of this source (or subject) and kind.

    A new alert is delivered by email and webhook (after the commit); a repeat is not, so a flood
    of bad batches makes one alert that counts them rather than a flood of messages.
    """
    now = timezone.now()
    key = {"source_id": source_id, "subject": subject, "kind": kind, "resolved_at__isnull": True}
    updated = Alert.objects.filter(**key).update(occurrences=F("occurrences") + 1, last_seen_at=now, message=message,
                                                 batch_id=batch_id)
    if updated:
        return Alert.objects.get(**key)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(source_id=source_id, subject=subject, link=link, kind=kind, message=message,
                                         batch_id=batch_id, opened_at=now, last_seen_at=now)
    except IntegrityError:  # raised at the same moment elsewhere: that one is the open alert
        return alert_raise(source_id=source_id, subject=subject, link=link, kind=kind, message=message,
                           batch_id=batch_id)
    transaction.on_commit(lambda: _deliver_later(alert.pk))
    return alert


def alert_resolve(*, kind: str, source_id: int | None = None, subject: str = "") -> int:
    """Close the open alert of this source (or subject) and kind, if any; returns how many closed."""
    return Alert.objects.filter(source_id=source_id, subject=subject, kind=kind, resolved_at__isnull=True).update(
        resolved_at=timezone.now())


def _deliver_later(alert_id: int) -> None:
    from .tasks import deliver_alert

    for channel in channels():
        try:
            deliver_alert.delay(alert_id, channel)
        except Exception:  # the broker is down: the alert is still in the app
            log.exception("alert %s: could not enqueue its %s delivery", alert_id, channel)


def channels() -> list[str]:
    wanted = []
    if settings.SIEVE_ALERT_EMAILS:
        wanted.append("email")
    if settings.SIEVE_ALERT_WEBHOOK_URL:
        wanted.append("webhook")
    return wanted


def alert_payload(alert: Alert) -> dict:
    return {
        "id": alert.pk, "kind": alert.kind, "source": alert.source.name if alert.source_id else None,
        "subject": alert.subject, "link": alert.link, "message": alert.message,
        "batch": alert.batch_id, "occurrences": alert.occurrences, "opened_at": alert.opened_at.isoformat(),
    }


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex: what a receiver recomputes to trust a delivery."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def alert_deliver(*, alert_id: int, channel: str, attempt: int) -> bool:
    """Try one delivery and log it; True when it went through."""
    alert = Alert.objects.select_related("source").get(pk=alert_id)
    payload = alert_payload(alert)
    status_code, error = None, ""
    if channel == "email":
        target = ", ".join(settings.SIEVE_ALERT_EMAILS)
        try:
            send_mail(f"[Sieve] {alert}", alert.message,
                      settings.DEFAULT_FROM_EMAIL, settings.SIEVE_ALERT_EMAILS)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
    else:
        target = settings.SIEVE_ALERT_WEBHOOK_URL
        body = json.dumps(payload).encode()
        timestamp = str(int(timezone.now().timestamp()))
        request = urllib.request.Request(target, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Sieve-Timestamp": timestamp,
            "X-Sieve-Signature": webhook_signature(settings.SIEVE_ALERT_WEBHOOK_SECRET, timestamp, body)})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status_code = response.status
        except urllib.error.HTTPError as exc:
            status_code, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
    ok = not error
    AlertDelivery.objects.create(alert=alert, channel=channel, target=target[:500], attempt=attempt, ok=ok,
                                 status_code=status_code, error=error[:2000])
    return ok


def sources_check_silence() -> dict:
    """Raise an alert for each source silent longer than its expected interval times the tolerance;
    close it for sources that spoke again. A source outage is a data problem."""
    silent = heard = 0
    for entry in source_silences():
        source, since = entry["source"], entry["since"]
        if entry["silent"]:
            alert_raise(source_id=source.pk, kind=Alert.Kind.SILENT_SOURCE,
                        message=f"no batch from {source.name} since {since:%Y-%m-%d %H:%M} UTC "
                                f"(expected every {source.expected_interval})")
            silent += 1
        else:
            heard += alert_resolve(source_id=source.pk, kind=Alert.Kind.SILENT_SOURCE)
    return {"silent": silent, "resolved": heard}
