"""`manage.py labels_import PROJECT_ID FILE`: bring labels from another tool into a project (NDJSON, JSON or CSV)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling import services
from labeling.models import LabelingProject

SUFFIXES = {".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}


class Command(BaseCommand):
    help = ("Import labels into a project through the same service as POST /api/v1/projects/{id}/labels/import: "
            "every line is checked first, all problems are listed with their line, and nothing is written unless "
            "every line is good. Lines already imported with the same value are left as they are.")

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=sorted(set(SUFFIXES.values())), default=None,
                            help="Default: from the file name (.ndjson/.jsonl, .json, .csv).")

    def handle(self, *args, project_id: int, file: Path, format: str | None, **options):
        project = LabelingProject.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"no project {project_id}")
        if not file.is_file():
            raise CommandError(f"{file} is not a file")
        fmt = format or SUFFIXES.get(file.suffix.lower())
        if fmt is None:
            raise CommandError(f"cannot tell the format of {file.name}; pass --format")
        try:
            # A file has no request's size limit: it is imported whole, in one transaction.
            lines = services.labels_parse(file.read_bytes(), fmt=fmt, limit=10**9)
            with tqdm(unit="item", desc="settling", disable=None) as bar:
                result = services.labels_import(project=project, lines=lines, progress=bar.update)
        except services.LabelsRejected as exc:
            for error in exc.errors:
                self.stderr.write(f"line {error['line']}: {error['field'] or '-'}: {error['detail']} "
                                  f"[{error['code']}]")
            raise CommandError(f"{file}: {exc.count} problem(s); nothing was imported") from None
        self.stdout.write(f"{result['created']} labels imported, {result['unchanged']} unchanged, "
                          f"{result['items']} items re-settled")
