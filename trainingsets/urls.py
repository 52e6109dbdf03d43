"""Training-set pages, under /training-sets/."""
from django.urls import path

from .views import sets, versions

urlpatterns = [
    path("", sets.sets_page, name="trainingsets"),
    path("<int:pk>/", sets.set_page, name="trainingset"),
    path("<int:pk>/publish", sets.set_publish, name="trainingset-publish"),
    path("<int:pk>/versions/<int:number>/", versions.version_page, name="trainingset-version"),
    path("<int:pk>/versions/<int:number>/progress", sets.version_progress_fragment,
         name="trainingset-version-progress"),
    path("<int:pk>/versions/<int:number>/lineage", versions.version_lineage_fragment,
         name="trainingset-version-lineage"),
    path("<int:pk>/versions/<int:number>/gate/<int:index>/charts", versions.version_gate_charts,
         name="trainingset-version-gate-charts"),
    path("<int:pk>/versions/<int:number>/decide", versions.version_decide_view, name="trainingset-version-decide"),
    path("<int:pk>/versions/<int:number>/make-baseline", versions.version_make_baseline_view,
         name="trainingset-version-make-baseline"),
    path("<int:pk>/versions/<int:number>/rebuild", versions.version_rebuild_view, name="trainingset-version-rebuild"),
]
