"""The training-set API: sets, their versions (publish, decide, baseline, rebuild), file downloads with ETag and
ranges, the diff of two versions and a row's lineage.

People only (a token, a session or basic auth; a source's API key is 401). A user reads a set when staff, its
owner, or a member of one of its reader groups; any other set is a 404, never confirmed to exist. Staff and the
owner publish and edit; decisions, baselines and rebuilds are staff's.
"""
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import PayloadRejected, refused
from labeling.api import PEOPLE

from . import files, selectors
from .models import TrainingSet, TrainingSetVersion
from .serializers import (
    BaselineOutSerializer,
    BuildingErrorSerializer,
    DecisionInSerializer,
    DiffSerializer,
    ErrorSerializer,
    LineageSerializer,
    PublishInSerializer,
    TrainingSetInSerializer,
    TrainingSetSerializer,
    VersionDetailSerializer,
    VersionSerializer,
)
from .services import decisions
from .services.errors import NoPreviousVersion, NotAllowed, NotInVersion, TrainingSetError
from .services.sets import trainingset_create, trainingset_update
from .services.versions import version_progress, version_rebuild, version_request

AUTH_ERRORS = {401: OpenApiResponse(ErrorSerializer, description="Not signed in, or a source's API key "
                                                                   "(`not_authenticated`)."),
               404: OpenApiResponse(ErrorSerializer, description="No such set that you may read (`not_found`).")}
FORBIDDEN = {403: OpenApiResponse(ErrorSerializer, description="`not_allowed`: you may read the set but not do this.")}
NOT_READY = {409: OpenApiResponse(ErrorSerializer, description="`version_not_ready`: the version has no files yet "
                                                               "(queued, building, failed).")}
FORMAT_ENUM = sorted(files.CONTENT_TYPES)


class SetView(APIView):
    authentication_classes = PEOPLE
    permission_classes = [permissions.IsAuthenticated]

    def training_set(self, pk: int) -> TrainingSet:
        found = selectors.trainingset_get_for(self.request.user, pk)
        if found is None:
            raise NotFound(f"no training set {pk} that you may read")
        return found

    def publisher(self, training_set: TrainingSet, doing: str) -> None:
        if not selectors.trainingset_can_publish(self.request.user, training_set):
            raise refused(NotAllowed(f"only staff and the set's owner may {doing}"))

    def version(self, training_set: TrainingSet, number: int) -> TrainingSetVersion:
        found = selectors.version_get(training_set, number)
        if found is None:
            raise NotFound(f"training set {training_set.name} has no version {number}")
        return found

    def set_data(self, training_set: TrainingSet) -> dict:
        # Read again through the selector: the same prefetched shape as the list.
        return TrainingSetSerializer(selectors.trainingset_get_for(self.request.user, training_set.pk)).data

    def version_data(self, version: TrainingSetVersion, *, detail: bool = False) -> dict:
        context = {"progress": version_progress}
        if not detail:
            return VersionSerializer(version, context=context).data
        context["files"] = self.file_links(version)
        context["erased"] = selectors.version_erasure_marks(version)
        return VersionDetailSerializer(version, context=context).data

    def file_links(self, version: TrainingSetVersion) -> list[dict]:
        if not version.readable:
            return []
        splits = (version.manifest or {}).get("splits") or {}
        links = []
        for name, entry in sorted(((version.manifest or {}).get("files") or {}).items()):
            split, _, fmt = name.rpartition(".")
            if split not in splits or fmt not in files.CONTENT_TYPES:
                continue
            path = reverse("api-trainingset-version-file", kwargs={
                "pk": version.training_set_id, "number": version.number, "split": split, "fmt": fmt})
            links.append({"name": name, "url": self.request.build_absolute_uri(path), "sha256": entry.get("sha256"),
                          "bytes": entry.get("bytes"), "rows": entry.get("rows")})
        return links

    def version_url(self, version: TrainingSetVersion) -> str:
        return self.request.build_absolute_uri(reverse("api-trainingset-version", kwargs={
            "pk": version.training_set_id, "number": version.number}))


class TrainingSetCollection(SetView):
    @extend_schema(operation_id="trainingset_list", summary="Training sets you may read",
                   description="Every set for staff; else the sets you own or whose reader groups you are in. Each "
                               "with its label policy, split rule, sources, projects and latest published version.",
                   responses={200: TrainingSetSerializer(many=True), 401: AUTH_ERRORS[401]})
    def get(self, request):
        return Response(TrainingSetSerializer(selectors.trainingset_list_for(request.user), many=True).data)

    @extend_schema(operation_id="trainingset_create", summary="Create a training set (staff)",
                   description="Sources by name, projects by id, reader groups by name; the owner defaults to you. "
                               "400 `invalid_split_rule` or `invalid_policy` name the field at fault.",
                   request=TrainingSetInSerializer,
                   responses={201: TrainingSetSerializer, 400: ErrorSerializer, 401: AUTH_ERRORS[401], **FORBIDDEN})
    def post(self, request):
        if not request.user.is_staff:
            raise refused(NotAllowed("only staff create training sets"))
        body = TrainingSetInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        fields.setdefault("owner", request.user)
        try:
            created = trainingset_create(**fields)
        except TrainingSetError as exc:
            raise refused(exc) from None
        return Response(self.set_data(created), status=status.HTTP_201_CREATED)


class TrainingSetDetail(SetView):
    @extend_schema(operation_id="trainingset_get", summary="A training set", responses={200: TrainingSetSerializer,
                                                                                         **AUTH_ERRORS})
    def get(self, request, pk: int):
        return Response(TrainingSetSerializer(self.training_set(pk)).data)

    @extend_schema(operation_id="trainingset_update", summary="Change a training set (staff or its owner)",
                   description="Any field of the create body but the name. The split rule is fixed once a version "
                               "is published or awaits review: changing it then is 409 `split_rule_locked` (a record "
                               "must never change split).",
                   request=TrainingSetInSerializer(partial=True),
                   responses={200: TrainingSetSerializer, 400: ErrorSerializer, **AUTH_ERRORS, **FORBIDDEN,
                              409: OpenApiResponse(ErrorSerializer, description="`split_rule_locked`.")})
    def patch(self, request, pk: int):
        training_set = self.training_set(pk)
        self.publisher(training_set, "change it")
        body = TrainingSetInSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        name = fields.pop("name", training_set.name)
        if name != training_set.name:
            raise PayloadRejected("a set's name cannot change (its files and URLs carry it)", field="name",
                                  value=name)
        try:
            updated = trainingset_update(training_set=training_set, **fields)
        except TrainingSetError as exc:
            raise refused(exc) from None
        return Response(self.set_data(updated))


class VersionCollection(SetView):
    @extend_schema(operation_id="trainingset_version_list", summary="A set's versions, newest first",
                   description="Each with its status, rows, live progress (rows written of the total while it "
                               "builds), content hash and gate verdict.",
                   responses={200: VersionSerializer(many=True), **AUTH_ERRORS})
    def get(self, request, pk: int):
        versions = list(selectors.version_list(self.training_set(pk)))
        numbers = {v.pk: v.number for v in versions}
        context = {"progress": version_progress, "numbers": numbers}
        return Response(VersionSerializer(versions, many=True, context=context).data)

    @extend_schema(
        operation_id="trainingset_publish", summary="Publish a new version (staff or the owner)",
        description="Queues a build (a Celery task); follow its progress in the version list or at `Location`. "
                    "The build ends `published`, `review` (the gate held it for a staff decision) or `failed`. "
                    "With an `Idempotency-Key` header, a retry with the same key answers 200 with the version the "
                    "first request made, however far its build got. One build per set at a time: while a version "
                    "is queued or building, 409 `version_building` names it.",
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER,
                                     description="Any text up to 200 characters, unique per publish you mean.")],
        request=PublishInSerializer,
        responses={202: VersionSerializer, 200: OpenApiResponse(VersionSerializer, description="The version this "
                                                                "Idempotency-Key already made."),
                   400: ErrorSerializer, **AUTH_ERRORS, **FORBIDDEN,
                   409: OpenApiResponse(BuildingErrorSerializer, description="`version_building`: another "
                                                                             "version is queued or building.")},
    )
    def post(self, request, pk: int):
        training_set = self.training_set(pk)
        self.publisher(training_set, "publish a version")
        body = PublishInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = (request.headers.get("Idempotency-Key") or "").strip() or None
        if key is not None and len(key) > 200:
            raise PayloadRejected("Idempotency-Key is at most 200 characters", field="Idempotency-Key")
        try:
            version = version_request(training_set=training_set, user=request.user,
                                      comment=body.validated_data["comment"], idempotency_key=key)
        except TrainingSetError as exc:
            error = refused(exc)
            building = selectors.version_in_progress(training_set) if exc.code == "version_building" else None
            if building is not None:
                error.where["version"] = building.number
            raise error from None
        # The same Idempotency-Key again: the version the first request made, however far its build got.
        replayed = getattr(version, "replayed", False)
        return self.accepted(version, status.HTTP_200_OK if replayed else status.HTTP_202_ACCEPTED)

    def accepted(self, version: TrainingSetVersion, code: int) -> Response:
        response = Response(self.version_data(version), status=code)
        response["Location"] = self.version_url(version)
        return response


VERSION_PARAMS = [OpenApiParameter("number", int, OpenApiParameter.PATH, description="The version's number.")]


class VersionDetail(SetView):
    @extend_schema(operation_id="trainingset_version_get", summary="A version: manifest, status and files",
                   description="The manifest (counts and label distribution per split, batches with their "
                               "validation verdicts, projects, consensus runs, raters per item, schema, policy, "
                               "split rule, each file's SHA-256 and the content hash), the gate report, the staff "
                               "decision, download links, and `erased` when an erasure marks the version.",
                   parameters=VERSION_PARAMS, responses={200: VersionDetailSerializer, **AUTH_ERRORS})
    def get(self, request, pk: int, number: int):
        return Response(self.version_data(self.version(self.training_set(pk), number), detail=True))


class VersionDecision(SetView):
    @extend_schema(operation_id="trainingset_version_decide", summary="Approve or reject a held version (staff)",
                   description="For a version in `review` (its gate held it): approve (a comment is required) "
                               "publishes it; reject keeps its files but never serves them.",
                   parameters=VERSION_PARAMS, request=DecisionInSerializer,
                   responses={200: VersionDetailSerializer, 400: OpenApiResponse(ErrorSerializer, description=(
                       "`comment_required`.")), **AUTH_ERRORS, **FORBIDDEN,
                       409: OpenApiResponse(ErrorSerializer, description="`not_in_review`.")})
    def post(self, request, pk: int, number: int):
        version = self.version(self.training_set(pk), number)
        body = DecisionInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            decided = decisions.version_decide(version_id=version.pk, user=request.user,
                                               approve=body.validated_data["decision"] == "approve",
                                               comment=body.validated_data["comment"])
        except TrainingSetError as exc:
            raise refused(exc) from None
        return Response(self.version_data(self.version(decided.training_set, decided.number), detail=True))


class VersionBaseline(SetView):
    @extend_schema(operation_id="trainingset_version_baseline", summary="Make a version its sources' baseline (staff)",
                   description="Every source of the set gets a new active baseline from the version's kept profile "
                               "(no new pass over the files); the earlier baselines are kept, inactive.",
                   parameters=VERSION_PARAMS, request=None,
                   responses={200: BaselineOutSerializer, **AUTH_ERRORS, **FORBIDDEN,
                              409: OpenApiResponse(ErrorSerializer, description="`not_published` or `no_profile`.")})
    def post(self, request, pk: int, number: int):
        version = self.version(self.training_set(pk), number)
        try:
            made = decisions.version_make_baseline(version_id=version.pk, user=request.user)
        except TrainingSetError as exc:
            raise refused(exc) from None
        return Response({"baselines": [{"id": b.pk, "source": b.source.name, "name": b.name} for b in made]})


class VersionRebuild(SetView):
    @extend_schema(operation_id="trainingset_version_rebuild", summary="Rebuild a marked version without its erased "
                                                                      "rows (staff)",
                   description="A new version from this version's files minus the rows erased since (the database "
                               "is not read again): 202 with the queued version.",
                   parameters=VERSION_PARAMS, request=None,
                   responses={202: VersionSerializer, **AUTH_ERRORS, **FORBIDDEN,
                              409: OpenApiResponse(ErrorSerializer, description="`not_rebuildable` (nothing erased "
                                                                                "from it) or `version_building`.")})
    def post(self, request, pk: int, number: int):
        version = self.version(self.training_set(pk), number)
        if not request.user.is_staff:
            raise refused(NotAllowed("only staff rebuild a version"))
        try:
            rebuilt = version_rebuild(version=version, user=request.user)
        except TrainingSetError as exc:
            raise refused(exc) from None
        response = Response(self.version_data(rebuilt), status=status.HTTP_202_ACCEPTED)
        response["Location"] = self.version_url(rebuilt)
        return response


class VersionFile(SetView):
    def perform_content_negotiation(self, request, force=False):
        # Files are answered as files, errors always as JSON, whatever the client accepts.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        operation_id="trainingset_version_file", summary="Download a split's file",
        description="Streamed from disk. `ETag` is the file's SHA-256 in the manifest (also in `Repr-Digest`): "
                    "`If-None-Match` with it answers 304. One byte range (`Range: bytes=a-b`, `a-` or `-n`) "
                    "answers 206 with `Content-Range`; a range starting past the end is 416 with "
                    "`Content-Range: bytes */<size>`; several ranges get the whole file. `If-Range` with another "
                    "ETag (the file changed under a resumed download) gets the whole file, 200. A version marked by "
                    "an erasure still serves its files, with `Sieve-Erased-Rows: <rows erased since>` and "
                    "`Sieve-Erasures: <erasures marking it>`.",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The set's id."), *VERSION_PARAMS,
                    OpenApiParameter("split", str, OpenApiParameter.PATH, description="A split of the set's rule."),
                    OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=FORMAT_ENUM,
                                     description="parquet always; csv and jsonl when the set builds them."),
                    OpenApiParameter("Range", str, OpenApiParameter.HEADER, required=False),
                    OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False),
                    OpenApiParameter("If-Range", str, OpenApiParameter.HEADER, required=False),
                    OpenApiParameter("ETag", str, OpenApiParameter.HEADER, response=[200, 206, 304],
                                     description='"<sha256 of the file>"'),
                    OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER, response=[206, 416]),
                    OpenApiParameter("Sieve-Erased-Rows", int, OpenApiParameter.HEADER, response=[200, 206],
                                     description="Only on a version an erasure marks: its rows whose record was "
                                                 "erased since."),
                    OpenApiParameter("Sieve-Erasures", int, OpenApiParameter.HEADER, response=[200, 206],
                                     description="Only on a version an erasure marks: how many erasures (of records "
                                                 "or of an actor's feedback) mark it.")],
        responses={
            **{(code, content_type): OpenApiTypes.BINARY for code in (200, 206)
               for content_type in files.CONTENT_TYPES.values()},
            304: OpenApiResponse(description="Not modified: If-None-Match has the file's ETag."),
            **AUTH_ERRORS,
            404: OpenApiResponse(ErrorSerializer, description="`not_found` (set or version), `unknown_split`, "
                                                              "`format_not_built`, `file_missing`."),
            409: OpenApiResponse(ErrorSerializer, description="`version_not_ready`: queued, building, failed or "
                                                              "rejected."),
            416: OpenApiResponse(ErrorSerializer, description="`range_not_satisfiable`."),
        },
    )
    def get(self, request, pk: str, number: str, split: str, fmt: str):
        version = self.version(self.training_set(int(pk)), int(number))
        try:
            wanted = files.version_file(version, split, fmt)
        except TrainingSetError as exc:
            raise refused(exc) from None
        marks = selectors.version_erasure_marks(version)
        extra = {} if marks is None else {"Sieve-Erased-Rows": str(marks["rows"]),
                                          "Sieve-Erasures": str(len(marks["erasures"]))}
        return files.file_response(request, wanted, extra_headers=extra)


class VersionDiff(SetView):
    @extend_schema(
        operation_id="trainingset_version_diff", summary="What changed from another version",
        description="Rows matched by source and external id: added, removed, relabeled and moved between splits "
                    "(0 under a stable rule), per split, the most frequent label changes and up to 10 examples of "
                    "each. Default `against`: the latest published version before this one.",
        parameters=[*VERSION_PARAMS, OpenApiParameter("against", int, description="The version to compare with.")],
        responses={200: DiffSerializer, 400: ErrorSerializer, **AUTH_ERRORS,
                   404: OpenApiResponse(ErrorSerializer, description="`not_found` or `no_previous_version`."),
                   **NOT_READY},
    )
    def get(self, request, pk: int, number: int):
        training_set = self.training_set(pk)
        version = self.version(training_set, number)
        against = request.query_params.get("against")
        try:
            if against in (None, ""):
                old = selectors.version_previous(version)
                if old is None:
                    raise NoPreviousVersion(f"no published version before {number} to compare with: pass against",
                                            field="against")
            else:
                if not against.isdigit():
                    raise PayloadRejected("against is a version number", field="against", value=against)
                old = self.version(training_set, int(against))
            data = selectors.version_diff(old, version, examples=10)
        except TrainingSetError as exc:
            raise refused(exc) from None
        return Response(DiffSerializer(data).data)


class VersionLineage(SetView):
    @extend_schema(
        operation_id="trainingset_version_lineage", summary="Where a row of the version came from",
        description="Every row with this external id (of the named source): its record revision (or the erasure "
                    "tombstone if erased since), batch, validation run, source, every label on the record's items in "
                    "the set's projects with the rater as a pseudonym and their kind, the consensus run with the "
                    "item's posterior, and adjudications.",
        parameters=[*VERSION_PARAMS, OpenApiParameter("external_id", str, required=True),
                    OpenApiParameter("source", str, description="A source name, when several sources share ids.")],
        responses={200: LineageSerializer, 400: ErrorSerializer, **AUTH_ERRORS, **NOT_READY},
    )
    def get(self, request, pk: int, number: int):
        version = self.version(self.training_set(pk), number)
        external_id = request.query_params.get("external_id") or ""
        if not external_id:
            raise PayloadRejected("give external_id", field="external_id")
        source = request.query_params.get("source") or None
        try:
            rows = selectors.version_lineage(version, external_id, source=source)
            if not rows:
                raise NotInVersion(f"version {number} has no row with external id {external_id!r}"
                                   + (f" from {source}" if source else ""), field="external_id", value=external_id)
        except TrainingSetError as exc:
            raise refused(exc) from None
        return Response(LineageSerializer({"version": number, "external_id": external_id, "rows": rows}).data)
