"""`manage.py rater_token USERNAME [--rotate]`: print a rater's API token (made on first use)."""
from django.core.management.base import BaseCommand, CommandError

from labeling import services
from labeling.models import Rater


class Command(BaseCommand):
    help = "Print a rater's API token for `Authorization: Token <token>`; --rotate replaces it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true", help="Replace the token; the old one stops working.")

    def handle(self, *args, username, rotate, **options):
        rater = Rater.objects.select_related("user").filter(user__username=username).first()
        if rater is None:
            raise CommandError(f"no rater named {username!r}")
        self.stdout.write(services.rater_token(rater=rater, rotate=rotate))
