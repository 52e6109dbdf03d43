"""The validation API (staff only): a batch's verdict, and an admin's review of a quarantined batch."""
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from collection import selectors as collection_selectors
from collection.serializers import BatchSerializer

from . import selectors, services
from .serializers import ReviewSerializer, ValidationRunSerializer


class BatchValidation(APIView):
    """The verdict on a batch, its anomalies and its per-feature metrics (staff only: a source learns
    whether its batch was admitted from the batch's status, not the reasons)."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(operation_id="batch_validation", summary="A batch's verdict", responses=ValidationRunSerializer)
    def get(self, request, pk: int):
        batch = collection_selectors.batch_get(batch_id=pk)
        if batch is None:
            raise Http404("No Batch matches the given query.")
        run = selectors.run_with_anomalies_get(batch_id=batch.pk)
        if run is None:
            raise NotFound(f"batch {pk} has no verdict yet (it is {batch.status})")
        return Response(ValidationRunSerializer(run).data)


class BatchReview(APIView):
    """Approve or reject a quarantined batch (staff only), with a comment."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(operation_id="batch_review", summary="Review a quarantined batch", request=ReviewSerializer,
                   responses=BatchSerializer)
    def post(self, request, pk: int):
        if not selectors.batch_exists(batch_id=pk):
            raise Http404("No Batch matches the given query.")
        review = ReviewSerializer(data=request.data)
        review.is_valid(raise_exception=True)
        try:
            batch = services.batch_review(batch_id=pk, user=request.user,
                                          approve=review.validated_data["decision"] == "approve",
                                          comment=review.validated_data["comment"])
        except services.ReviewError as exc:
            return Response({"error": "conflict", "detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(BatchSerializer(batch, context={"request": request}).data)
