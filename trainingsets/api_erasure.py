"""The erasure API (staff only): erase a record or an actor's feedback, follow the file rewrite, retry it.

An erasure answers what went (counts), which files are being rewritten and which versions held the data,
never the data itself. Asking again for an erasure whose files are still being rewritten returns it (200);
once everything is gone, a new request is 404 `nothing_to_erase`.
"""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from collection.selectors import source_get
from config.api_errors import refused
from labeling.api import PEOPLE

from .models import Erasure
from .selectors import erasure_get
from .serializers import ErrorSerializer
from .services import TrainingSetError, erasure_actor, erasure_record, erasure_retry


class ErasureInSerializer(serializers.Serializer):
    source = serializers.CharField(required=False, help_text="A record's source (by name), with external_id.")
    external_id = serializers.CharField(required=False, max_length=200)
    actor = serializers.CharField(required=False, help_text="An actor's raw id, as sources send it: hashed here.")
    pseudonym = serializers.CharField(required=False, help_text="Or the actor's pseudonym, as Sieve keeps it.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500,
                                   help_text="Why (a request reference); it must not name the person or the id.")

    def validate(self, data):
        record = "source" in data or "external_id" in data
        actor = "actor" in data or "pseudonym" in data
        if record == actor or (record and not ("source" in data and "external_id" in data)):
            raise serializers.ValidationError("give source and external_id (a record), or actor or pseudonym "
                                              "(an actor's feedback)")
        return data


class ErasureSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name", allow_null=True, read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, read_only=True)
    versions = serializers.SerializerMethodField()

    class Meta:
        model = Erasure
        fields = ["id", "kind", "source", "status", "reason", "counts", "files", "versions", "error",
                  "requested_by", "created_at", "finished_at"]

    def get_versions(self, erasure) -> list[dict]:
        return [{"training_set": v.training_set.name, "number": v.number}
                for v in erasure.versions.select_related("training_set").order_by("training_set_id", "number")]


ERRORS = {400: OpenApiResponse(ErrorSerializer, description="`invalid`, `invalid_erasure` or `reason_holds_data`."),
          401: OpenApiResponse(ErrorSerializer, description="Not signed in (`not_authenticated`)."),
          403: OpenApiResponse(ErrorSerializer, description="Not staff (`permission_denied`)."),
          404: OpenApiResponse(ErrorSerializer, description="`nothing_to_erase`, or no such source (`not_found`).")}


class StaffView(APIView):
    authentication_classes = PEOPLE
    permission_classes = [permissions.IsAdminUser]

    def erasure(self, pk: int) -> Erasure:
        found = erasure_get(pk)
        if found is None:
            raise NotFound(f"no erasure {pk}")
        return found


class ErasureCollection(StaffView):
    @extend_schema(operation_id="erasure_create", request=ErasureInSerializer,
                   responses={202: ErasureSerializer, 200: OpenApiResponse(
                       ErasureSerializer, description="The same erasure, still rewriting its files."), **ERRORS})
    def post(self, request):
        """Erase a record (every revision, its labels, feedback, queue items; payload lines masked and Parquet
        rows removed after the answer) or an actor's feedback and its labels."""
        data = ErasureInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = data.validated_data
        try:
            if "source" in given:
                source = source_get(name=given["source"])
                if source is None:
                    raise NotFound(f"no source named {given['source']!r}")
                erasure = erasure_record(source=source, external_id=given["external_id"], user=request.user,
                                         reason=given.get("reason", ""))
            else:
                erasure = erasure_actor(actor=given.get("actor"), pseudonym=given.get("pseudonym"),
                                        user=request.user, reason=given.get("reason", ""))
        except TrainingSetError as exc:
            raise refused(exc) from None
        created = getattr(erasure, "created", True)
        return Response(ErasureSerializer(erasure).data,
                        status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class ErasureDetail(StaffView):
    @extend_schema(operation_id="erasure_get", responses={200: ErasureSerializer, **ERRORS})
    def get(self, request, pk: int):
        """An erasure: its status (files_pending, done, failed), counts, files and the versions that held it."""
        return Response(ErasureSerializer(self.erasure(pk)).data)


class ErasureRetry(StaffView):
    @extend_schema(operation_id="erasure_retry", request=None, responses={
        202: ErasureSerializer, 409: OpenApiResponse(ErrorSerializer, description="`erasure_not_failed`."),
        **ERRORS})
    def post(self, request, pk: int):
        """Rewrite a failed erasure's files again, after the cause is fixed."""
        try:
            erasure = erasure_retry(erasure=self.erasure(pk))
        except TrainingSetError as exc:
            raise refused(exc) from None
        return Response(ErasureSerializer(erasure).data, status=status.HTTP_202_ACCEPTED)
