"""URLs: the API under /api/v1/, its schema and docs, the Django admin, and a health check."""
from django.contrib import admin
from django.db import connection
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from collection import api as collection_api
from labeling import api as labeling_api
from labeling import api_consensus, api_labels
from labeling import urls as labeling_urls
from trainingsets import api as trainingset_api
from trainingsets import api_erasure
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
    path("training-sets/", include("trainingsets.urls")),
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
    path("api/v1/training-sets", trainingset_api.TrainingSetCollection.as_view(), name="api-trainingset-list"),
    path("api/v1/training-sets/<int:pk>", trainingset_api.TrainingSetDetail.as_view(), name="api-trainingset"),
    path("api/v1/training-sets/<int:pk>/versions", trainingset_api.VersionCollection.as_view(),
         name="api-trainingset-versions"),
    path("api/v1/training-sets/<int:pk>/versions/<int:number>", trainingset_api.VersionDetail.as_view(),
         name="api-trainingset-version"),
    path("api/v1/training-sets/<int:pk>/versions/<int:number>/decision", trainingset_api.VersionDecision.as_view(),
         name="api-trainingset-version-decision"),
    path("api/v1/training-sets/<int:pk>/versions/<int:number>/baseline", trainingset_api.VersionBaseline.as_view(),
         name="api-trainingset-version-baseline"),
    path("api/v1/training-sets/<int:pk>/versions/<int:number>/rebuild", trainingset_api.VersionRebuild.as_view(),
         name="api-trainingset-version-rebuild"),
    path("api/v1/training-sets/<int:pk>/versions/<int:number>/diff", trainingset_api.VersionDiff.as_view(),
         name="api-trainingset-version-diff"),
    path("api/v1/training-sets/<int:pk>/versions/<int:number>/lineage", trainingset_api.VersionLineage.as_view(),
         name="api-trainingset-version-lineage"),
    re_path(r"^api/v1/training-sets/(?P<pk>[0-9]+)/versions/(?P<number>[0-9]+)/files/"
            r"(?P<split>[^/]+)\.(?P<fmt>[a-z]+)$",
            trainingset_api.VersionFile.as_view(), name="api-trainingset-version-file"),
    path("api/v1/erasures", api_erasure.ErasureCollection.as_view(), name="api-erasure-list"),
    path("api/v1/erasures/<int:pk>", api_erasure.ErasureDetail.as_view(), name="api-erasure"),
    path("api/v1/erasures/<int:pk>/retry", api_erasure.ErasureRetry.as_view(), name="api-erasure-retry"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
