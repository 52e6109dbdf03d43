"""The collection app: sources send batches and process feedback here."""
