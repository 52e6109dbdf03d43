"""The admin pages with 100 features and 10,000 batches: median and p95 per page through gunicorn.

    flock /tmp/sieve-bench.lock .venv/bin/python bench/pages.py            # the issue's sizes
    flock /tmp/sieve-bench.lock .venv/bin/python bench/pages.py --batches 1000 --requests 10   # quick

The world, on PostgreSQL in a database of its own (sieve_bench_pages, dropped, made and migrated):
`--sources` sources with keys and three baselines each (two older, one active), `--batches` batches
spread over the last 365 days, each with a ValidationRun that carries a real report and a real
profile of 100 features (60 numeric, 40 categorical, and a label; made once by validation.stats on a
synthetic frame, the same JSON in every run, as large as production's), the anomalies of failed
runs, the status transitions, a DailyProfile per source, baseline and day (real merged profile JSON,
metrics varied from day to day), and open and resolved alerts. Tables are filled with COPY, then
ANALYZEd as autovacuum would.

Each page is fetched by a logged-in staff session (cookie from /admin/login/) from a real gunicorn
(the harness's, 4 sync workers): `--warmup` requests, then `--requests` timed one after the other.
The floor is GET /healthz (one SELECT 1) on the same server in the same run; the ratio printed is a
page's median over the floor's. Target (issue 4): every page's p95 under 300 ms. The exit status is
1 when a page misses it. With --queries the SQL count of each page is printed as well (in-process).
"""
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _harness as h  # noqa: E402

TARGET_MS = 300
DAYS = 365
PASSWORD = "bench-pages-123"


def options(parser):
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5)
    # Past 4,096 distinct values a feature's distinct count is a sketch, as in production-sized batches.
    parser.add_argument("--rows", type=int, default=5000, help="rows of the synthetic frames profiled (>= 4,097)")
    parser.add_argument("--queries", action="store_true", help="also print each page's SQL count (in-process)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (it holds ~5 GB)")


# --- the world


def wide_frame(rows: int, seed: int, shift: float = 0.0):
    """60 numeric and 40 categorical features and a label; `shift` moves every tenth number and the
    first categorical feature."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cols = {f"num_{i:02d}": rng.normal(shift if i % 10 == 0 else 0.0, 1.0 + i % 3, rows) for i in range(60)}
    for i in range(40):
        k = 3 + i % 12
        weights = np.arange(k, 0, -1, dtype=float) if shift and i == 0 else np.ones(k)
        levels = np.array([f"v{j}" for j in range(k)], dtype=object)
        cols[f"cat_{i:02d}"] = pd.Series(levels[rng.choice(k, rows, p=weights / weights.sum())], dtype="str")
    cols["label"] = np.where(rng.random(rows) < 0.3, "yes", "no")
    return pd.DataFrame(cols)


def engine_json(rows: int) -> dict:
    """Real JSON from validation.stats: the baseline's profile and schema, and a clean and a drifted
    batch's profile and report (non-finite numbers as null, as the validate step stores them)."""
    from validation.services import _json_safe
    from validation.stats import compare, infer_schema, profile_frame

    reference = profile_frame(wide_frame(rows, 1), label="label")
    schema = infer_schema(reference)
    out = {"baseline": reference.to_json(), "schema": schema.to_dict()}
    for name, shift in (("clean", 0.0), ("drifted", 0.6)):
        profile = profile_frame(wide_frame(rows, 2 if shift else 3, shift), spec=reference.spec)
        report = compare(profile, reference, schema=schema)
        out[name] = {"profile": profile.to_json(), "report": _json_safe(report.to_dict()), "verdict": report.verdict,
                     "anomalies": report.anomalies}
    return out


class Raw(str):
    """JSON text already serialised: written to a json/jsonb column as it is."""


def copy_rows(cursor, model, rows) -> int:
    """COPY `rows` (dicts by attname; a missing field takes its default) into the model's table."""
    from django.db.models import JSONField

    fields = model._meta.concrete_fields
    columns = ", ".join(f'"{f.column}"' for f in fields)
    n = 0
    with cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            values = []
            for f in fields:
                value = row[f.attname] if f.attname in row else f.get_default()
                if isinstance(f, JSONField) and value is not None and not isinstance(value, Raw):
                    value = json.dumps(value)
                values.append(value)
            copy.write_row(values)
            n += 1
    return n


def varied_metrics(metrics: dict, rng: random.Random) -> tuple[str, list]:
    """A day's metrics: each value scaled by a random factor; drifted = features whose deciding metric
    reached its threshold."""
    out, drifted = {}, []
    for feature, ms in metrics.items():
        scale = rng.uniform(0.6, 1.4)
        out[feature] = {m: {**v, "value": None if v["value"] is None else v["value"] * scale} for m, v in ms.items()}
        if any(v["value"] is not None and v["threshold"] is not None and v["value"] >= v["threshold"]
               for m, v in out[feature].items() if m in ("wasserstein", "js", "linf", "psi")):
            drifted.append(feature)
    return json.dumps(out), drifted


def fill(args) -> dict:
    """Make the world; returns the ids the timed pages use."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from collection.models import Batch, BatchTransition, Source, SourceKey
    from validation.models import Alert, Anomaly, Baseline, DailyProfile, SourcePolicy, ValidationRun

    started = time.monotonic()
    made = engine_json(args.rows)
    h.say(f"profiles made by the engine in {time.monotonic() - started:.1f} s: baseline {len(made['baseline']):,} "
          f"bytes, a batch's {len(made['drifted']['profile']):,} bytes, a report "
          f"{len(json.dumps(made['drifted']['report'])):,} bytes, {len(made['drifted']['anomalies'])} anomalies "
          f"in a drifted batch ({made['drifted']['verdict']}), {len(made['clean']['anomalies'])} in a clean one "
          f"({made['clean']['verdict']})")
    rng = random.Random(7)
    now = timezone.now()
    get_user_model().objects.create_superuser("bench", "bench@example.com", PASSWORD)
    sources, baselines = [], {}
    for i in range(args.sources):
        source = Source.objects.create(name=f"source-{i}", kind=Source.Kind.values[i % 4],
                                       expected_interval=dt.timedelta(hours=4 + i),
                                       created_at=now - dt.timedelta(days=DAYS + 1))
        SourcePolicy.objects.create(source=source, quarantine_on="warn" if i % 2 else "fail")
        sources.append(source)
        SourceKey.objects.bulk_create([
            SourceKey(source=source, name=f"key {k}", prefix=uuid.uuid4().hex[:12], hashed=uuid.uuid4().hex * 2,
                      created_at=now - dt.timedelta(days=300 - 50 * k), last_used_at=now - dt.timedelta(hours=k),
                      revoked_at=now - dt.timedelta(days=10) if k == 0 else None) for k in range(5)])
        # Three baselines a source: days [0, 120), [120, 240) and [240, 365) of the year, the last one active.
        baselines[source.pk] = [Baseline.objects.create(
            source=source, name=f"v{b + 1}", origin=Baseline.Origin.FILE, origin_detail="train.parquet",
            profile=made["baseline"], schema=made["schema"], row_count=args.rows, is_active=b == 2,
            created_at=now - dt.timedelta(days=DAYS - 120 * b)) for b in range(3)]

    def baseline_at(source_id, when):
        age = (now - when).days
        return baselines[source_id][0 if age >= DAYS - 120 else 1 if age >= DAYS - 240 else 2]

    batches, transitions, runs, anomalies = [], [], [], []
    report_text = {k: Raw(json.dumps(made[k]["report"])) for k in ("clean", "drifted")}
    tid = aid = 0
    for pk in range(1, args.batches + 1):
        source = sources[pk % len(sources)]
        received = now - dt.timedelta(seconds=DAYS * 86400 * (1 - pk / (args.batches + 1)))
        failed_ingest = rng.random() < 0.01
        drifted = not failed_ingest and rng.random() < 0.12
        steps = [("", "received"), ("received", "ingesting")]
        if failed_ingest:
            status = "failed"
            steps.append(("ingesting", "failed"))
        else:
            steps += [("ingesting", "ingested"), ("ingested", "validating")]
            if drifted:
                steps.append(("validating", "quarantined"))
                # Recent quarantines wait for review; older ones were decided.
                status = "quarantined" if (now - received).days < 60 and rng.random() < 0.7 else \
                    rng.choice(["admitted", "rejected"])
                if status != "quarantined":
                    steps.append(("quarantined", status))
            else:
                status = "admitted"
                steps.append(("validating", "admitted"))
        records = rng.randint(500, 5000)
        batches.append({"id": pk, "source_id": source.pk, "status": status, "format": "ndjson",
                        "payload": f"payloads/{source.pk}/{pk}.ndjson", "payload_bytes": records * 400,
                        "sha256": uuid.uuid4().hex * 2, "record_count": records,
                        "ingested_count": 0 if failed_ingest else records, "received_at": received,
                        "ingest_started_at": received, "ingested_at": None if failed_ingest else received,
                        "updated_at": received + dt.timedelta(minutes=5), "attempts": 1,
                        "error": "line 7: not JSON" if failed_ingest else ""})
        for n, (a, b) in enumerate(steps):
            tid += 1
            transitions.append({"id": tid, "batch_id": pk, "from_status": a, "to_status": b,
                                "actor": "task:validate", "at": received + dt.timedelta(seconds=n)})
        if failed_ingest:
            continue
        kind = "drifted" if drifted else "clean"
        runs.append({"id": pk, "batch_id": pk, "baseline_id": baseline_at(source.pk, received).pk,
                     "verdict": made[kind]["verdict"], "reasons": made[kind]["report"]["reasons"],
                     "shift": made[kind]["report"]["shift"]["kind"],
                     "drifted_share": made[kind]["report"]["drifted_share"], "report": report_text[kind],
                     "profile": made[kind]["profile"], "started_at": received, "finished_at": received})
        for a in made[kind]["anomalies"]:
            aid += 1
            anomalies.append({"id": aid, "run_id": pk, "kind": a.kind, "feature": a.feature, "metric": a.metric or "",
                              "value": a.value, "threshold": a.threshold, "severity": a.severity,
                              "explanation": a.explanation})
    metrics = {k: made[k]["report"]["metrics"] for k in ("clean", "drifted")}
    variants = [varied_metrics(metrics["drifted" if v % 4 == 0 else "clean"], rng) for v in range(24)]
    dailies, did = [], 0
    for source in sources:
        for age in range(DAYS):
            when = now - dt.timedelta(days=age)
            did += 1
            text, drifted = variants[rng.randrange(len(variants))]
            dailies.append({"id": did, "source_id": source.pk, "baseline_id": baseline_at(source.pk, when).pk,
                            "day": when.date(), "profile": made["clean"]["profile"], "batch_count": 7,
                            "row_count": 20_000, "metrics": Raw(text), "drifted": drifted, "updated_at": when})
    alerts = []
    for i, source in enumerate(sources):
        for k, kind in enumerate(Alert.Kind.values):
            open_ = (i + k) % 2 == 0
            alerts += [{"source_id": source.pk, "kind": kind, "message": f"{kind} on {source.name}",
                        "occurrences": 3, "opened_at": now - dt.timedelta(days=j + 1),
                        "last_seen_at": now - dt.timedelta(days=j), "resolved_at": None if open_ and j == 0 else now}
                       for j in range(50)]
    for n, alert in enumerate(alerts, 1):
        alert["id"] = n

    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as wrapper:
        cursor = wrapper.cursor
        counts = {model.__name__: copy_rows(cursor, model, rows) for model, rows in (
            (Batch, batches), (BatchTransition, transitions), (ValidationRun, runs), (Anomaly, anomalies),
            (DailyProfile, dailies), (Alert, alerts))}
        for model in (Batch, BatchTransition, ValidationRun, Anomaly, DailyProfile, Alert):
            table = model._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                           f"(SELECT max(id) FROM \"{table}\"))")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    h.say(f"filled in {time.monotonic() - started:.1f} s with COPY ({size}): "
          + ", ".join(f"{n:,} {name}" for name, n in counts.items()))
    source = sources[0]
    failed = ValidationRun.objects.filter(batch__source=source, verdict="fail").order_by("-batch__received_at").first()
    today = now.date()
    return {
        "source": source.pk, "batch": failed.batch_id,
        "queue_pages": -(-Batch.objects.filter(status="quarantined").count() // 50),
        "year": f"from={(today - dt.timedelta(days=DAYS - 1)).isoformat()}&to={today.isoformat()}",
        "old_baseline": baselines[source.pk][0].pk,
    }


# --- timing


def session_for(base: str):
    import requests

    session = requests.Session()
    session.get(f"{base}/admin/login/", timeout=30)
    answer = session.post(f"{base}/admin/login/?next=/quality/", timeout=30, allow_redirects=False, data={
        "username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"],
        "next": "/quality/"}, headers={"Referer": f"{base}/admin/login/"})
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise RuntimeError(f"could not log in: {answer.status_code}")
    return session


def timed(session, url: str, *, warmup: int, n: int) -> list[float]:
    samples = []
    for i in range(warmup + n):
        start = time.perf_counter()
        answer = session.get(url, timeout=30, allow_redirects=False)
        body = answer.content
        elapsed = (time.perf_counter() - start) * 1000
        if answer.status_code != 200:
            raise RuntimeError(f"{url}: {answer.status_code} {body[:300]!r}")
        if i >= warmup:
            samples.append(elapsed)
    return samples


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def pages(ids: dict) -> list[tuple[str, str]]:
    s, b = ids["source"], ids["batch"]
    return [
        ("home", "/quality/"),
        (f"home, queue page {ids['queue_pages']}", f"/quality/?page={ids['queue_pages']}"),
        ("batch page", f"/quality/batches/{b}/"),
        ("batch charts, page 1", f"/quality/batches/{b}/charts"),
        ("batch charts, page 9", f"/quality/batches/{b}/charts?page=9"),
        ("drift, 90 days", f"/quality/sources/{s}/drift/"),
        ("drift, 365 days, 2nd feature", f"/quality/sources/{s}/drift/?{ids['year']}&feature=num_10"),
        ("drift, old baseline, 365 days", f"/quality/sources/{s}/drift/?baseline={ids['old_baseline']}&{ids['year']}"),
        ("sources list", "/quality/sources/"),
        ("source page, 90 days", f"/quality/sources/{s}/"),
        ("source page, 365 days", f"/quality/sources/{s}/?{ids['year']}"),
        ("source page, batches page 40", f"/quality/sources/{s}/?page=40"),
    ]


def query_counts(urls: list[tuple[str, str]]) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="bench"))
    for name, url in urls:
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]), default={"time": 0, "sql": ""})
        h.say(f"  {name}: {len(queries)} queries; slowest {float(slowest['time']) * 1000:.1f} ms: "
              f"{slowest['sql'][:160]}")


def main() -> int:
    args = h.arguments(__doc__.splitlines()[0], options)
    if args.database_url.endswith("/sieve_bench"):
        args.database_url += "_pages"
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=args.database_url,
                      REDIS_URL=args.redis_url, LOG_LEVEL="WARNING")
    import django

    django.setup()
    with h.Stack(args, worker=False) as stack:
        ids = fill(args)
        session = session_for(stack.base)
        floor = timed(session, f"{stack.base}/healthz", warmup=args.warmup, n=args.requests)
        floor_ms = statistics.median(floor)
        h.say(f"floor GET /healthz: median {floor_ms:.1f} ms, p95 {p95(floor):.1f} ms "
              f"({args.requests} requests after {args.warmup} warm-up, one at a time)")
        urls = pages(ids)
        all_met = True
        for name, url in urls:
            samples = timed(session, stack.base + url, warmup=args.warmup, n=args.requests)
            median, high = statistics.median(samples), p95(samples)
            met = high < TARGET_MS
            all_met &= met
            h.say(f"{name:<32} median {median:6.1f} ms  p95 {high:6.1f} ms  ratio {median / floor_ms:5.1f}x /healthz  "
                  f"(target p95 < {TARGET_MS} ms): {'MET' if met else 'MISSED'}   {url}")
        if args.queries:
            query_counts(urls)
    if not args.keep:
        drop(args.database_url)
    return 0 if all_met else 1


def drop(url: str) -> None:
    """Give the disk back (the world holds gigabytes); only a database named sieve_bench*."""
    from django.db import connection
    from psycopg import sql

    connection.close()
    name = url.rsplit("/", 1)[1]
    if name.startswith("sieve_bench"):
        with h.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    sys.exit(main())
