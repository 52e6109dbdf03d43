"""App config for labeling: raters, projects, the work queue (items, leases), annotations and feedback rules."""
from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_delete, post_save


class LabelingConfig(AppConfig):
    name = "labeling"

    def ready(self):
        from rest_framework.authtoken.models import Token

        from .auth import token_changed, user_saved

        post_delete.connect(token_changed, sender=Token, dispatch_uid="labeling-token-deleted")
        post_save.connect(user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="labeling-user-saved")
        post_delete.connect(token_changed, sender=settings.AUTH_USER_MODEL, dispatch_uid="labeling-user-deleted")
