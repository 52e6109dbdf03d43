"""Labeling pages: the rater's (under /label/), the project admin's (/label/admin/), and sign-in (/accounts/)."""
from django.urls import include, path

from .views import adjudication, project_admin, quality, rater

urlpatterns = [
    path("", rater.rater_home, name="label-home"),
    path("projects/<int:pk>/", rater.label_page, name="label-project"),
    path("projects/<int:pk>/work", rater.label_work, name="label-work"),
    path("projects/<int:pk>/submit", rater.label_submit, name="label-submit"),
    path("projects/<int:pk>/skip", rater.label_skip, name="label-skip"),
    path("projects/<int:pk>/undo", rater.label_undo, name="label-undo"),
    path("projects/<int:pk>/adjudicate/", adjudication.adjudicate_page, name="label-adjudicate"),
    path("projects/<int:pk>/adjudicate/work", adjudication.adjudicate_work, name="label-adjudicate-work"),
    path("projects/<int:pk>/adjudicate/decide", adjudication.adjudicate_decide, name="label-adjudicate-decide"),
    path("admin/", project_admin.projects_page, name="label-admin-projects"),
    path("admin/projects/<int:pk>/", project_admin.project_page, name="label-admin-project"),
    path("admin/projects/<int:pk>/rules/", project_admin.rules_page, name="label-admin-rules"),
    path("admin/projects/<int:pk>/rules/<int:rule_pk>/", project_admin.rule_edit_page, name="label-admin-rule"),
    path("admin/projects/<int:pk>/conflicts/", project_admin.conflicts_page, name="label-admin-conflicts"),
    path("admin/projects/<int:pk>/quality/", quality.quality_page, name="label-quality"),
    path("admin/projects/<int:pk>/quality/raters/<int:rater_id>/", quality.rater_page, name="label-quality-rater"),
    path("admin/projects/<int:pk>/quality/raters/<int:rater_id>/pause", quality.rater_pause_view,
         name="label-quality-pause"),
    path("admin/projects/<int:pk>/quality/raters/<int:rater_id>/resume", quality.rater_resume_view,
         name="label-quality-resume"),
]

# Django's own login, logout and password reset by email; only the login picks where a user lands.
account_urlpatterns = [
    path("login/", rater.SignInView.as_view(), name="login"),
    path("", include("django.contrib.auth.urls")),
]
