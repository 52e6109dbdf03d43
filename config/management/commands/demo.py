"""`manage.py demo`: the demo admin, a source with a key and a baseline, a clean batch taken through the pipeline
here (config/pipeline.py: pipeline_run) and a drifted one left to the worker, then the labeling and training-set
parts. Safe to run again."""
import io
import os
import random
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from collection import services
from collection.models import Source
from config.pipeline import pipeline_run
from labeling.demo import demo_labeling
from trainingsets.demo import demo_trainingset
from validation.models import Baseline
from validation.services import baseline_create_from_file

DEMO_USER = "admin"
DEMO_SOURCE = "demo-app"


def demo_records(count: int, seed: int, *, drift: bool = False) -> bytes:
    """NDJSON of a checkout app's events: numbers, categories and a label, as a source would send.

    With `drift`, baskets grow and most orders come from iOS: what a quarantine is for."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    lines = []
    for i in range(count):
        lines.append(orjson.dumps({
            "external_id": f"order-{seed}-{i:05d}",
            "features": {
                "basket_value": round(rng.lognormvariate(4.2 if drift else 3.5, 0.6), 2),
                "items": rng.randint(1, 9),
                "country": rng.choice(["DE", "FR", "NL", "PL", "ES"]),
                "device": rng.choice(["ios"] * 6 + ["android", "web"] if drift else ["ios", "android", "web"]),
                "returning": rng.random() < 0.4,
            },
            "observed_at": (start + timedelta(minutes=7 * i)).isoformat(),
            "label": rng.choice(["ok", "ok", "ok", "fraud"]),
        }))
    return b"\n".join(lines) + b"\n"


class Command(BaseCommand):
    help = "Load the demo data (admin user, demo source and key, a demo batch) and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, port: int, **options):
        password = os.environ.get("SIEVE_DEMO_PASSWORD", "sieve-demo")
        User = get_user_model()
        if not User.objects.filter(username=DEMO_USER).exists():
            User.objects.create_superuser(DEMO_USER, "admin@example.com", password)
        source = Source.objects.filter(name=DEMO_SOURCE).first() or services.source_create(
            name=DEMO_SOURCE, kind=Source.Kind.APP, expected_interval=timedelta(hours=1),
            description="A demo checkout app that sends orders every hour.")
        key_file = settings.DATA_DIR / "demo-key.txt"
        if not key_file.exists() or not source.keys.active().filter(name="demo").exists():
            _, raw = services.source_key_create(source=source, name="demo")
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(raw)
            key_file.chmod(0o600)
        raw = key_file.read_text().strip()
        if not Baseline.objects.filter(source=source).exists():
            with tempfile.TemporaryDirectory() as folder:
                reference = Path(folder) / "training.ndjson"
                reference.write_bytes(demo_records(3000, seed=0))
                baseline_create_from_file(source=source, path=reference, name="demo training data")
        batches = [
            services.batch_receive(source=source, body=io.BytesIO(demo_records(300, seed=seed, drift=drift)),
                                   fmt="ndjson", gzipped=False, idempotency_key=f"demo-batch-{seed}",
                                   actor="command:demo")
            for seed, drift in ((1, False), (2, True))
        ]
        # The clean batch goes through the pipeline's steps here, as a worker would take it, so its records are
        # admitted before the labeling part queues them; the drifted one is left to the worker.
        pipeline_run(batches[0][0].pk)
        labeling = demo_labeling(source=source, clean_batch=batches[0][0], password=password)
        version = demo_trainingset(source=source, projects=[labeling["quality"]],
                                   owner=User.objects.get(username=DEMO_USER))
        url = f"http://127.0.0.1:{port}"
        self.stdout.write(self.style.SUCCESS("\nSieve demo is ready."))
        self.stdout.write(f"  Data quality: {url}/quality/   (login {DEMO_USER} / {password})")
        self.stdout.write(f"  Admin:        {url}/admin/")
        self.stdout.write(f"  API docs:     {url}/api/docs/")
        self.stdout.write(f"  Demo source:  {DEMO_SOURCE}, API key {raw}")
        for (batch, created), expect in zip(batches, ("admitted", "quarantined with drift")):
            state = "new" if created else "already there"
            batch.refresh_from_db(fields=["status"])
            now = batch.status if batch.status in ("admitted", "quarantined") else f"will be {expect}"
            self.stdout.write(f"  Demo batch:   {url}/api/v1/batches/{batch.pk} ({state}; {now})")
        raters = ", ".join(r.user.get_username() for r in labeling["raters"])
        self.stdout.write(f"  Label:        {url}/label/   (login {raters} / {password})")
        for project in labeling["projects"]:
            self.stdout.write(f"  Project:      {url}/label/admin/projects/{project.pk}/ "
                              f"({project.name}, {labeling['items'][project.name]} items)")
        orders, run = labeling["quality"], labeling["run"]
        fitted = f"Dawid-Skene run #{run.pk} {run.status}" if run else "no consensus run yet"
        self.stdout.write(f"  Quality:      {url}/label/admin/projects/{orders.pk}/quality/   (label quality: "
                          f"alpha, {fitted}, raters, bias, cost)")
        self.stdout.write(f"  Adjudicate:   {url}/label/projects/{orders.pk}/adjudicate/   (login rater-expert / "
                          f"{password}; {labeling['adjudication']} item(s) waiting)")
        if version is not None:
            self.stdout.write(f"  Training set: {url}/training-sets/{version.training_set_id}/versions/"
                              f"{version.number}/ ({version.training_set.name} v{version.number}, "
                              f"{version.status}, {version.rows_total} rows)")
        self.stdout.write(f"  Try:          curl -H 'Authorization: Bearer {raw}' {url}/api/v1/batches\n")
