"""The labeling API for raters and custom labeling clients: projects, next item, submit, skip, undo, items.

People only: a rater's token (`Authorization: Token …`), a session or basic auth. Source API keys
are not accepted here (401). A project a rater does not belong to, or another rater's assignment,
is a 404: it is never confirmed to exist.
"""
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import authentication, pagination, permissions, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_errors import PayloadRejected, error_response
from config.api_errors import refused as service_refused
from config.security import ThrottledBasicAuthentication, refuse_if_locked_out

from . import selectors, services
from .auth import RaterTokenAuthentication, SourceKeyRefused
from .models import LabelingProject
from .serializers import (
    AnnotationInSerializer,
    AnnotationOutSerializer,
    AssignmentSerializer,
    HistorySerializer,
    ItemAdminSerializer,
    ItemRaterSerializer,
    ProjectSerializer,
    SkipInSerializer,
    TokenInSerializer,
    TokenOutSerializer,
)

NOT_A_RATER = "only raters label: this user has no rater profile"
PEOPLE = [RaterTokenAuthentication, authentication.SessionAuthentication, ThrottledBasicAuthentication,
          SourceKeyRefused]


def refused(exc: services.LabelingError | services.InvalidLabel) -> PayloadRejected:
    """A service's refusal as the API's error shape: {"error", "detail", "field", "value"}."""
    if isinstance(exc, services.InvalidLabel):
        return PayloadRejected(str(exc), code="invalid_label", field=exc.field, value=exc.value)
    return service_refused(exc)


class PersonView(APIView):
    authentication_classes = PEOPLE
    permission_classes = [permissions.IsAuthenticated]

    def project(self, pk: int) -> LabelingProject:
        project = selectors.project_get(user=self.request.user, project_id=pk)
        if project is None:
            raise NotFound(f"no project {pk} that you belong to")
        return project

    def lease_data(self, lease) -> dict:
        """A lease as the rater sees it, with the record it is about (read with the claim, if it was just made)."""
        if getattr(lease, "record", None) is None:
            lease.record = selectors.item_record(item_id=lease.item_id)
        return AssignmentSerializer(lease, context={"request": self.request}).data

    def rater(self):
        rater = selectors.rater_of(self.request.user)
        if rater is None:
            raise PermissionDenied(NOT_A_RATER)
        return rater

    def assignment(self, pk: int):
        found = selectors.assignment_of(user=self.request.user, assignment_id=pk)
        if found is None:
            raise NotFound(f"no assignment {pk} of yours")
        return found


class ProjectList(PersonView):
    @extend_schema(operation_id="labeling_project_list", summary="Your labeling projects",
                   description="A rater's projects (those they belong to); staff see every project.",
                   responses=ProjectSerializer(many=True))
    def get(self, request):
        projects = selectors.project_list(user=request.user)
        return Response(ProjectSerializer(projects, many=True).data)


@extend_schema_view(get=extend_schema(exclude=True))
class ProjectListSlash(ProjectList):
    """/api/v1/projects/ answers too; documented once, without the slash."""


class ProjectDetail(PersonView):
    @extend_schema(operation_id="labeling_project_get", summary="A project, with your progress",
                   responses=ProjectSerializer)
    def get(self, request, pk: int):
        project = self.project(pk)
        data = ProjectSerializer(project).data
        rater = selectors.rater_of(request.user)
        if rater is not None:
            data["progress"] = selectors.rater_progress(rater=rater, project=project)
        return Response(data)


class ItemPagination(pagination.CursorPagination):
    ordering = ("id",)
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"


class ProjectItems(PersonView):
    @extend_schema(operation_id="labeling_item_list", summary="A project's items",
                   description="Staff: every item with its state, slots and consensus. A rater: only the items "
                               "they labeled, with their own label.",
                   responses={200: ItemAdminSerializer(many=True)})
    def get(self, request, pk: int):
        project = self.project(pk)
        items = selectors.project_items(project=project, user=request.user)
        paginator = ItemPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        shape = ItemAdminSerializer if request.user.is_staff else ItemRaterSerializer
        return paginator.get_paginated_response(shape(page, many=True).data)


QUEUE_BUSY = inline_serializer("QueueBusy", fields={
    "error": serializers.CharField(help_text='"queue_busy"'),
    "detail": serializers.CharField(),
    "retry_after": serializers.IntegerField(help_text="Seconds to wait, as in the Retry-After header."),
})


class ProjectNext(PersonView):
    @extend_schema(
        operation_id="labeling_next", summary="The next item to label",
        description="Your live lease in the project if you have one (a reload does not burn items), else a new "
                    "lease on an item that you have not labeled and that still needs labels (gold items come at "
                    "the project's gold rate, and once your regular items run out). 204 means that no item is "
                    "claimable by you: none is left that you may label. 503 `queue_busy` (with `Retry-After`) "
                    "means that items you could label exist but other requests held them for longer than the "
                    "server waits (SIEVE_NEXT_CONTENTION_SECONDS, 2 s): ask again after Retry-After seconds. "
                    "The lease lasts the project's lease time; after it the item goes back to the queue.",
        responses={200: AssignmentSerializer,
                   204: OpenApiResponse(description="No item is claimable by you: no work left for you."),
                   503: OpenApiResponse(response=QUEUE_BUSY, description="Items remain but were held by other "
                                                                         "requests: retry after Retry-After.")},
        parameters=[OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[503],
                                     description="Seconds to wait before asking again (503 only).")],
    )
    def get(self, request, pk: int):
        # Membership is part of the claim itself; only when nothing comes back is it looked up apart,
        # to answer 404 for a project that is not the rater's rather than 204.
        rater, project = selectors.rater_and_project(user=request.user, project_id=pk)
        if rater is None:
            raise PermissionDenied(NOT_A_RATER)
        if project is None:
            raise NotFound(f"no project {pk} that you belong to")
        try:
            lease = services.item_next(rater=rater, project=project, with_record=True)
        except services.QueueBusy as exc:
            busy = error_response(exc.code, str(exc), exc.status, retry_after=exc.retry_after)
            busy["Retry-After"] = str(exc.retry_after)
            return busy
        except services.LabelingError as exc:
            if selectors.project_get(user=request.user, project_id=pk) is None:
                raise NotFound(f"no project {pk} that you belong to") from None
            raise refused(exc) from None
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(self.lease_data(lease))


class ProjectUndo(PersonView):
    @extend_schema(operation_id="labeling_undo", summary="Undo your last submission in the project",
                   description="Withdraws your last label while its item is still open and leases the item to you "
                               "again (your other live lease in the project goes back to the queue).",
                   request=None, responses={200: AssignmentSerializer})
    def post(self, request, pk: int):
        project = self.project(pk)
        try:
            lease = services.annotation_undo_last(rater=self.rater(), project=project)
        except services.LabelingError as exc:
            raise refused(exc) from None
        return Response(self.lease_data(lease))


class ProjectHistory(PersonView):
    @extend_schema(operation_id="labeling_history", summary="Your recent work in the project",
                   responses=HistorySerializer(many=True))
    def get(self, request, pk: int):
        project = self.project(pk)
        rows = selectors.rater_history(rater=self.rater(), project=project, limit=50)
        return Response(HistorySerializer(rows, many=True).data)


class AssignmentAnnotation(PersonView):
    @extend_schema(
        operation_id="labeling_submit", summary="Submit your label for a leased item",
        description="201 with the new annotation; 200 with the same annotation when the same value is sent again "
                    "(a retry). 400 names a value that does not fit the project; 409 when the lease expired and "
                    "the item went to someone else, or the assignment was already finished.",
        request=AnnotationInSerializer, responses={201: AnnotationOutSerializer, 200: AnnotationOutSerializer},
    )
    def post(self, request, pk: int):
        lease = self.assignment(pk)
        if not isinstance(request.data, dict) or "value" not in request.data:
            raise PayloadRejected('send {"value": …}', field="value")
        try:
            annotation, created = services.assignment_submit(assignment=lease, value=request.data["value"])
        except (services.LabelingError, services.InvalidLabel) as exc:
            raise refused(exc) from None
        return Response(AnnotationOutSerializer(annotation).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AssignmentSkip(PersonView):
    @extend_schema(operation_id="labeling_skip", summary="Skip a leased item",
                   description="The item goes back to the queue for others and is not served to you again.",
                   request=SkipInSerializer, responses={200: HistorySerializer})
    def post(self, request, pk: int):
        lease = self.assignment(pk)
        body = SkipInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            lease = services.assignment_skip(assignment=lease, reason=body.validated_data["reason"])
        except services.LabelingError as exc:
            raise refused(exc) from None
        lease.label = None
        return Response(HistorySerializer(lease).data)


class AssignmentDetail(PersonView):
    @extend_schema(operation_id="labeling_assignment_get", summary="One of your assignments",
                   responses=AssignmentSerializer)
    def get(self, request, pk: int):
        return Response(self.lease_data(self.assignment(pk)))


class TokenIssue(APIView):
    """A person's API token for a username and password (raters and staff; the same token each time)."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(operation_id="labeling_token", summary="Get your API token",
                   description="Send it as `Authorization: Token <token>` to the labeling endpoints.",
                   request=TokenInSerializer, responses={200: TokenOutSerializer}, auth=[])
    def post(self, request):
        body = TokenInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticate(request, username=body.validated_data["username"],
                            password=body.validated_data["password"])
        if user is None or not user.is_active:
            refuse_if_locked_out(request)  # 429 too_many_attempts while the login throttle refuses
            raise PayloadRejected("unknown username or wrong password", status_code=status.HTTP_401_UNAUTHORIZED,
                                  code="invalid_credentials", field="password")
        user_logged_in.send(sender=user.__class__, request=request, user=user)  # resets the throttle's count
        rater = selectors.rater_of(user)
        if rater is None and not user.is_staff:
            raise PermissionDenied("only raters and staff get API tokens")
        return Response({"token": services.user_token(user=user)})
