"""`manage.py erase`: erase a record or an actor's feedback here, files included, and print what went (counts only)."""
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from collection.models import Source
from trainingsets.models import Erasure
from trainingsets.services.erasure import (
    erasure_actor,
    erasure_record,
    erasure_retry,
    erasure_rewrite_files,
)
from trainingsets.services.errors import TrainingSetError


class Command(BaseCommand):
    help = ("Erase a record (--source NAME --external-id ID) or an actor's feedback (--actor RAW_ID or "
            "--pseudonym HEX): the database rows go at once, then the batches' payloads are masked and their "
            "Parquet copies rewritten in this process. Prints the tombstone's id and counts, never the data. "
            "Give '-' as the id to read it from standard input (it then stays out of the shell's history). "
            "--retry ERASURE_ID rewrites a failed erasure's files again.")

    def add_arguments(self, parser):
        parser.add_argument("--source", help="The record's source (its name).")
        parser.add_argument("--external-id", help="The record's external id ('-': read from standard input).")
        parser.add_argument("--actor", help="A feedback actor's raw id, as the source sends it ('-': standard input).")
        parser.add_argument("--pseudonym", help="A feedback actor's pseudonym, as Sieve keeps it (64 hex).")
        parser.add_argument("--retry", type=int, metavar="ERASURE_ID", help="Rewrite a failed erasure's files again.")
        parser.add_argument("--reason", default="", help="Why (a ticket number, say); must not name the data.")
        parser.add_argument("--by", metavar="USERNAME", help="Who asked for it (default: recorded as 'system').")

    def handle(self, *args, source=None, external_id=None, actor=None, pseudonym=None, retry=None, reason="",
               by=None, **options):
        chosen = [name for name, value in (("--external-id", external_id), ("--actor", actor),
                                           ("--pseudonym", pseudonym), ("--retry", retry)) if value is not None]
        if len(chosen) != 1:
            raise CommandError("give one of --source with --external-id, --actor, --pseudonym or --retry")
        if (source is None) != (external_id is None):
            raise CommandError("--source and --external-id go together")
        user = None
        if by:
            user = get_user_model().objects.filter(username=by).first()
            if user is None:
                raise CommandError(f"no user named {by!r}")
        try:
            if retry is not None:
                erasure = Erasure.objects.filter(pk=retry).first()
                if erasure is None:
                    raise CommandError(f"no erasure {retry}")
                erasure = erasure_retry(erasure=erasure, enqueue_files=False)
            elif external_id is not None:
                found = Source.objects.filter(name=source).first()
                if found is None:
                    raise CommandError(f"no source named {source!r}")
                erasure = erasure_record(source=found, external_id=_given(external_id), user=user, reason=reason,
                                         enqueue_files=False)
            else:
                erasure = erasure_actor(actor=_given(actor) if actor is not None else None, pseudonym=pseudonym,
                                        user=user, reason=reason)
        except TrainingSetError as exc:
            raise CommandError(f"{exc} [{exc.code}]") from None
        if erasure.status == Erasure.Status.FILES_PENDING:
            erasure = erasure_rewrite_files(erasure_id=erasure.pk)
        self._report(erasure)
        if erasure.status == Erasure.Status.FAILED:
            raise CommandError(f"erasure {erasure.pk} failed: {erasure.error}")

    def _report(self, erasure: Erasure) -> None:
        self.stdout.write(f"erasure {erasure.pk} ({erasure.kind}): {erasure.status}")
        for name, count in erasure.counts.items():
            self.stdout.write(f"  {name}: {count}")
        for entry in erasure.files:
            payload, parquet = entry.get("payload_rewritten") or {}, entry.get("parquet_rewritten") or {}
            line = f"  batch {entry['batch']}: payload "
            line += "missing" if payload.get("missing") else (
                f"{payload.get('masked', 0)} masked, {payload.get('already', 0)} already, "
                f"{payload.get('seconds', 0)} s")
            if entry.get("columnar"):
                line += ", parquet " + ("missing" if parquet.get("missing") else
                                        f"{parquet.get('rows_removed', 0)} rows removed, {parquet.get('seconds', 0)} s")
            self.stdout.write(line)
        versions = list(erasure.versions.order_by("id").values_list("training_set__name", "number"))
        if versions:
            self.stdout.write("  versions marked: " + ", ".join(f"{name} v{number}" for name, number in versions))


def _given(value: str) -> str:
    """The value, or a line read from standard input for '-'."""
    if value != "-":
        return value
    line = sys.stdin.readline()
    return line.rstrip("\r\n")
