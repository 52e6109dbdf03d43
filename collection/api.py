"""The collection API: sources upload batches and send process feedback; both read batch status."""
import orjson
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, pagination, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import PayloadRejected, error_response

from . import selectors, services
from .models import Batch, Source
from .parsing import ESCAPED_NUL, PayloadError
from .serializers import (
    BatchSerializer,
    FeedbackEventSerializer,
    FeedbackResultSerializer,
    feedback_events_parse,
)
from .storage import BodyTooLarge, NotGzip
from .timestamps import TimestampInvalid, timestamp_parse

FORMATS = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/jsonlines": "ndjson",
    "text/csv": "csv",
}


def source_key(request):
    """The SourceKey a request was made with, or None (a staff user's session, say)."""
    return request.auth if hasattr(request.auth, "source_id") else None


def source_for(request, name: str | None) -> Source:
    """The source a request acts for: its key's own, or (for staff) the one named. Another's is 403."""
    key = source_key(request)
    if key is not None:
        if name and name != key.source.name:
            raise PermissionDenied(f"this API key belongs to source {key.source.name!r}, not {name!r}")
        return key.source
    if not request.user.is_staff:
        raise PermissionDenied("only a source's API key or a staff user may act for a source")
    if not name:
        raise PayloadRejected("name the source: ?source=<name>", field="source")
    source = selectors.source_get(name=name)
    if source is None:
        raise NotFound(f"no source named {name!r}")
    return source


class BatchCollection(APIView):
    """POST a batch of records; GET the batches of your source, newest first."""

    parser_classes = []  # the body is streamed by the service, never parsed whole by DRF

    @extend_schema(
        operation_id="batch_create",
        summary="Upload a batch",
        description=(
            "Body: a JSON array of records, NDJSON (one record per line) or CSV with a header, chosen by "
            "Content-Type (application/json, application/x-ndjson, text/csv), optionally with "
            "Content-Encoding: gzip. A record is {external_id, features: {name: value}, observed_at?, label?}. "
            "The body is checked while it streams in: a problem is answered with 400 naming the line and the "
            "field. Accepted batches get 202 and are ingested in the background."
        ),
        request={"application/x-ndjson": OpenApiTypes.BINARY, "application/json": OpenApiTypes.BINARY,
                 "text/csv": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                             description="A retried POST with the same key returns the first batch."),
            OpenApiParameter("source", str, description="Optional with a key; required for staff users."),
        ],
        responses={202: BatchSerializer},
    )
    def post(self, request):
        source = source_for(request, request.query_params.get("source"))
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        fmt = FORMATS.get(content_type)
        if fmt is None:
            return error_response("unsupported_media_type", f"Content-Type {content_type or '(none)'!r} is not one of "
                          f"{', '.join(sorted(FORMATS))}", status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in {"gzip", "identity", ""}:
            return error_response("unsupported_media_type", f"Content-Encoding {encoding!r} is not supported; use gzip",
                          status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        length = request.META.get("CONTENT_LENGTH")
        if not length:
            if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
                return error_response("length_required", "send the body with a Content-Length",
                              status.HTTP_411_LENGTH_REQUIRED)
            return error_response("empty_body", "the body is empty: send at least one record", status.HTTP_400_BAD_REQUEST,
                          field="body")
        if int(length) > settings.SIEVE_MAX_UPLOAD_BYTES:
            return _too_large(settings.SIEVE_MAX_UPLOAD_BYTES)
        idempotency_key = request.headers.get("Idempotency-Key") or None
        if idempotency_key and len(idempotency_key) > 200:
            return error_response("invalid_header", "Idempotency-Key is longer than 200 characters",
                          status.HTTP_400_BAD_REQUEST, field="Idempotency-Key")
        key = source_key(request)
        actor = f"api:key {key.prefix}" if key else f"user:{request.user.get_username()}"
        try:
            batch, created = services.batch_receive(
                source=source, body=request._request, fmt=fmt, gzipped=encoding == "gzip",
                idempotency_key=idempotency_key, key=key, actor=actor,
            )
        except PayloadError as exc:
            return error_response("invalid_payload", str(exc), status.HTTP_400_BAD_REQUEST, **exc.as_dict())
        except BodyTooLarge as exc:  # as sent, or once uncompressed (ContentTooLarge)
            return _too_large(exc.limit, str(exc))
        except NotGzip as exc:
            return error_response("invalid_payload", f"Content-Encoding is gzip but the body is not gzip: {exc}",
                          status.HTTP_400_BAD_REQUEST, field="Content-Encoding")
        data = BatchSerializer(batch, context={"request": request}).data
        response = Response(data, status=status.HTTP_202_ACCEPTED)
        response["Location"] = data["status_url"]
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        operation_id="batch_list",
        summary="List batches",
        parameters=[
            OpenApiParameter("source", str), OpenApiParameter("status", str, enum=Batch.Status.values),
            OpenApiParameter("received_after", OpenApiTypes.DATETIME),
            OpenApiParameter("received_before", OpenApiTypes.DATETIME),
        ],
        responses=BatchSerializer(many=True),
    )
    def get(self, request):
        params = request.query_params
        name = params.get("source")
        key = source_key(request)
        source = source_for(request, name) if (key or name) else None
        if source is None and not request.user.is_staff:
            raise PermissionDenied("only staff users may list every source's batches")
        state = params.get("status")
        if state and state not in Batch.Status.values:
            raise PayloadRejected(f"unknown status {state!r}", field="status", value=state)
        bounds = {}
        for name in ("received_after", "received_before"):
            if params.get(name):
                try:
                    bounds[name] = timestamp_parse(params[name])  # without a zone, UTC
                except TimestampInvalid as exc:
                    raise PayloadRejected(f"{name} {exc}", field=name, value=params[name]) from None
        batches = selectors.batch_list(source=source, status=state, **bounds)
        paginator = BatchPagination()
        page = paginator.paginate_queryset(batches, request, view=self)
        return paginator.get_paginated_response(BatchSerializer(page, many=True, context={"request": request}).data)


class BatchPagination(pagination.CursorPagination):
    ordering = ("-received_at", "-id")
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"


class BatchDetail(generics.RetrieveAPIView):
    """A batch's status, counts, timings and errors."""

    serializer_class = BatchSerializer

    @extend_schema(operation_id="batch_get", summary="A batch's status")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_object(self):
        batch = selectors.batch_get(batch_id=self.kwargs["pk"])
        if batch is None:
            raise NotFound(f"no batch {self.kwargs['pk']}")
        key = source_key(self.request)
        if key is not None and batch.source_id != key.source_id:
            raise PermissionDenied("this batch belongs to another source")
        if key is None and not self.request.user.is_staff:
            raise PermissionDenied("only a source's API key or a staff user may read batches")
        return batch


class FeedbackCollection(APIView):
    """POST process feedback: one event or a list of up to 1,000."""

    parser_classes = []

    @extend_schema(
        operation_id="feedback_create",
        summary="Send process feedback",
        request=FeedbackEventSerializer(many=True),
        responses={201: FeedbackResultSerializer, 200: FeedbackResultSerializer},
    )
    def post(self, request):
        source = source_for(request, request.query_params.get("source"))
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return error_response("unsupported_media_type", "send feedback as application/json",
                          status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        body = request._request.read(4 * 1024 * 1024 + 1)
        if len(body) > 4 * 1024 * 1024:
            return _too_large(4 * 1024 * 1024)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return error_response("invalid_payload", f"malformed JSON: {str(exc).split(':')[0]}",
                          status.HTTP_400_BAD_REQUEST, line=exc.lineno, column=exc.colno)
        events = feedback_events_parse(data, nul_possible=ESCAPED_NUL in body)
        result = services.feedback_receive(source=source, events=events)  # one statement: atomic by itself
        return Response(result, status=status.HTTP_201_CREATED if result["accepted"] else status.HTTP_200_OK)


def _too_large(limit: int, message: str | None = None) -> Response:
    return error_response("too_large", message or f"the body is larger than the limit of {limit} bytes",
                          status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, limit=limit)
