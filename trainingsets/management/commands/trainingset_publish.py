"""`manage.py trainingset_publish SET [--comment TEXT] [--no-progress]`: build a new version here, with progress."""
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from trainingsets.models import TrainingSet, TrainingSetVersion
from trainingsets.services import TrainingSetError, version_build, version_progress, version_request

WAIT_SECONDS = 0.5


class Command(BaseCommand):
    help = ("Publish a new version of a training set: request it (as POST /api/v1/training-sets/{id}/versions does) "
            "and build it in this process, showing rows written. Prints the version's number, status, rows and "
            "content hash; exits non-zero when the build fails or another version is being built.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="The training set's name.")
        parser.add_argument("--comment", default="", help="Why this version is published.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, name: str, comment: str, no_progress: bool, **options):
        training_set = TrainingSet.objects.filter(name=name).first()
        if training_set is None:
            raise CommandError(f"no training set named {name!r}")
        try:
            version = version_request(training_set=training_set, comment=comment)
        except TrainingSetError as exc:
            raise CommandError(f"{exc} [{exc.code}]") from None
        with tqdm(total=None, unit="row", unit_scale=True, desc=f"{name} v{version.number}",
                  disable=True if no_progress else None) as bar:
            def progress(written: int, total: int) -> None:
                bar.total = total
                bar.update(written - bar.n)

            version = version_build(version_id=version.pk, progress=progress)
            # The request also queued the build for the workers: if one claimed it first, follow it there.
            while version.status in (TrainingSetVersion.Status.QUEUED, TrainingSetVersion.Status.BUILDING):
                time.sleep(WAIT_SECONDS)
                version.refresh_from_db()
                progress(*version_progress(version))
        if version.status == TrainingSetVersion.Status.FAILED:
            raise CommandError(f"{name} v{version.number} failed: {version.error}")
        self.stdout.write(f"{name} v{version.number}: {version.status}, {version.rows_total} rows, "
                          f"content sha256 {version.content_sha256}")
        if version.status == TrainingSetVersion.Status.REVIEW:
            reasons = "; ".join((version.gate_report or {}).get("reasons", []))
            self.stdout.write(f"held by its gate ({version.gate_verdict}) for a staff decision"
                              + (f": {reasons}" if reasons else ""))
