"""`manage.py project_resettle PROJECT_ID`: re-settle a project's open and adjudication items under its settings."""
from django.core.management.base import BaseCommand, CommandError

from labeling import services
from labeling.models import LabelingProject


class Command(BaseCommand):
    help = ("Re-settle a project's open and adjudication items under its current overlap, extra raters and minimum "
            "confidence (as saving those fields in the admin does), and send stuck items to adjudication.")

    def add_arguments(self, parser):
        parser.add_argument("project_id", type=int)

    def handle(self, *args, project_id, **options):
        project = LabelingProject.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"no project {project_id}")
        counts = services.project_resettle(project=project)
        self.stdout.write(f"{project.name}: {counts['items']} item(s) re-settled; {counts['complete']} complete, "
                          f"{counts['adjudication']} to adjudication, {counts['reopened']} reopened, "
                          f"{counts['stuck']} stuck sent to adjudication")
