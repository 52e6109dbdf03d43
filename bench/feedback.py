"""Process feedback: list-form throughput against a COPY floor, and single-event latency at a fixed rate.

    .venv/bin/python bench/feedback.py                                  # the issue's sizes
    .venv/bin/python bench/feedback.py --events 20000 --duration 10     # a quick run

What is measured, all in one run on one machine (loopback only):
- throughput: `--events` events as lists of `--per-request` (100) through `POST /api/v1/feedback`,
  sent by `--clients` closed-loop client threads (one per gunicorn worker); events / second from the
  first send to the last answer. Half the events name one of `--records` records ingested first
  through the API, so the app's lookup-and-link path runs; the other half name records not seen yet.
- floor: the same request bodies parsed with orjson and written with one psycopg 3 COPY
  (`write_row`) into `bench_feedback_floor`, a table with the columns, types, NOT NULLs and defaults
  of `collection_feedbackevent` but none of its indexes or constraints (the actor is written as sent,
  `record_id` NULL). Printed for information, never judged: a COPY and commit per request body, and
  one COPY into a table with the app's indexes (what storing the events costs before any API).
- latency: single events (a bare JSON object each) offered open-loop at `--rate` requests/second for
  `--duration` seconds after a 3 s warm-up that is not counted. Sends are scheduled on a clock and
  handed to a pool of threads, each request on its own connection (gunicorn's sync workers close
  every connection), so a slow answer never delays the next send; latency is measured from the
  scheduled send time to the end of the answer, so queueing in the generator counts against the app.
  The table is ANALYZEd first (as autovacuum would be within a minute of the list phase).
Targets (issue 2): throughput >= 0.3x the floor; p99 latency < 50 ms at 200 requests/s with no errors.
The exit status is 1 when a target is missed.
"""
import http.client
import os
import queue
import sys
import threading
import time
import uuid

import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402
from ingest import upload, wait_ingested  # noqa: E402

RATIO_TARGET = 0.3
P99_TARGET_MS = 50
FEEDBACK_COLUMNS = "source_id, idempotency_key, external_id, signal, value, actor, occurred_at, received_at"
SIGNALS = [("rating", lambda i: i % 5 + 1), ("click", lambda i: True), ("thumbs", lambda i: i % 3 != 0),
           ("correction", lambda i: ["ok", "spam", "fraud"][i % 3])]


def event(number: int, known: int, tag: str) -> dict:
    """Event `number`: even numbers name a known record, odd ones a record that has not arrived."""
    signal, value = SIGNALS[number % len(SIGNALS)]
    record = (number // 2) % known if number % 2 == 0 else known + number
    moment = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(1_767_225_600 + number))
    return {"external_id": f"rec-{record:08d}", "signal": signal, "value": value(number),
            "actor": f"user-{number % 5000}", "occurred_at": moment, "idempotency_key": f"{tag}-{number}"}


def bodies_file(events: int, per_request: int, known: int):
    """One request body (a JSON list of events) per line, made once and kept in bench/out/."""
    path = h.OUT / f"feedback-{events}-{per_request}-k{known}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        with open(partial, "wb") as out:
            for first in range(0, events, per_request):
                out.write(orjson.dumps([event(n, known, "list") for n in range(first, min(events, first + per_request))])
                          + b"\n")
        partial.replace(path)
    return path


def post(port: int, key: str, body: bytes, timeout: float = 30) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/api/v1/feedback", body=body,
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def throughput(stack: h.Stack, key: str, path, clients: int) -> tuple[int, float]:
    """Send every body, `clients` at a time; returns (events accepted, seconds)."""
    with open(path, "rb") as lines:
        bodies = lines.read().splitlines()
    work = iter(bodies)
    lock = threading.Lock()
    accepted = [0]
    failures = []

    def client():
        while not failures:
            with lock:
                body = next(work, None)
            if body is None:
                return
            try:
                status, answer = post(stack.port, key, body)
            except Exception as exc:  # noqa: BLE001 - any failure ends the run below
                failures.append(repr(exc))
                return
            if status != 201:
                failures.append(f"{status}: {answer[:500]!r}")
                return
            with lock:
                accepted[0] += orjson.loads(answer)["accepted"]

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(stack.deadline.left())
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"a feedback list was refused: {failures[0]}")
    return accepted[0], seconds


def floor(url: str, path, *, per_body: bool, indexes: bool = False) -> tuple[int, float]:
    """Parse every body with orjson and COPY its events (one COPY, or a COPY and commit per body), into a
    table without indexes, or with those of the app's table (`indexes`)."""
    table = "bench_feedback_floor"
    with h.connect(url) as conn:
        h.floor_table(conn, "collection_feedbackevent", table, indexes=indexes)
        conn.execute("CHECKPOINT")
        loads, dumps = orjson.loads, orjson.dumps
        received = "2026-11-26T00:00:00+00:00"
        statement = f"COPY {table} ({FEEDBACK_COLUMNS}) FROM STDIN"

        def write(copy, raw: bytes) -> int:
            events = loads(raw)
            for e in events:
                value = e.get("value")
                copy.write_row((1, e["idempotency_key"], e["external_id"], e["signal"],
                                None if value is None else dumps(value).decode(), e.get("actor") or "",
                                e["occurred_at"], received))
            return len(events)

        count = 0
        started = time.perf_counter()
        with conn.cursor() as cursor, open(path, "rb") as lines:
            if per_body:
                for raw in lines:
                    with cursor.copy(statement) as copy:
                        count += write(copy, raw)
                    conn.commit()
            else:
                with cursor.copy(statement) as copy:
                    for raw in lines:
                        count += write(copy, raw)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
    return count, seconds


def latency(stack: h.Stack, key: str, rate: float, duration: float, warmup: float = 3.0,
            threads: int = 64) -> dict:
    """Offer single events at `rate`/s on a fixed schedule; returns latencies (ms) of the counted part."""
    tag = uuid.uuid4().hex[:8]
    jobs: queue.Queue = queue.Queue()
    results = []  # (scheduled, counted, latency seconds, ok, late seconds)
    lock = threading.Lock()

    def sender():
        while True:
            job = jobs.get()
            if job is None:
                return
            number, scheduled, counted = job
            late = time.perf_counter() - scheduled
            body = orjson.dumps(event(number, 1000, tag))
            try:
                status, _ = post(stack.port, key, body, timeout=10)
                ok = status == 201
            except Exception:  # noqa: BLE001 - counted as an error
                ok = False
            done = time.perf_counter()
            with lock:
                results.append((scheduled, counted, done - scheduled, ok, late))

    pool = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    total = int((warmup + duration) * rate)
    start = time.perf_counter() + 0.1
    for number in range(total):
        scheduled = start + number / rate
        pause = scheduled - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        jobs.put((number, scheduled, scheduled - start >= warmup))
    for _ in pool:
        jobs.put(None)
    drained = time.perf_counter() + min(30, stack.deadline.left())  # answers still pending after this are errors
    for thread in pool:
        thread.join(max(0.0, drained - time.perf_counter()))
    with lock:
        counted = [r for r in results if r[1]]
    missing = int(duration * rate) - len(counted)  # never answered before the end
    ms = sorted(r[2] * 1000 for r in counted)

    def pct(p):
        return ms[min(len(ms) - 1, int(p / 100 * len(ms)))] if ms else float("nan")

    return {"sent": len(counted), "errors": sum(1 for r in counted if not r[3]) + max(0, missing),
            "p50": pct(50), "p95": pct(95), "p99": pct(99), "max": ms[-1] if ms else float("nan"),
            "late_p99": sorted(r[4] * 1000 for r in counted)[int(0.99 * len(counted))] if counted else 0.0,
            "answered_per_s": len(counted) / (max(r[0] + r[2] for r in counted) - min(r[0] for r in counted))
            if counted else 0.0}


def main() -> int:
    args = h.arguments(__doc__.split("\n")[0], lambda p: (
        p.add_argument("--events", type=int, default=200_000, help="events sent in the list form"),
        p.add_argument("--per-request", type=int, default=100),
        p.add_argument("--clients", type=int, default=None, help="list-form client threads (default: web workers)"),
        p.add_argument("--records", type=int, default=10_000, help="records ingested first for events to link to"),
        p.add_argument("--rate", type=float, default=200, help="single events offered per second"),
        p.add_argument("--duration", type=float, default=30, help="seconds of single events counted"),
    ))
    clients = args.clients or args.web_workers
    h.say(f"bench/feedback.py, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} cores; {args.events:,} "
          f"events in lists of {args.per_request} from {clients} clients; single events at {args.rate:g}/s for "
          f"{args.duration:g} s; {args.web_workers} gunicorn workers")
    records = h.records_file(args.records)
    bodies = bodies_file(args.events, args.per_request, args.records)
    with h.Stack(args, worker=True) as stack:
        key = stack.source_key(f"bench-feedback-{uuid.uuid4().hex[:8]}")
        batch = wait_ingested(stack, key, upload(stack, key, records)["id"])
        h.say(f"set up: batch {batch['id']} with {batch['ingested_count']:,} records ingested for events to link to")

        count, seconds = floor(args.database_url, bodies, per_body=False)
        floor_rate = count / seconds
        h.say(f"floor (orjson + one COPY, no indexes): {count:,} events in {seconds:.1f} s = {floor_rate:,.0f} events/s")
        count, seconds = floor(args.database_url, bodies, per_body=True)
        h.say(f"for information, a COPY and commit per body of {args.per_request}: {seconds:.1f} s = "
              f"{count / seconds:,.0f} events/s")
        count, seconds = floor(args.database_url, bodies, per_body=False, indexes=True)
        h.say(f"for information, one COPY into a table with the app's indexes (primary key, the unique "
              f"idempotency key, record, unlinked): {seconds:.1f} s = {count / seconds:,.0f} events/s, "
              f"{count / seconds / floor_rate:.2f}x the floor")

        with h.connect(args.database_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        accepted, seconds = throughput(stack, key, bodies, clients)
        if accepted != args.events:
            raise RuntimeError(f"the app accepted {accepted} of {args.events} events")
        app_rate = accepted / seconds
        with h.connect(args.database_url) as conn:
            linked = conn.execute("SELECT count(*) FROM collection_feedbackevent WHERE record_id IS NOT NULL").fetchone()[0]
        h.say(f"app (list form): {accepted:,} events in {seconds:.1f} s = {app_rate:,.0f} events/s "
              f"({linked:,} linked to a known record)")

        with h.connect(args.database_url, autocommit=True) as conn:
            # The table went from empty to --events rows in seconds; autovacuum would gather its
            # statistics within a minute, so the latency phase starts from that steady state.
            conn.execute("ANALYZE collection_feedbackevent")
            conn.execute("CHECKPOINT")
        lat = latency(stack, key, args.rate, args.duration)

    ok = h.verdict("feedback throughput (lists)", app_rate, floor_rate, "events/s", RATIO_TARGET)
    p99_ok = lat["p99"] < P99_TARGET_MS and lat["errors"] == 0
    h.say(f"single events at {args.rate:g}/s offered for {args.duration:g} s: {lat['sent']:,} sent, "
          f"{lat['errors']} errors, answered {lat['answered_per_s']:.0f}/s; latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms, "
          f"max {lat['max']:.1f} ms (generator lag p99 {lat['late_p99']:.1f} ms); "
          f"target p99 < {P99_TARGET_MS} ms, no errors: {'MET' if p99_ok else 'MISSED'}")
    return 0 if ok and p99_ok else 1


if __name__ == "__main__":
    sys.exit(main())
