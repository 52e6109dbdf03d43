"""The staff labels API: every individual label of a project (paged by cursor, or as CSV/Parquet), a bulk import
of labels, and assigning a given item to a given rater.

Staff only: a rater is answered 403 and a source's API key 401 (people authenticate here, sources do not).
"""
import base64
import binascii
import tempfile
from datetime import timedelta

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from collection.timestamps import TimestampInvalid, timestamp_parse
from config.api_errors import PayloadRejected, error_response

from . import selectors
from .api import PEOPLE, refused
from .models import Annotation, LabelingProject
from .selectors import labels as label_selectors
from .serializers_labels import (
    AssignedSerializer,
    AssignInSerializer,
    ImportRejectedSerializer,
    ImportResultSerializer,
    LabelLineSerializer,
    LabelPageSerializer,
    LabelSerializer,
    LabelsErrorSerializer,
)
from .services import LabelingError, labels_io
from .services.assign import item_assign

PAGE_DEFAULT = 1000
PAGE_MAX = 5000
IMPORT_FORMATS = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "text/csv": "csv",
}
PARQUET_TYPE = "application/vnd.apache.parquet"
STAFF_ONLY = "only staff read and import labels"
ERRORS = {401: LabelsErrorSerializer, 403: LabelsErrorSerializer, 404: LabelsErrorSerializer}


class StaffView(APIView):
    authentication_classes = PEOPLE
    permission_classes = [permissions.IsAuthenticated]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not request.user.is_staff:
            raise PermissionDenied(STAFF_ONLY)

    def perform_content_negotiation(self, request, force=False):
        # Files are answered as files, errors always as JSON, whatever the client accepts.
        return JSONRenderer(), JSONRenderer.media_type

    def project(self, pk: int) -> LabelingProject:
        project = selectors.project_get(user=self.request.user, project_id=pk)
        if project is None:
            raise NotFound(f"no project {pk}")
        return project


def _cursor(after: int) -> str:
    return base64.urlsafe_b64encode(f"after:{after}".encode()).decode().rstrip("=")


def _after(cursor: str) -> int:
    """The annotation id a cursor resumes after; PayloadRejected for one that is not ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        name, _, number = text.partition(":")
        if name != "after" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise PayloadRejected("this cursor is not one that this API gave", code="invalid_cursor", field="cursor",
                              value=cursor) from None


class ProjectLabels(StaffView):
    @extend_schema(
        operation_id="labeling_label_list", summary="Every individual label of a project",
        description="Each label with its item, record, rater (or, for process feedback, the actor's pseudonym), "
                    "provenance (human, process_feedback, imported), gold flags, undo time, and its item's state "
                    "and consensus; oldest first. Follow `next` until it is null: the cursor resumes after the last "
                    "label's id, so every label is listed once even while labels are being added (new ones come "
                    "on later pages). Filters are kept in `next`.",
        parameters=[
            OpenApiParameter("cursor", str, description="From a previous page's `next`."),
            OpenApiParameter("limit", int, description=f"Labels per page, default {PAGE_DEFAULT}, at most {PAGE_MAX}."),
            OpenApiParameter("provenance", str, enum=Annotation.Provenance.values),
            OpenApiParameter("rater", str, description="A rater's username."),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Labels created at or after this time."),
            OpenApiParameter("include_undone", bool, description="Default true: every label, undone ones too."),
        ],
        responses={200: LabelPageSerializer, 400: LabelsErrorSerializer, **ERRORS},
    )
    def get(self, request, pk: int):
        project = self.project(pk)
        params = request.query_params
        after = _after(params["cursor"]) if params.get("cursor") else 0
        limit = _whole(params.get("limit"), "limit", PAGE_DEFAULT)
        limit = min(max(limit, 1), PAGE_MAX)
        provenance = params.get("provenance") or None
        if provenance and provenance not in Annotation.Provenance.values:
            raise PayloadRejected(f"provenance is one of {Annotation.Provenance.values}", field="provenance",
                                  value=provenance)
        since = None
        if params.get("since"):
            try:
                since = timestamp_parse(params["since"])  # without a zone, UTC, as everywhere in the API
            except TimestampInvalid as exc:
                raise PayloadRejected(f"since {exc}", field="since", value=params["since"]) from None
        undone = (params.get("include_undone") or "true").lower()
        if undone not in ("true", "false", "1", "0"):
            raise PayloadRejected("include_undone is true or false", field="include_undone", value=undone)
        rows = label_selectors.labels_page(project=project, after=after, limit=limit, provenance=provenance,
                                           rater=params.get("rater") or None, since=since,
                                           include_undone=undone in ("true", "1"))
        following = None
        if len(rows) == limit:
            query = params.copy()
            query["cursor"] = _cursor(rows[-1]["annotation_id"])
            query["limit"] = str(limit)
            following = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        return Response({"results": LabelSerializer(rows, many=True).data, "next": following})


def _whole(text: str | None, name: str, default: int) -> int:
    if text in (None, ""):
        return default
    try:
        return int(text)
    except ValueError:
        raise PayloadRejected(f"{name} is a whole number", field=name, value=text) from None


def _filename(project: LabelingProject, extension: str) -> str:
    return f"project-{project.pk}-labels.{extension}"


class ProjectLabelsCsv(StaffView):
    @extend_schema(
        operation_id="labeling_label_csv", summary="Every label of a project, as CSV",
        description="The columns of the labels list, one row per label (undone ones too), streamed. Values are "
                    "written as they are; a multiple-choice label is a JSON array. Times are ISO 8601 (UTC, Z).",
        responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request, pk: int):
        project = self.project(pk)
        pieces = (piece.encode() for piece in labels_io.labels_csv_pieces(project=project))
        response = StreamingHttpResponse(pieces, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{_filename(project, "csv")}"'
        return response


class ProjectLabelsParquet(StaffView):
    @extend_schema(
        operation_id="labeling_label_parquet", summary="Every label of a project, as Parquet",
        description="The columns of the labels list, one row per label (undone ones too), in row groups of "
                    "50,000. `value` and `consensus` are typed by the project's label kind (text, int64, list of "
                    "text); the file's metadata `sieve.values` says `typed`, or `json` when a stored value did not "
                    "fit the kind and both columns hold JSON text.",
        responses={(200, PARQUET_TYPE): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request, pk: int):
        project = self.project(pk)
        # On disk, not in memory: the file is written a row group at a time, then sent and deleted on close.
        handle = tempfile.TemporaryFile(prefix="sieve-labels-", suffix=".parquet")
        try:
            labels_io.labels_write_parquet(project=project, out=handle)
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        return FileResponse(handle, as_attachment=True, filename=_filename(project, "parquet"),
                            content_type=PARQUET_TYPE)


class ProjectLabelsImport(StaffView):
    parser_classes = []  # the body is read (bounded) and parsed by the import service

    @extend_schema(
        operation_id="labeling_label_import", summary="Import labels",
        description="Labels from another tool, as a JSON array, NDJSON (`application/x-ndjson`) or CSV with a "
                    "header. Each: `external_id` (a record of the project's sources that is an item of the project), "
                    "`source` (optional when the project has one), `rater` (a member's username), `value`, and "
                    "`created_at` (optional, ISO 8601). Every line is checked first: any problem is answered 400 "
                    "with every problem located by line, and nothing is written. Importing the same lines again "
                    "changes nothing (`unchanged`); another value for the same rater and record is a `conflict`. "
                    "Imported labels take slots and count toward consensus like any other; the items they touch "
                    "are re-settled. At most SIEVE_LABEL_IMPORT_MAX lines (default 50,000) per request: 413 beyond. "
                    "Idempotency is by content (an Idempotency-Key header is not needed and is ignored).",
        request={"application/json": LabelLineSerializer(many=True), "application/x-ndjson": OpenApiTypes.BINARY,
                 "text/csv": OpenApiTypes.BINARY},
        responses={200: ImportResultSerializer, 400: ImportRejectedSerializer, 413: LabelsErrorSerializer,
                   415: LabelsErrorSerializer, **ERRORS},
    )
    def post(self, request, pk: int):
        project = self.project(pk)
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        fmt = IMPORT_FORMATS.get(content_type)
        if fmt is None:
            return error_response("unsupported_media_type", f"Content-Type {content_type or '(none)'!r} is not one "
                                  f"of {', '.join(sorted(IMPORT_FORMATS))}", status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        limit = labels_io.import_limit()
        # The body is parsed whole, as a JSON array batch is: the same bound applies.
        most = settings.SIEVE_MAX_JSON_ARRAY_BYTES
        body = request._request.read(most + 1)
        if len(body) > most:
            return error_response("too_large", f"the body is larger than {most} bytes",
                                  status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, limit=most)
        try:
            lines = labels_io.labels_parse(body, fmt=fmt, limit=limit)
            if not lines:
                raise PayloadRejected("the body holds no label", code="empty_body", field="body")
            result = labels_io.labels_import(project=project, lines=lines)
        except labels_io.TooManyLabels as exc:
            return error_response("too_many_labels", str(exc), status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                                  limit=exc.limit)
        except labels_io.LabelsRejected as exc:
            return Response({"error": exc.code, "detail": str(exc), "errors": exc.shown, "more": exc.more},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response(result)


class ItemAssign(StaffView):
    @extend_schema(
        operation_id="labeling_item_assign", summary="Assign an item to a rater",
        description="Leases the item to the rater: their next `next` returns it. The rater must fit the project "
                    "and must not have leased, labeled or skipped the item before; the item must be open (409 "
                    "`not_assignable` otherwise). Their other live lease in the project goes back to the queue "
                    "(`handed_back`). An item whose slots are all taken gets one more. 201 with the new lease; 200 "
                    "when the rater already holds a live lease on this item.",
        request=AssignInSerializer,
        responses={201: AssignedSerializer, 200: AssignedSerializer, 400: LabelsErrorSerializer,
                   409: LabelsErrorSerializer, **ERRORS},
    )
    def post(self, request, pk: int):
        body = AssignInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = label_selectors.item_for_staff(item_id=pk)
        if item is None:
            raise NotFound(f"no item {pk}")
        username = body.validated_data["rater"]
        rater = label_selectors.rater_by_username(username=username)
        if rater is None:
            raise PayloadRejected("no rater has this username", code="unknown_rater", field="rater", value=username)
        seconds = body.validated_data.get("lease_seconds")
        try:
            lease = item_assign(item=item, rater=rater, by=request.user,
                                lease=None if seconds is None else timedelta(seconds=seconds))
        except LabelingError as exc:
            raise refused(exc) from None
        return Response(AssignedSerializer(lease).data,
                        status=status.HTTP_201_CREATED if lease.created else status.HTTP_200_OK)
