"""The consensus-run API (staff only) and the adjudication API (staff and the project's experts).

People only, as the rest of the labeling API: a token, a session or basic auth; a source's API key is
a 401. Consensus runs are staff only (a rater gets 403). The adjudication queue and decisions are for
staff and for the project's subject-matter experts of its domains: a project the user does not belong
to is a 404, a member who may not adjudicate gets 403 `not_allowed`.
"""
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import pagination, permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from config.api_errors import PayloadRejected

from . import services
from .api import PersonView, refused
from .models import ConsensusRun
from .selectors.adjudication import adjudication_item, adjudication_queue, adjudication_waiting, items_for_adjudication
from .selectors.consensus import consensus_run_get, consensus_run_list
from .serializers_consensus import (
    AdjudicationInSerializer,
    AdjudicationItemSerializer,
    AdjudicationSerializer,
    ApiErrorSerializer,
    ConsensusRunDetailSerializer,
    ConsensusRunInSerializer,
    ConsensusRunSerializer,
)


class RunPagination(pagination.CursorPagination):
    ordering = ("-id",)
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"


class QueuePagination(pagination.CursorPagination):
    ordering = ("id",)
    page_size = 20
    max_page_size = 200
    page_size_query_param = "page_size"


class ConsensusRunPage(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ConsensusRunSerializer(many=True)


class AdjudicationQueuePage(serializers.Serializer):
    waiting = serializers.IntegerField(help_text="Items of the project waiting for adjudication.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AdjudicationItemSerializer(many=True)


CURSOR = [OpenApiParameter("cursor", str, description="From `next` or `previous`."),
          OpenApiParameter("page_size", int)]
REFUSED = OpenApiResponse(ApiErrorSerializer, description="Refused, with a code and what it is about.")


class StaffView(PersonView):
    permission_classes = [permissions.IsAdminUser]


class ProjectConsensusRuns(StaffView):
    @extend_schema(operation_id="consensus_run_list", summary="A project's consensus runs", parameters=CURSOR,
                   description="Newest first, without the per-rater matrices (see a run's own URL).",
                   responses={200: ConsensusRunPage})
    def get(self, request, pk: int):
        project = self.project(pk)
        paginator = RunPagination()
        page = paginator.paginate_queryset(consensus_run_list(project=project),
                                           request, view=self)
        return paginator.get_paginated_response(
            ConsensusRunSerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="consensus_run_request", summary="Run the project's consensus now",
        description="Queues a run of the project's consensus method (Dawid-Skene or majority) over every "
                    "counted label: 202 with the new run. While a run is queued or running, 200 with that run "
                    "(nothing new is queued). The body may set the model's parameters.",
        request=ConsensusRunInSerializer,
        responses={202: ConsensusRunSerializer, 200: ConsensusRunSerializer, 400: REFUSED})
    def post(self, request, pk: int):
        project = self.project(pk)
        body = ConsensusRunInSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        try:
            run = services.consensus_run_request(project=project, trigger=ConsensusRun.Trigger.DEMAND,
                                                 requested_by=request.user, parameters=body.validated_data)
        except services.ConsensusParametersInvalid as exc:
            raise PayloadRejected(str(exc), code="invalid_parameters", field="parameters") from None
        return Response(ConsensusRunSerializer(run, context={"request": request}).data,
                        status=status.HTTP_202_ACCEPTED if run.created else status.HTTP_200_OK)


class ConsensusRunDetail(StaffView):
    @extend_schema(operation_id="consensus_run_get", summary="A consensus run",
                   description="Its parameters, which labels it saw (highest annotation id, count, SHA-256), its "
                               "status and error, and the model: classes, priors, each rater's confusion matrix "
                               "and accuracy.",
                   responses={200: ConsensusRunDetailSerializer})
    def get(self, request, pk: int):
        run = consensus_run_get(run_id=pk)
        if run is None:
            raise NotFound(f"no consensus run {pk}")
        return Response(ConsensusRunDetailSerializer(run, context={"request": request}).data)


class ProjectAdjudicationQueue(PersonView):
    @extend_schema(operation_id="adjudication_queue", summary="Items waiting for adjudication",
                   description="Oldest first, each with every label (its rater's username, kind, gold accuracy and "
                               "model accuracy) and the latest consensus run's posterior.",
                   parameters=CURSOR, responses={200: AdjudicationQueuePage, 403: REFUSED})
    def get(self, request, pk: int):
        project = self.project(pk)
        try:
            services.adjudicator_check(user=request.user, project=project)
        except services.LabelingError as exc:
            raise refused(exc) from None
        paginator = QueuePagination()
        page = paginator.paginate_queryset(adjudication_queue(project=project), request, view=self)
        items = items_for_adjudication(project=project, items=list(page))
        return Response({"waiting": adjudication_waiting(project=project), "next": paginator.get_next_link(),
                         "previous": paginator.get_previous_link(),
                         "results": AdjudicationItemSerializer(items, many=True, context={"request": request}).data})


class ItemAdjudication(PersonView):
    @extend_schema(
        operation_id="adjudication_decide", summary="Decide an item: its final label, or unlabelable",
        description='`{"value": ..., "reason": "..."}` sets the final label; `{"unlabelable": true, "reason": '
                    '"..."}` (staff) closes the item without one. 201 with the decision; 200 with the same '
                    "decision when the same body is sent again (a retry). 400: a value that does not fit the "
                    "project, or no reason; 403: not an adjudicator of the project; 409 `already_adjudicated` "
                    "when someone decided it already, `not_in_adjudication` when it is not waiting (only staff "
                    "may override an open or complete item).",
        request=AdjudicationInSerializer,
        responses={201: AdjudicationSerializer, 200: AdjudicationSerializer, 400: REFUSED, 403: REFUSED,
                   409: REFUSED})
    def post(self, request, pk: int):
        item = adjudication_item(user=request.user, item_id=pk)
        if item is None:
            raise NotFound(f"no item {pk} in a project of yours")
        body = AdjudicationInSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["unlabelable"] == ("value" in data):
            raise PayloadRejected('send {"value": …, "reason": …} or {"unlabelable": true, "reason": …}',
                                  field="value")
        try:
            if data["unlabelable"]:
                decision, created = services.item_close_unlabelable(item=item, user=request.user,
                                                                    reason=data["reason"])
            else:
                decision, created = services.item_adjudicate(item=item, user=request.user, value=data["value"],
                                                             reason=data["reason"])
        except (services.LabelingError, services.InvalidLabel) as exc:
            raise refused(exc) from None
        return Response(AdjudicationSerializer(decision).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
