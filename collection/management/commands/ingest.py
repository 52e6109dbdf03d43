"""`manage.py ingest FILE --source NAME`: receive a file as a batch and follow it through the workers to its verdict."""
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from collection import selectors, services
from collection.models import Batch
from collection.parsing import PayloadError
from collection.storage import BodyTooLarge, NotGzip

SUFFIXES = {".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}
END_STATES = {Batch.Status.ADMITTED, Batch.Status.QUARANTINED, Batch.Status.REJECTED, Batch.Status.FAILED}
# How far along the pipeline each status is, for the progress bar.
STEPS = {Batch.Status.RECEIVED: 0, Batch.Status.INGESTING: 1, Batch.Status.INGESTED: 2, Batch.Status.VALIDATING: 3}
POLL_SECONDS = 0.2


class ProgressReader:
    """Wraps a file so that reading it moves a progress bar."""

    def __init__(self, handle, bar):
        self.handle, self.bar = handle, bar

    def read(self, size=-1):
        chunk = self.handle.read(size)
        self.bar.update(len(chunk))
        return chunk


class Command(BaseCommand):
    help = ("Ingest a JSON, NDJSON or CSV file (optionally .gz) as a batch of a source, through the same service as "
            "the API, and follow it to its verdict.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", required=True)
        parser.add_argument("--format", choices=sorted(set(SUFFIXES.values())), default=None,
                            help="Default: from the file name (.json, .ndjson/.jsonl, .csv, each optionally .gz).")
        parser.add_argument("--no-wait", action="store_true", help="Only receive; leave the batch to the workers.")
        parser.add_argument("--timeout", type=float, default=600,
                            help="Seconds to wait for the batch's end state (admitted, quarantined, failed); "
                                 "default 600.")

    def handle(self, *args, file: Path, source: str, format: str | None, no_wait: bool, timeout: float,
               **options):
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
        with open(file, "rb") as handle, tqdm(total=file.stat().st_size, unit="B", unit_scale=True, desc="checking",
                                              file=self.stderr._out, disable=not self.stderr.isatty()) as bar:
            try:
                batch, _ = services.batch_receive(source=found, body=ProgressReader(handle, bar), fmt=fmt,
                                                  gzipped=gzipped, actor="command:ingest")
            except (PayloadError, NotGzip, BodyTooLarge) as exc:
                raise CommandError(f"{file}: {exc}") from None
        if batch.status == Batch.Status.DUPLICATE:
            self.stdout.write(f"batch {batch.pk}: duplicate of batch {batch.duplicate_of_id} (same content)")
            return
        if no_wait:
            self.stdout.write(f"batch {batch.pk}: {batch.status}, {batch.record_count} records; the workers take it "
                              "from here")
            return
        batch = self._wait(batch, started=started, timeout=timeout)
        seconds = time.monotonic() - started
        if batch.status not in END_STATES:
            raise CommandError(f"batch {batch.pk}: still {batch.status} after {seconds:.0f} s; the workers carry on "
                               "(is one running? `make run` starts one)")
        note = selectors.batch_last_note(batch_id=batch.pk)
        verdict = f" ({note})" if note and batch.status != Batch.Status.FAILED else ""
        self.stdout.write(f"batch {batch.pk}: {batch.status}{verdict}, {batch.ingested_count} records, "
                          f"{seconds:.1f} s")
        if batch.status == Batch.Status.FAILED:
            raise CommandError(f"batch {batch.pk} failed: {batch.error}")

    def _wait(self, batch: Batch, *, started: float, timeout: float) -> Batch:
        """Follow the batch through the pipeline until its end state or the timeout, on stderr: a bar on a
        terminal, a line per step otherwise."""
        deadline = started + timeout
        tty = self.stderr.isatty()
        bar = tqdm(total=len(STEPS), desc=batch.status, file=self.stderr._out, disable=not tty,
                   bar_format="{desc:<12} {bar} {n}/{total} steps {elapsed}")
        seen = None
        with bar:
            while True:
                batch = selectors.batch_get(batch_id=batch.pk)
                if batch.status != seen:
                    seen = batch.status
                    if tty:
                        bar.set_description_str(seen)
                        bar.update(STEPS.get(seen, len(STEPS)) - bar.n)
                    else:
                        self.stderr.write(f"batch {batch.pk}: {seen} ({time.monotonic() - started:.1f} s)")
                if seen in END_STATES or time.monotonic() >= deadline:
                    return batch
                time.sleep(POLL_SECONDS)
