"""`manage.py trainingset_export SET NUMBER [--split train] [--format parquet] [--out PATH]`: copy a version's file
out of Sieve's data folder, checked against the manifest's SHA-256."""
import hashlib
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from trainingsets import files, selectors
from trainingsets.models import TrainingSet
from trainingsets.services import TrainingSetError

CHUNK = 1024 * 1024


class Command(BaseCommand):
    help = ("Copy one file of a built version (a split in a format) to PATH, default ./<set>-v<n>-<split>.<format>, "
            "and check its SHA-256 against the version's manifest. Refuses a version that is not readable "
            "(queued, building, failed, rejected) or a format it was not built in.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="The training set's name.")
        parser.add_argument("number", type=int, help="The version's number.")
        parser.add_argument("--split", default="train")
        parser.add_argument("--format", dest="fmt", default="parquet", choices=sorted(files.CONTENT_TYPES))
        parser.add_argument("--out", type=Path, default=None, help="A file, or a folder to write the file into.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, name: str, number: int, split: str, fmt: str, out: Path | None, no_progress: bool,
               **options):
        training_set = TrainingSet.objects.filter(name=name).first()
        if training_set is None:
            raise CommandError(f"no training set named {name!r}")
        version = selectors.version_get(training_set, number)
        if version is None:
            raise CommandError(f"{name} has no version {number}")
        try:
            wanted = files.version_file(version, split, fmt)
        except TrainingSetError as exc:
            raise CommandError(f"{exc} [{exc.code}]") from None
        target = out or Path(wanted.download_name)
        if target.is_dir():
            target = target / wanted.download_name
        marks = selectors.version_erasure_marks(version)
        if marks is not None:
            self.stderr.write(f"note: {marks['rows']} row(s) of this version were erased since it was built; "
                              "a rebuild without them is a new version")
        digest = hashlib.sha256()
        # Written beside the target and renamed once verified: a failed copy never leaves a file that looks whole.
        partial = target.with_name(target.name + ".partial")
        try:
            with open(wanted.path, "rb") as source, open(partial, "wb") as sink, \
                    tqdm(total=wanted.size, unit="B", unit_scale=True, unit_divisor=1024, desc=wanted.name,
                         disable=True if no_progress else None) as bar:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
                    bar.update(len(chunk))
            if digest.hexdigest() != wanted.sha256:
                raise CommandError(f"{wanted.name}: SHA-256 {digest.hexdigest()} differs from the manifest's "
                                   f"{wanted.sha256}: the file on disk is not the one built; nothing written")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        self.stdout.write(f"{target}: {wanted.size} bytes, {wanted.rows} rows, sha256 {wanted.sha256} "
                          "(matches the manifest)")
