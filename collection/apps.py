"""App config for collection: sources, keys, batches, records and process feedback."""
from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class CollectionConfig(AppConfig):
    name = "collection"

    def ready(self):
        from .auth import key_changed
        from .models import SourceKey

        post_save.connect(key_changed, sender=SourceKey, dispatch_uid="collection-key-saved")
        post_delete.connect(key_changed, sender=SourceKey, dispatch_uid="collection-key-deleted")
