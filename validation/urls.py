"""Data-quality pages for admins."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.quality_home, name="quality-home"),
    path("batches/<int:pk>/", views.batch_page, name="quality-batch"),
    path("batches/<int:pk>/review", views.batch_review, name="quality-batch-review"),
    path("batches/<int:pk>/retry", views.batch_retry, name="quality-batch-retry"),
    path("batches/<int:pk>/payload", views.batch_payload, name="quality-batch-payload"),
    path("batches/<int:pk>/make-baseline", views.batch_make_baseline, name="quality-batch-make-baseline"),
    path("batches/<int:pk>/charts", views.batch_charts, name="quality-batch-charts"),
    path("sources/", views.sources_list, name="quality-sources"),
    path("sources/<int:pk>/", views.source_page, name="quality-source"),
    path("sources/<int:pk>/drift/", views.drift_page, name="quality-drift"),
    path("sources/<int:pk>/baselines/<int:baseline_pk>/activate", views.baseline_activate,
         name="quality-baseline-activate"),
    path("baselines/<int:pk>/edit", views.baseline_edit, name="quality-baseline-edit"),
]
