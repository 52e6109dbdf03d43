"""`manage.py labels_export PROJECT_ID --format csv|parquet -o FILE`: every individual label of a project to a file."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling import services
from labeling.models import LabelingProject
from labeling.selectors.labels import labels_count


class Command(BaseCommand):
    help = ("Write every label of a project (undone ones too) with its item, record, rater and provenance to a CSV "
            "or Parquet file: the same columns as GET /api/v1/projects/{id}/labels.")

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("--format", choices=["csv", "parquet"], default=None,
                            help="Default: from the file name (.csv or .parquet).")
        parser.add_argument("-o", "--output", type=Path, required=True)

    def handle(self, *args, project_id: int, format: str | None, output: Path, **options):
        project = LabelingProject.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"no project {project_id}")
        fmt = format or {".csv": "csv", ".parquet": "parquet"}.get(output.suffix.lower())
        if fmt is None:
            raise CommandError(f"cannot tell the format of {output.name}; pass --format csv or parquet")
        with tqdm(total=labels_count(project=project), unit="label", desc="exporting", disable=None) as bar:
            if fmt == "csv":
                with open(output, "w", encoding="utf-8", newline="") as out:
                    count = services.labels_write_csv(project=project, out=out, progress=bar.update)
            else:
                with open(output, "wb") as out:
                    count = services.labels_write_parquet(project=project, out=out, progress=bar.update)
        self.stdout.write(f"{count} labels of project {project.name!r} written to {output}")
