"""URLs: the API under /api/v1/, its schema and docs, the Django admin, and a health check."""
from django.contrib import admin
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from collection import api as collection_api
from labeling import api as labeling_api
from labeling import api_consensus, api_labels
from labeling import urls as labeling_urls
from validation import api as validation_api


def healthz(request):
    """200 when the database answers; used by load balancers and compose health checks."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns = [
    # The sign-in page sends the signed-in on: staff to data quality, raters to their projects.
    path("", RedirectView.as_view(pattern_name="login", permanent=False)),
    path("quality/", include("validation.urls")),
    path("label/", include("labeling.urls")),
    path("accounts/", include(labeling_urls.account_urlpatterns)),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("api/v1/batches", collection_api.BatchCollection.as_view(), name="api-batch-list"),
    path("api/v1/batches/<int:pk>", collection_api.BatchDetail.as_view(), name="api-batch-detail"),
    path("api/v1/batches/<int:pk>/validation", validation_api.BatchValidation.as_view(), name="api-batch-validation"),
    path("api/v1/batches/<int:pk>/review", validation_api.BatchReview.as_view(), name="api-batch-review"),
    path("api/v1/feedback", collection_api.FeedbackCollection.as_view(), name="api-feedback"),
    path("api/v1/token", labeling_api.TokenIssue.as_view(), name="api-token"),
    path("api/v1/projects", labeling_api.ProjectList.as_view(), name="api-project-list"),
    path("api/v1/projects/", labeling_api.ProjectListSlash.as_view()),
    path("api/v1/projects/<int:pk>", labeling_api.ProjectDetail.as_view(), name="api-project-detail"),
    path("api/v1/projects/<int:pk>/items", labeling_api.ProjectItems.as_view(), name="api-project-items"),
    path("api/v1/projects/<int:pk>/next", labeling_api.ProjectNext.as_view(), name="api-project-next"),
    path("api/v1/projects/<int:pk>/undo", labeling_api.ProjectUndo.as_view(), name="api-project-undo"),
    path("api/v1/projects/<int:pk>/history", labeling_api.ProjectHistory.as_view(), name="api-project-history"),
    path("api/v1/projects/<int:pk>/labels", api_labels.ProjectLabels.as_view(), name="api-project-labels"),
    path("api/v1/projects/<int:pk>/labels.csv", api_labels.ProjectLabelsCsv.as_view(), name="api-project-labels-csv"),
    path("api/v1/projects/<int:pk>/labels.parquet", api_labels.ProjectLabelsParquet.as_view(),
         name="api-project-labels-parquet"),
    path("api/v1/projects/<int:pk>/labels/import", api_labels.ProjectLabelsImport.as_view(),
         name="api-project-labels-import"),
    path("api/v1/items/<int:pk>/assign", api_labels.ItemAssign.as_view(), name="api-item-assign"),
    path("api/v1/assignments/<int:pk>", labeling_api.AssignmentDetail.as_view(), name="api-assignment-detail"),
    path("api/v1/assignments/<int:pk>/annotation", labeling_api.AssignmentAnnotation.as_view(),
         name="api-assignment-annotation"),
    path("api/v1/assignments/<int:pk>/skip", labeling_api.AssignmentSkip.as_view(), name="api-assignment-skip"),
    path("api/v1/projects/<int:pk>/consensus-runs", api_consensus.ProjectConsensusRuns.as_view(),
         name="api-project-consensus-runs"),
    path("api/v1/consensus-runs/<int:pk>", api_consensus.ConsensusRunDetail.as_view(), name="api-consensus-run"),
    path("api/v1/projects/<int:pk>/adjudication", api_consensus.ProjectAdjudicationQueue.as_view(),
         name="api-project-adjudication"),
    path("api/v1/items/<int:pk>/adjudication", api_consensus.ItemAdjudication.as_view(),
         name="api-item-adjudication"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
