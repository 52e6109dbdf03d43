"""Data-quality pages for admins."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.quality_home, name="quality-home"),
    path("batches/<int:pk>/", views.batch_page, name="quality-batch"),
    path("batches/<int:pk>/review", views.batch_review, name="quality-batch-review"),
    path("batches/<int:pk>/payload", views.batch_payload, name="quality-batch-payload"),
    path("batches/<int:pk>/make-baseline", views.batch_make_baseline, name="quality-batch-make-baseline"),
    path("baselines/<int:pk>/edit", views.baseline_edit, name="quality-baseline-edit"),
]
