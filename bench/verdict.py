"""Verdict time (issue 4): the validate step on a 1,000,000-row batch already `ingested`, against the engine.

    flock /tmp/sieve-bench.lock .venv/bin/python bench/verdict.py            # the issue's size
    flock /tmp/sieve-bench.lock .venv/bin/python bench/verdict.py --rows 200000 --repeat 1   # a quick run

What is measured, all in one run on one machine (nothing of the set-up is timed):
- data: bench/validation.py's generator (testdata/synthetic.py: bench_frame), 10 numeric and
  10 string features and a label; the reference (seed 1) becomes the source's active baseline, the
  batch (seed 2, drifted) is written as ingest writes a columnar copy (meta columns, 50,000-row row
  groups, zstd) and recorded as `ingested` Batch rows that all point at that one file;
- (a) engine: in this process, `compare(profile_parquet(path, spec=baseline spec), baseline)` on a
  copy of the same data without the meta columns (same row groups), as bench/validation.py does;
- (b) the validate step alone through a real Celery worker (prefork, concurrency 1, never
  chunked): from `validate_batch.apply_async` until the batch's verdict shows in PostgreSQL.
  Target: <= 1.3x (a);
- (c) the same batch split into 4 chunks (SIEVE_VALIDATE_CHUNK_ROWS=rows/4, a chord): with one
  worker process (concurrency 1), then with two worker processes (concurrency 1 each). Target:
  two are faster than one.
The three worker sets run side by side, each on a queue of its own (idle while another works), and
the runs are interleaved (a, b, c one, c two, then again), so a change in the shared machine's load
weighs on every figure alike. Every figure is the best of --repeat runs (a fresh batch row each),
after one warm-up validation per worker set. The exit status is 1 when a target is missed.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

sys.path.insert(0, str(h.ROOT))

STEP_TARGET = 1.3
ROW_GROUP_ROWS = 50_000  # SIEVE_INGEST_CHUNK_ROWS, the row groups ingest writes


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/sieve_bench_verdict",
                        help="a dedicated database: one named sieve_bench* is dropped and made again each run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--time-limit", type=float, default=1800)
    parser.add_argument("--worker-log", default="warning", help="the workers' log level (info shows each task)")
    return parser.parse_args()


def columnar_table(frame, first_id: int = 0):
    """A frame of bench_frame as ingest's columnar copy: __external_id, __observed_at, __label, features."""
    import pandas as pd
    import pyarrow as pa

    n = len(frame)
    meta = pd.DataFrame({
        "__external_id": [f"rec-{first_id + i:08d}" for i in range(n)],
        "__observed_at": pd.Timestamp("2026-11-26", tz="UTC") + pd.to_timedelta(range(n), unit="s"),
        "__label": frame["label"],
    })
    return pa.Table.from_pandas(pd.concat([meta, frame.drop(columns=["label"])], axis=1), preserve_index=False)


def write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, compression="zstd")


class Bench:
    """The database, the data, and the Celery workers of one run; stop() ends every child."""

    def __init__(self, args):
        self.args = args
        self.deadline = h.Deadline(args.time_limit)
        self.data_dir = Path(tempfile.mkdtemp(prefix="sieve-bench-verdict-"))
        h.OUT.mkdir(parents=True, exist_ok=True)
        (h.OUT / "logs").mkdir(exist_ok=True)
        self.run = uuid.uuid4().hex[:8]
        self.queue = f"bench-verdict-{self.run}"
        self.env = {
            **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url, "SIEVE_DATA_DIR": str(self.data_dir), "SIEVE_QUEUE": self.queue,
            "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
        }
        self.workers: list[subprocess.Popen] = []

    def setup(self) -> None:
        h.say(f"setting up: database {self.args.database_url}, data dir {self.data_dir}, queue {self.queue}")
        h.database_fresh(self.args.database_url)
        done = subprocess.run([h.PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=h.ROOT, env=self.env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"migrate failed:\n{done.stderr[-3000:]}")
        os.environ.update(self.env)
        import django

        django.setup()

    def start_workers(self, name: str, count: int, chunk_rows: int) -> str:
        """`count` worker processes (concurrency 1 each) on a queue of their own; returns the queue.

        A worker enqueues a chord's tasks on its own default queue, so each set keeps its chunks.
        """
        # The project's app: a new Celery() would become the current app, and tasks would go to its queue.
        from config.celery import app

        queue = f"{self.queue}-{name}"
        env = {**self.env, "SIEVE_QUEUE": queue, "SIEVE_VALIDATE_CHUNK_ROWS": str(chunk_rows)}
        for i in range(count):
            node = f"verdict-{self.run}-{name}-{i}@{socket.gethostname()}"
            proc = h.spawn([str(h.BIN / "celery"), "-A", "config", "worker", "-Q", queue, "-c", "1", "-n", node,
                            "-l", self.args.worker_log, "--without-gossip", "--without-mingle", "--without-heartbeat"],
                           env, h.OUT / "logs" / f"verdict-worker-{name}-{i}.log")
            self.workers.append(proc)
            h.wait_for(lambda: app.control.ping(destination=[node], timeout=1.0), 60, "a Celery worker to answer", proc)
        return queue

    def stop_workers(self) -> None:
        for proc in self.workers:
            h.stop(proc)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def prepare(bench: Bench, rows: int):
    """The source, its baseline, and the columnar copies; returns (source, features-only path)."""
    from collection import services as collection
    from collection.storage import columnar_relative_path, data_path
    from testdata.synthetic import bench_frame
    from validation import services

    source = collection.source_create(name="bench-verdict", kind="app")
    reference = bench.data_dir / "reference.parquet"
    bench_frame(rows, 1).to_parquet(reference, index=False)
    started = time.perf_counter()
    services.baseline_create_from_file(source=source, path=reference, label="label")
    h.say(f"baseline: {rows:,} reference rows profiled in {time.perf_counter() - started:.1f} s (not timed)")
    table = columnar_table(bench_frame(rows, 2, drift=True))
    relative = columnar_relative_path(source.pk, 0)
    data_path(relative).parent.mkdir(parents=True, exist_ok=True)
    write_parquet(table, data_path(relative))
    features = bench.data_dir / "batch-features.parquet"
    write_parquet(table.drop_columns(["__external_id", "__observed_at"]), features)
    small = columnar_relative_path(source.pk, 1)
    write_parquet(columnar_table(bench_frame(20_000, 3)), data_path(small))
    return source, relative, small, features


def batch_row(source, relative: str, rows: int):
    """An `ingested` batch whose columnar copy is `relative` (rows share the file: each gets one verdict)."""
    from collection.models import Batch

    return Batch.objects.create(source=source, status=Batch.Status.INGESTED, format=Batch.Format.NDJSON,
                                payload="", sha256=uuid.uuid4().hex, columnar=relative, record_count=rows,
                                ingested_count=rows)


def verdict_seconds(bench: Bench, batch, queue: str) -> tuple[float, object]:
    """Enqueue validate for the batch on `queue` and wait until its verdict is in the database;
    returns the seconds and the wall-clock time of the enqueue."""
    from django.utils import timezone

    from collection.models import Batch
    from validation.tasks import validate_batch

    enqueued = timezone.now()
    started = time.perf_counter()
    validate_batch.apply_async((batch.pk,), queue=queue)
    done = {Batch.Status.ADMITTED, Batch.Status.QUARANTINED}
    query = Batch.objects.filter(pk=batch.pk).values_list("status", flat=True)
    while query.first() not in done:
        for proc in bench.workers:
            if proc.poll() is not None:
                raise RuntimeError(f"a worker exited with {proc.returncode} (logs in {h.OUT / 'logs'})")
        bench.deadline.left()
        time.sleep(0.01)
    return time.perf_counter() - started, enqueued


def timed_verdict(bench: Bench, source, relative: str, rows: int, queue: str, label: str) -> float:
    """One validation of a fresh batch row through the workers on `queue`, printed with its breakdown."""
    from validation.models import DailyProfile, ValidationRun

    batch = batch_row(source, relative, rows)
    seconds, enqueued = verdict_seconds(bench, batch, queue)
    run = ValidationRun.objects.get(batch=batch)
    moves = dict(batch.transitions.values_list("to_status", "at"))
    claimed, decided = moves["validating"], moves[run.batch.status]
    # The breakdown from the database's timestamps (one clock): queue wait until the claim, profiling
    # until the verdict's transaction starts, recording (run, anomalies, day's profile), commit and poll.
    day = DailyProfile.objects.get(baseline_id=run.baseline_id, day=batch.received_at.date())
    queued, work, record = ((b - a).total_seconds() for a, b in
                            [(enqueued, claimed), (claimed, decided), (decided, day.updated_at)])
    h.say(f"  {label}: {seconds:.3f} s = enqueue to claim {queued:.3f} + profile and compare {work:.3f} "
          f"+ record {record:.3f} + commit and poll {seconds - queued - work - record:.3f}; {run.verdict}, "
          f"{len(run.report['anomalies'])} anomalies")
    return seconds


def main() -> int:
    args = parse()
    bench = Bench(args)
    signal.signal(signal.SIGTERM, h._raise_exit)
    signal.signal(signal.SIGALRM, h._raise_exit)
    signal.alarm(int(args.time_limit) + 60)
    try:
        bench.setup()
        from validation.models import Baseline, ValidationRun
        from validation.stats import Profile, Schema, compare, profile_parquet

        source, relative, small, features = prepare(bench, args.rows)
        baseline = Baseline.objects.get(source=source, is_active=True)
        reference, schema = Profile.from_json(baseline.profile), Schema.from_dict(baseline.schema)
        h.say(f"batch: {args.rows:,} rows x 20 features + label, {-(-args.rows // ROW_GROUP_ROWS)} row groups")

        chunk_rows = -(-args.rows // 4)
        sets = {"unchunked": bench.start_workers("unchunked", 1, chunk_rows=0),
                "one": bench.start_workers("one", 1, chunk_rows=chunk_rows),
                "two": bench.start_workers("two", 2, chunk_rows=chunk_rows)}
        for queue in sets.values():  # a warm-up validation per worker set, not counted
            verdict_seconds(bench, batch_row(source, small, 20_000), queue)
        labels = {"unchunked": "(b) one worker, unchunked", "one": "(c) 4 chunks, one worker",
                  "two": "(c) 4 chunks, two workers"}
        times: dict[str, list[float]] = {"engine": [], **{name: [] for name in sets}}
        # Interleaved, so that a change in the machine's load between phases weighs on all alike.
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = compare(profile_parquet(features, spec=reference.spec), reference, schema=schema)
            times["engine"].append(time.perf_counter() - started)
            h.say(f"  (a) engine in-process: {times['engine'][-1]:.3f} s; {report.verdict}, "
                  f"{len(report.anomalies)} anomalies")
            for name, queue in sets.items():
                times[name].append(timed_verdict(bench, source, relative, args.rows, queue, labels[name]))
        bench.stop_workers()

        engine, step, one, two = (min(times[name]) for name in ("engine", "unchunked", "one", "two"))
        h.say(f"(a) engine in-process, profile_parquet + compare: best {engine:.3f} s")
        step_met = step / engine <= STEP_TARGET
        h.say(f"(b) validate step, one worker, unchunked: best {step:.3f} s; ratio {step / engine:.2f}x (a) "
              f"(target <= {STEP_TARGET}x): {'MET' if step_met else 'MISSED'}")
        chunk_met = two < one
        h.say(f"(c) 4 chunks: one worker best {one:.3f} s ({one / engine:.2f}x (a)), two workers best {two:.3f} s "
              f"({two / engine:.2f}x (a)); two are {one / two:.2f}x as fast (target: faster than one): "
              f"{'MET' if chunk_met else 'MISSED'}")
        large = ValidationRun.objects.filter(batch__ingested_count=args.rows)
        findings = {(run.verdict, frozenset((a.kind, a.feature) for a in run.anomalies.all())) for run in large}
        h.say(f"every timed verdict (unchunked and chunked) has the same verdict and anomalies: "
              f"{'YES' if len(findings) == 1 else 'NO ' + str(findings)}")
        return 0 if step_met and chunk_met and len(findings) == 1 else 1
    finally:
        signal.alarm(0)
        bench.stop()


if __name__ == "__main__":
    sys.exit(main())
