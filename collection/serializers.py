"""API input and output shapes of the collection app."""
import math

from rest_framework import serializers
from rest_framework.reverse import reverse

from config.api_errors import PayloadRejected

from .models import Batch
from .parsing import NUL_MESSAGE, nul_field
from .timestamps import TimestampInvalid, timestamp_parse

MAX_FEEDBACK_EVENTS = 1000
FEEDBACK_FIELDS = {"external_id", "signal", "value", "actor", "occurred_at", "idempotency_key"}


class BatchSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="name", read_only=True)
    status_url = serializers.SerializerMethodField()
    duplicate_of = serializers.PrimaryKeyRelatedField(read_only=True)
    timings = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    columns = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id", "source", "status", "status_url", "format", "gzipped", "payload_bytes", "sha256",
            "idempotency_key", "duplicate_of", "record_count", "ingested_count", "columns", "attempts",
            "received_at", "ingest_started_at", "ingested_at", "timings", "error",
        ]

    def get_status_url(self, batch) -> str:
        return reverse("api-batch-detail", args=[batch.pk], request=self.context.get("request"))

    def get_timings(self, batch) -> dict:
        """Seconds spent waiting in the queue and ingesting."""
        queued = (batch.ingest_started_at - batch.received_at).total_seconds() if batch.ingest_started_at else None
        return {"queued_seconds": queued, "ingest_seconds": batch.ingest_seconds}

    def get_columns(self, batch) -> list[dict]:
        """Each column with the JSON type its values had (int, float, str, bool, null, list or mixed)."""
        return [{"name": name, "type": kind} for name, kind in batch.columns]

    def get_error(self, batch) -> dict | None:
        if not batch.error:
            return None
        return {"message": batch.error, "line": batch.error_line}


class FeedbackEventSerializer(serializers.Serializer):
    """The documented shape of one feedback event (the checks themselves are in `feedback_events_parse`)."""

    external_id = serializers.CharField(max_length=200, help_text="The record the feedback is about.")
    signal = serializers.CharField(max_length=100, help_text="rating, click, thumbs, correction or your own name.")
    value = serializers.JSONField(required=False, help_text="A number, string, boolean or null.")
    actor = serializers.CharField(required=False, help_text="Who gave it; stored only as a keyed pseudonym.")
    occurred_at = serializers.DateTimeField(help_text="ISO 8601; without a zone it is taken as UTC.")
    idempotency_key = serializers.CharField(
        required=False, max_length=200, help_text="Retries with the same key are stored once; "
        "without one, identical events count as one.")


class FeedbackResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    linked = serializers.IntegerField()


def _text(event: dict, name: str, index: int, *, required: bool, limit: int) -> str | None:
    value = event.get(name)
    if value is None or value == "":
        if required:
            raise PayloadRejected(f"event {index}: {name} is missing", index=index, field=name)
        return None
    if not isinstance(value, str):
        raise PayloadRejected(f"event {index}: {name} must be a string, not {type(value).__name__}",
                              index=index, field=name, value=str(value)[:200])
    if len(value) > limit:
        raise PayloadRejected(f"event {index}: {name} is longer than {limit} characters", index=index, field=name)
    return value


def feedback_events_parse(data, *, nul_possible: bool = True) -> list[dict]:
    """Check one event or a list of them; the first problem is refused with its index and field.

    `nul_possible=False`: the caller knows that no text holds a NUL character (its JSON had no `\\u0000`)."""
    events = data if isinstance(data, list) else [data]
    if not events:
        raise PayloadRejected("send one event or a non-empty list of events", field="body")
    if len(events) > MAX_FEEDBACK_EVENTS:
        raise PayloadRejected(f"at most {MAX_FEEDBACK_EVENTS} events per request, got {len(events)}", field="body")
    out = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise PayloadRejected(f"event {index}: must be a JSON object", index=index)
        found = nul_field(event) if nul_possible else None
        if found is not None:
            raise PayloadRejected(f"event {index}: {found} {NUL_MESSAGE}", index=index, field=found)
        extra = event.keys() - FEEDBACK_FIELDS
        if extra:
            name = sorted(extra)[0]
            raise PayloadRejected(f"event {index}: unexpected field {name!r}", index=index, field=name)
        value = event.get("value")
        if isinstance(value, float) and not math.isfinite(value):
            raise PayloadRejected(f"event {index}: value is not a finite number", index=index, field="value")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise PayloadRejected(f"event {index}: value must be a number, string, boolean or null",
                                  index=index, field="value")
        moment = _text(event, "occurred_at", index, required=True, limit=64)
        try:
            occurred_at = timestamp_parse(moment)  # without a zone, UTC
        except TimestampInvalid as exc:
            raise PayloadRejected(f"event {index}: occurred_at {exc}", index=index, field="occurred_at",
                                  value=moment) from None
        out.append({
            "external_id": _text(event, "external_id", index, required=True, limit=200),
            "signal": _text(event, "signal", index, required=True, limit=100),
            "value": value,
            "actor": _text(event, "actor", index, required=False, limit=500),
            "occurred_at": occurred_at,
            "idempotency_key": _text(event, "idempotency_key", index, required=False, limit=200),
        })
    return out
