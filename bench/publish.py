"""Bench of publishing a training-set version: 1,000,000 labeled records with 20 features to Parquet.

Run: flock /tmp/sieve-bench.lock .venv/bin/python bench/publish.py [--rows 1000000] [--rounds 3]

- Floor (in this process): the same rows read with PostgreSQL `COPY (SELECT ...) TO STDOUT` (each row's
  features with its external id, source, observed time and label as one JSON text, in record-id order)
  and written with pyarrow (Arrow's JSON reader in chunks of 50,000 rows, one ParquetWriter).
- Publish: `version_request` (in a `manage.py shell`), built by a real Celery worker (`-c 1`); timed from
  the request until the bench sees the version published, and by the row's own started/finished times.
  It covers the label policy (one queue-item query per chunk), stable splits, three split files, the
  lineage file, the gate (the version profiled; from round 2 on compared with the previous version and with
  the source's baseline, made from round 1's version), hashes and the manifest. Formats: Parquet only.
  Target: <= 2x the floor; the worker's pool child's peak RSS (VmHWM) < 1 GB.
- Download: the largest split file over loopback from gunicorn (token auth), best of 3, against reading
  the same file from the page cache. Target: >= 200 MB/s.
"""
from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pyarrow.json as pa_json
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _harness import OUT, Stack, arguments, connect, say, vm_hwm_kb, wait_for  # noqa: E402

FLOATS, INTS, TEXTS = 16, 2, 2
SETUP = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from collection.models import Batch, Source
from labeling.models import LabelingProject
from trainingsets.services import trainingset_create
source = Source.objects.create(name="bench", kind="app")
columns = [[f"f{i}", "float"] for i in range(%(floats)d)] + [[f"i{i}", "int"] for i in range(%(ints)d)] + \\
    [[f"s{i}", "str"] for i in range(%(texts)d)]
batch = Batch.objects.create(source=source, status="admitted", format="ndjson", payload="bench", sha256="0" * 64,
                             columns=columns, record_count=%(rows)d, ingested_count=%(rows)d)
project = LabelingProject.objects.create(name="bench", choices=[{"value": "ok"}, {"value": "fraud"}])
project.sources.add(source)
ts = trainingset_create(name="bench", sources=[source], projects=[project], formats=["parquet"])
user = get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
print(source.pk, batch.pk, project.pk, ts.pk, Token.objects.create(user=user).key)
"""
REQUEST = """
from trainingsets.models import TrainingSet
from trainingsets.services import version_request
print(version_request(training_set=TrainingSet.objects.get(pk=%d)).pk)
"""
BASELINE = """
from django.contrib.auth import get_user_model
from trainingsets.services.decisions import version_make_baseline
version_make_baseline(version_id=%d, user=get_user_model().objects.get(username="bench"))
"""


def fill(conn, rows: int, source: int, batch: int, project: int) -> None:
    """1M records with 20 features and a consensus each, made by PostgreSQL itself."""
    features = ", ".join([f"'f{i}', random() * {i + 1}" for i in range(FLOATS)]
                         + [f"'i{i}', (random() * 1000)::int" for i in range(INTS)]
                         + [f"'s{i}', (ARRAY['DE','FR','NL','PL','ES'])[1 + (g + {i}) %% 5]" for i in range(TEXTS)])
    conn.execute(
        "INSERT INTO collection_record (batch_id, source_id, line, external_id, features, observed_at, label, "
        f"is_current) SELECT %s, %s, g, 'rec-' || g, jsonb_build_object({features}), "
        "timestamptz '2026-01-01' + g * interval '1 second', NULL, true FROM generate_series(1, %s) g",
        [batch, source, rows])
    conn.execute(
        "INSERT INTO labeling_queueitem (project_id, record_id, is_gold, needed, leased_count, submitted_count, "
        "feedback_count, skipped_count, state, consensus, agreement, confidence, decided_by, completed_at, "
        "created_at) SELECT %s, r.id, false, 3, 0, 3, 0, 0, 'complete', "
        "to_jsonb(CASE WHEN r.line %% 10 = 0 THEN 'fraud' ELSE 'ok' END), 1.0, 0.9, 'dawid_skene', now(), now() "
        "FROM collection_record r WHERE r.batch_id = %s", [project, batch])
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE collection_record")
    conn.execute("VACUUM ANALYZE labeling_queueitem")
    conn.autocommit = False


FLOOR_SQL = ("COPY (SELECT (r.features || jsonb_build_object('external_id', r.external_id, 'source', s.name, "
             "'observed_at', r.observed_at, 'label', r.label))::text FROM collection_record r "
             "JOIN collection_batch b ON b.id = r.batch_id JOIN collection_source s ON s.id = r.source_id "
             "WHERE r.is_current AND r.source_id = {source} AND b.status = 'admitted' ORDER BY r.id) TO STDOUT")


def floor(conn, source: int, target: Path) -> float:
    """COPY TO the same rows as text, cut into 50,000-line chunks, parse each with Arrow's JSON reader, write
    one Parquet file. COPY's text format doubles backslashes and escapes control characters; JSON text
    has no raw control characters, so undoing the doubled backslashes gives the JSON back."""
    start = time.perf_counter()
    writer, pending, count = None, [], 0

    def flush(data: bytes):
        nonlocal writer
        table = pa_json.read_json(io.BytesIO(data.replace(b"\\\\", b"\\")),
                                  read_options=pa_json.ReadOptions(block_size=len(data) // 2 + 1))
        writer = writer or pq.ParquetWriter(target, table.schema)
        writer.write_table(table)

    with conn.cursor() as cursor, cursor.copy(FLOOR_SQL.format(source=int(source))) as copy:
        for block in copy:
            block = bytes(block)
            pending.append(block)
            count += block.count(b"\n")
            if count >= 50_000:
                data = b"".join(pending)
                cut = data.rfind(b"\n") + 1
                flush(data[:cut])
                pending, count = [data[cut:]], 0
    rest = b"".join(pending)
    if rest.strip():
        flush(rest)
    writer.close()
    conn.rollback()
    return time.perf_counter() - start


def main() -> None:
    args = arguments(__doc__.splitlines()[0], lambda p: (p.add_argument("--rows", type=int, default=1_000_000),
                                                         p.add_argument("--rounds", type=int, default=3)))
    with Stack(args, worker=True) as stack:
        made = stack.manage("shell", "-c", SETUP % {"floats": FLOATS, "ints": INTS, "texts": TEXTS, "rows": args.rows})
        source, batch, project, ts, token = made.splitlines()[-1].split()
        conn = connect(args.database_url)
        start = time.perf_counter()
        fill(conn, args.rows, int(source), int(batch), int(project))
        say(f"{args.rows:,} records and queue items made in {time.perf_counter() - start:.1f} s")
        floors = []
        for _ in range(args.rounds):
            floors.append(floor(conn, int(source), OUT / "publish-floor.parquet"))
            say(f"floor: {floors[-1]:.2f} s ({(OUT / 'publish-floor.parquet').stat().st_size / 1e6:.0f} MB)")
        publishes, worker_s, peaks = [], [], []
        version_id = None
        for round_ in range(args.rounds):
            begin = time.perf_counter()
            version_id = int(stack.manage("shell", "-c", REQUEST % int(ts)).split()[-1])
            status = wait_for(lambda: _status(conn, version_id) in ("published", "review", "failed"),
                              stack.deadline.left(), "the version to be built", stack.worker, every=0.05)
            elapsed = time.perf_counter() - begin
            row = _row(conn, version_id)
            if row[0] == "failed":
                raise RuntimeError(f"the build failed: {row[3]}")
            peak = max((vm_hwm_kb(pid) for pid in stack.worker_children()), default=0) / 1024
            publishes.append(elapsed)
            worker_s.append(row[2])
            peaks.append(peak)
            say(f"publish {round_ + 1}: {elapsed:.2f} s end to end, {row[2]:.2f} s in the worker, {row[1]:,} rows, "
                f"status {row[0]}, gate {row[4]}; worker peak RSS {peak:.0f} MB")
            if round_ == 0:
                stack.manage("shell", "-c", BASELINE % version_id)
            del status
        floor_s = min(floors)
        ratio = min(publishes) / floor_s
        say(f"PUBLISH: best {min(publishes):.2f} s end to end (worker {min(worker_s):.2f} s) vs floor "
            f"{floor_s:.2f} s: {ratio:.2f}x (target <= 2x): {'MET' if ratio <= 2 else 'MISSED'}")
        say(f"PEAK RSS: {max(peaks):.0f} MB (target < 1024 MB): {'MET' if max(peaks) < 1024 else 'MISSED'}")
        download(stack, conn, int(ts), version_id, token)


def _status(conn, version_id: int) -> str:
    status = conn.execute("SELECT status FROM trainingsets_trainingsetversion WHERE id = %s", [version_id]).fetchone()
    conn.rollback()
    return status[0]


def _row(conn, version_id: int):
    row = conn.execute("SELECT status, rows_total, EXTRACT(EPOCH FROM finished_at - started_at), error, gate_verdict, "
                       "number, folder, manifest FROM trainingsets_trainingsetversion WHERE id = %s",
                       [version_id]).fetchone()
    conn.rollback()
    return row


def download(stack, conn, ts: int, version_id: int, token: str) -> None:
    import requests

    _, _, _, _, _, number, folder, manifest = _row(conn, version_id)
    split = max(manifest["splits"], key=lambda s: manifest["splits"][s]["rows"])
    path = stack.data_dir / folder / f"{split}.parquet"
    size = path.stat().st_size
    url = f"{stack.base}/api/v1/training-sets/{ts}/versions/{number}/files/{split}.parquet"
    speeds = []
    for _ in range(3):
        start = time.perf_counter()
        got = 0
        with requests.get(url, headers={"Authorization": f"Token {token}"}, stream=True, timeout=120) as response:
            response.raise_for_status()
            for block in response.iter_content(1 << 20):
                got += len(block)
        speeds.append(got / (time.perf_counter() - start) / 1e6)
        if got != size:
            raise RuntimeError(f"downloaded {got} bytes of {size}")
    start = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
    disk = size / (time.perf_counter() - start) / 1e6
    best = max(speeds)
    say(f"DOWNLOAD: {split}.parquet {size / 1e6:.0f} MB at {best:.0f} MB/s over loopback (runs: "
        f"{', '.join(f'{s:.0f}' for s in speeds)}); reading it from the page cache {disk:.0f} MB/s "
        f"({best / disk:.2f}x); target >= 200 MB/s: {'MET' if best >= 200 else 'MISSED'}")


if __name__ == "__main__":
    main()
