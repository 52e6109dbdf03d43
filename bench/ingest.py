"""Ingest throughput: an NDJSON batch through the HTTP API until it is `ingested`, against a COPY floor.

    .venv/bin/python bench/ingest.py                    # the issue's size: 1,000,000 records
    .venv/bin/python bench/ingest.py --records 100000   # a quick run

What is measured, all in one run on one machine:
- app: records / second from the first byte of `POST /api/v1/batches` (gunicorn) to the first
  status poll that shows the batch `ingested` on PostgreSQL (Celery worker, prefork, one child);
- floor: the same NDJSON file parsed with orjson and written with one psycopg 3 COPY (`write_row`)
  into `bench_floor`, a table with the columns, types, NOT NULLs and defaults of `collection_record`
  but none of its indexes or constraints; the same COPY into a table that also has the record
  table's indexes is printed for information, never judged;
- the peak RSS (VmHWM) of the worker's pool child, which does the ingest.
Target (issue 2): app >= 0.5x the floor's records/second, worker peak RSS < 1 GB. The exit status
is 1 when a target is missed.
"""
import http.client
import os
import sys
import time
import uuid

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

RATIO_TARGET = 0.5
RSS_TARGET_MB = 1024
RECORD_COLUMNS = "batch_id, source_id, line, external_id, features, observed_at, label, is_current"


def floor(url: str, path, table: str, *, indexes: bool) -> tuple[int, float]:
    """Parse every line with orjson and COPY it into `table`; returns (rows, seconds)."""
    with h.connect(url) as conn:
        h.floor_table(conn, "collection_record", table, indexes=indexes)
        conn.execute("CHECKPOINT")
        loads, dumps = orjson.loads, orjson.dumps
        started = time.perf_counter()
        count = 0
        with conn.cursor() as cursor, open(path, "rb", buffering=1024 * 1024) as lines:
            with cursor.copy(f"COPY {table} ({RECORD_COLUMNS}) FROM STDIN") as copy:
                write_row = copy.write_row
                for count, raw in enumerate(lines, start=1):
                    record = loads(raw)
                    label = record.get("label")
                    write_row((1, 1, count, record["external_id"], dumps(record["features"]).decode(),
                               record.get("observed_at"), None if label is None else dumps(label).decode(), True))
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
    return count, seconds


def upload(stack: h.Stack, key: str, path) -> dict:
    """Stream the file as the body of one POST; returns the 202 answer."""
    size = os.path.getsize(path)
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=600, blocksize=1024 * 1024)
    try:
        with open(path, "rb") as body:
            conn.request("POST", "/api/v1/batches", body=body, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson",
                "Content-Length": str(size)})
            response = conn.getresponse()
            answer = response.read()
    finally:
        conn.close()
    if response.status != 202:
        raise RuntimeError(f"upload answered {response.status}: {answer[:2000].decode(errors='replace')}")
    return orjson.loads(answer)


def wait_ingested(stack: h.Stack, key: str, batch_id: int, every: float = 0.2) -> dict:
    url = f"{stack.base}/api/v1/batches/{batch_id}"
    while True:
        stack.deadline.left()
        status, batch = h.http_json("GET", url, key)
        if status != 200:
            raise RuntimeError(f"GET {url} answered {status}: {batch}")
        if batch["status"] == "failed":
            raise RuntimeError(f"batch {batch_id} failed: {batch['error']}")
        if batch["ingested_at"]:
            return batch
        time.sleep(every)


def main() -> int:
    args = h.arguments(__doc__.split("\n")[0], lambda p: (
        p.add_argument("--records", type=int, default=1_000_000),
        p.add_argument("--skip-indexed-floor", action="store_true",
                       help="do not time the informational COPY into a table with the record table's indexes"),
    ))
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    h.say(f"bench/ingest.py, {started}, {os.cpu_count()} cores; {args.records:,} records, "
          f"{args.web_workers} gunicorn workers, Celery prefork -c 1")
    path = h.records_file(args.records)
    h.say(f"data: {path} ({os.path.getsize(path) / 1e6:,.0f} MB)")
    with h.Stack(args, worker=True) as stack:
        key = stack.source_key(f"bench-ingest-{uuid.uuid4().hex[:8]}")

        rows, seconds = floor(args.database_url, path, "bench_floor", indexes=False)
        floor_rate = rows / seconds
        h.say(f"floor (orjson + COPY, no indexes): {rows:,} rows in {seconds:.1f} s = {floor_rate:,.0f} records/s")

        with h.connect(args.database_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        with h.PeakRss(lambda: stack.worker_children()) as worker_rss, \
                h.PeakRss(lambda: stack.web_children()) as web_rss:
            t0 = time.perf_counter()
            accepted = upload(stack, key, path)
            t_accepted = time.perf_counter()
            batch = wait_ingested(stack, key, accepted["id"])
            t_done = time.perf_counter()
        if batch["ingested_count"] != args.records:
            raise RuntimeError(f"batch {batch['id']} ingested {batch['ingested_count']} of {args.records} records")
        app_seconds = t_done - t0
        app_rate = args.records / app_seconds
        timings = batch["timings"]
        h.say(f"app (HTTP upload -> ingested): {args.records:,} records in {app_seconds:.1f} s = "
              f"{app_rate:,.0f} records/s [upload until 202: {t_accepted - t0:.1f} s, queued "
              f"{timings['queued_seconds']:.1f} s, worker ingest {timings['ingest_seconds']:.1f} s]")

        if not args.skip_indexed_floor:
            with h.connect(args.database_url, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            rows, seconds = floor(args.database_url, path, "bench_floor_indexed", indexes=True)
            h.say(f"for information, floor into a table with collection_record's indexes: {seconds:.1f} s = "
                  f"{rows / seconds:,.0f} records/s; the app reaches {app_rate / (rows / seconds):.2f}x of it")

    h.say(f"gunicorn worker peak RSS (VmHWM, highest worker): {web_rss.peak_mb:,.0f} MB (for information)")
    ok = h.verdict("ingest throughput", app_rate, floor_rate, "records/s", RATIO_TARGET)
    rss_ok = worker_rss.peak_mb < RSS_TARGET_MB
    h.say(f"worker peak RSS (VmHWM of the prefork pool child): {worker_rss.peak_mb:,.0f} MB "
          f"(target < {RSS_TARGET_MB} MB): {'MET' if rss_ok else 'MISSED'}")
    return 0 if ok and rss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
