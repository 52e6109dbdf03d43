"""`manage.py ingest FILE --source NAME`: receive a file as a batch, ingest it here, show progress and status."""
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from collection import selectors, services
from collection.models import Batch
from collection.parsing import PayloadError
from collection.storage import BodyTooLarge, NotGzip

SUFFIXES = {".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}


class ProgressReader:
    """Wraps a file so that reading it moves a progress bar."""

    def __init__(self, handle, bar):
        self.handle, self.bar = handle, bar

    def read(self, size=-1):
        chunk = self.handle.read(size)
        self.bar.update(len(chunk))
        return chunk


class Command(BaseCommand):
    help = "Ingest a JSON, NDJSON or CSV file (optionally .gz) as a batch of a source, through the same service as the API."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", required=True)
        parser.add_argument("--format", choices=sorted(set(SUFFIXES.values())), default=None,
                            help="Default: from the file name (.json, .ndjson/.jsonl, .csv, each optionally .gz).")
        parser.add_argument("--no-wait", action="store_true", help="Only receive; leave ingesting to the workers.")

    def handle(self, *args, file: Path, source: str, format: str | None, no_wait: bool, **options):
        found = selectors.source_get(name=source)
        if found is None:
            raise CommandError(f"no source named {source!r}")
        if not file.is_file():
            raise CommandError(f"{file} is not a file")
        suffixes = [s for s in file.suffixes if s != ".gz"]
        fmt = format or SUFFIXES.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            raise CommandError(f"cannot tell the format of {file.name}; pass --format")
        gzipped = file.suffix == ".gz"
        started = time.monotonic()
        with open(file, "rb") as handle, tqdm(total=file.stat().st_size, unit="B", unit_scale=True,
                                              desc="checking", disable=None) as bar:
            try:
                batch, _ = services.batch_receive(source=found, body=ProgressReader(handle, bar), fmt=fmt,
                                                  gzipped=gzipped, actor="command:ingest")
            except (PayloadError, NotGzip, BodyTooLarge) as exc:
                raise CommandError(f"{file}: {exc}") from None
        if batch.status == Batch.Status.DUPLICATE:
            self.stdout.write(f"batch {batch.pk}: duplicate of batch {batch.duplicate_of_id} (same content)")
            return
        if not no_wait:
            # Ingest here rather than wait for a worker: the claim makes a worker that also got it do nothing.
            batch = services.batch_ingest(batch_id=batch.pk, actor="command:ingest")
        seconds = time.monotonic() - started
        self.stdout.write(f"batch {batch.pk}: {batch.status}, {batch.record_count} records, {seconds:.1f} s")
        if batch.status == Batch.Status.FAILED:
            raise CommandError(f"batch {batch.pk} failed: {batch.error}")
