"""`manage.py baseline_create FILE --source NAME`: profile a reference file as the source's baseline."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from collection import selectors
from collection.parsing import PayloadError
from validation import services


class Command(BaseCommand):
    help = "Profile a reference file (CSV, NDJSON, JSON or Parquet; the training data) as a source's baseline."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", required=True)
        parser.add_argument("--label", default="label", help="The label column of a Parquet file.")
        parser.add_argument("--name", default="")
        parser.add_argument("--inactive", action="store_true", help="Keep it, but leave the active baseline.")

    def handle(self, *args, file: Path, source: str, label: str, name: str, inactive: bool, **options):
        found = selectors.source_get(name=source)
        if found is None:
            raise CommandError(f"no source named {source!r}")
        if not file.is_file():
            raise CommandError(f"{file} is not a file")
        try:
            baseline = services.baseline_create_from_file(source=found, path=file, label=label, name=name,
                                                          activate=not inactive)
        except (PayloadError, services.BaselineError) as exc:
            raise CommandError(f"{file}: {exc}") from None
        state = "active" if baseline.is_active else "inactive"
        self.stdout.write(f"baseline {baseline.pk} of {found.name}: {baseline.row_count} rows, "
                          f"{len(baseline.schema.get('features', {}))} features, {state}")
