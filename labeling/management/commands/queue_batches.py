"""`manage.py queue_batches PROJECT [BATCH_ID ...]`: add admitted batches to a labeling project by hand."""
from django.core.management.base import BaseCommand, CommandError

from labeling import services
from labeling.models import LabelingProject


class Command(BaseCommand):
    help = ("Queue admitted batches in a project: the named ones, or (without ids) every admitted batch of the "
            "project's sources not queued in it yet. A batch is queued once per project.")

    def add_arguments(self, parser):
        parser.add_argument("project", help="The project's name.")
        parser.add_argument("batch_ids", nargs="*", type=int)

    def handle(self, *args, project, batch_ids, **options):
        found = LabelingProject.objects.filter(name=project).first()
        if found is None:
            raise CommandError(f"no project named {project!r}")
        try:
            routed = services.project_queue_admitted(project=found, actor="command:queue_batches",
                                                     batch_ids=batch_ids or None)
        except services.LabelingError as exc:
            raise CommandError(str(exc)) from None
        for row in routed:
            self.stdout.write(f"batch {row.batch_id}: {row.item_count} new items")
        self.stdout.write(f"{len(routed)} batch(es) queued in {found.name!r}")
