"""`manage.py source_create NAME --kind app`: make a source with how validation treats it, and print its first API
key. It sits above the apps because it writes to two of them (collection's source, validation's policy)."""
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from collection import services
from collection.models import Source
from validation.models import PrivacyPolicy, QuarantinePolicy
from validation.services import source_policy_set


class Command(BaseCommand):
    help = "Create a source and print a new API key for it (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", choices=Source.Kind.values, default=Source.Kind.APP)
        parser.add_argument("--expected-interval-minutes", type=int, default=None,
                            help="How often a batch should arrive; longer silence is an outage.")
        parser.add_argument("--from-model", action="store_true", help="Its data is another model's output.")
        parser.add_argument("--description", default="")
        parser.add_argument("--privacy-check", choices=PrivacyPolicy.values, default=PrivacyPolicy.ERROR,
                            help="Personal data in a batch is an error (default), a warning, or not checked (off).")
        parser.add_argument("--quarantine-on", choices=QuarantinePolicy.values, default=QuarantinePolicy.ERRORS,
                            help="Which verdicts quarantine a batch: fail (default; a warning admits it with an "
                                 "alert) or warn (warnings too).")

    def handle(self, *args, name, kind, expected_interval_minutes, from_model, description, privacy_check,
               quarantine_on, **options):
        interval = timedelta(minutes=expected_interval_minutes) if expected_interval_minutes else None
        try:
            with transaction.atomic():
                source = services.source_create(name=name, kind=kind, expected_interval=interval,
                                                from_model=from_model, description=description)
                source_policy_set(source=source, quarantine_on=quarantine_on, privacy_check=privacy_check)
                _, raw = services.source_key_create(source=source, name="initial")
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stderr.write(f"Created source {source.name!r} ({source.get_kind_display()}). Its API key, shown once:")
        self.stdout.write(raw)
