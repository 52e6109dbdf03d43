"""`manage.py rater_create USERNAME --kind expert --domain payments`: make a rater and print their API token."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from labeling import selectors, services
from labeling.models import Rater


class Command(BaseCommand):
    help = "Create a rater (a user with a rater profile), optionally add them to projects, and print their API token."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--kind", choices=Rater.Kind.values, default=Rater.Kind.GENERALIST)
        parser.add_argument("--domain", action="append", default=[], help="An expertise domain (repeatable).")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", default=None, help="Without one the rater cannot log in to the pages.")
        parser.add_argument("--project", action="append", default=[],
                            help="A project to join, by id, slug or name (repeatable).")

    def handle(self, *args, username, kind, domain, email, password, project, **options):
        projects = []
        for ref in project:
            found = selectors.project_find(ref=ref)
            if found is None:
                raise CommandError(f"no project with the id, slug or name {ref!r} (nothing was created)")
            projects.append(found)
        try:
            # All or nothing: a rater left behind by a failed run would make the retry fail on the username.
            with transaction.atomic():
                rater = services.rater_create(username=username, kind=kind, domains=domain, email=email,
                                              password=password)
                for found in projects:
                    services.project_add_raters(project=found, raters=[rater])
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        joined = f", in {', '.join(p.slug for p in projects)}" if projects else ""
        self.stderr.write(f"Created rater {username!r} ({rater.get_kind_display()}{joined}). Their API token:")
        self.stdout.write(services.rater_token(rater=rater))
