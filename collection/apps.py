"""App config for collection: sources, keys, batches, records and process feedback."""
from django.apps import AppConfig


class CollectionConfig(AppConfig):
    name = "collection"
