"""The labeling queue: annotations per second with 50 raters, `next` over HTTP, and `next` at 10,000 vs 1,000,000 items.

    flock /tmp/sieve-bench.lock .venv/bin/python bench/next_item.py --database-url \
        postgres://postgres@127.0.0.1:5432/sieve_bench_next --redis-url redis://127.0.0.1:6379/15
    .venv/bin/python bench/next_item.py --items 100000 --duration 20 --http-seconds 10   # a quick run

What is measured, all in one run on one machine (loopback only), on one project with `--items`
queue items (overlap 3) and one with `--small` items, both fed by the route step's own INSERT ... SELECT
from records made with generate_series:
- (c) scale: `item_next` through the service layer in this process, calls alternating between the small
  and the large project (so machine noise hits both alike), each followed by a submit that is not timed,
  raters taken in turn from 50. Target: the large queue's median and p99 at most 1.5x the small one's.
- (a) throughput: `--raters` processes (forked, each its own rater and database connection) call
  `item_next` then `assignment_submit` with no think time for `--duration` s; submitted annotations per
  second counted in that window. Target >= 300/s. The floor, measured in the same run, is the same
  number of processes each committing single-row INSERTs (one commit each, like a submit) into a bare
  table for 10 s; the ratio to it is printed.
- (b) HTTP: gunicorn (`--web-workers` sync workers), `GET /api/v1/projects/{id}/next` offered open-loop
  at `--rate`/s spread over the raters (each `next` followed by its `POST .../annotation`, not timed), for
  `--http-seconds` after a 3 s warm-up; latency from the scheduled send to the end of the answer.
  Target: next p99 < 20 ms. `/healthz` at the same rate is printed for information.
- (d) after every phase: over-assigned items (more human labels than `needed`, or counters that
  disagree with the rows) and duplicate labels (one rater twice on one item), counted with SQL. Target 0.
The exit status is 1 when a target is missed.
"""
import http.client
import json
import multiprocessing
import os
import queue
import statistics
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

THROUGHPUT_TARGET = 300  # annotations / s
P99_TARGET_MS = 20
SCALE_TARGET = 1.5  # large / small, median and p99
CHOICES = [{"value": "positive", "hotkey": "1"}, {"value": "negative", "hotkey": "2"}]


def django_setup(env: dict) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(h.ROOT))
    import django

    django.setup()


def fill(name: str, items: int, raters: list) -> tuple:
    """A source, an admitted batch of `items` records (generate_series), a project with overlap 3 fed by
    it, routed by the route step's own statement. Returns (project, seconds the route took)."""
    from django.db import connection

    from collection.models import Batch, Record, Source
    from labeling import services

    source = Source.objects.create(name=f"{name}-{uuid.uuid4().hex[:6]}", kind="app")
    batch = Batch.objects.create(source=source, status=Batch.Status.ADMITTED, format="ndjson", payload="bench",
                                 sha256=uuid.uuid4().hex, record_count=items, ingested_count=items)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO {Record._meta.db_table} (batch_id, source_id, line, external_id, features, is_current)
            SELECT %s, %s, g, 'rec-' || g, jsonb_build_object('text', 'review number ' || g, 'stars', g %% 5), true
              FROM generate_series(1, %s) g""", [batch.pk, source.pk, items])
    project = services.project_create(name=name, choices=CHOICES, overlap=3, sources=[source])
    started = time.perf_counter()
    routed = services.batch_add_to_project(project=project, batch=batch, actor="bench")
    seconds = time.perf_counter() - started
    assert routed.item_count == items, routed.item_count
    services.project_add_raters(project=project, raters=raters)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project, seconds


def make_raters(count: int) -> list:
    from django.contrib.auth import get_user_model

    from labeling.models import Rater

    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"bench-rater-{i:02d}", password="!") for i in range(count)])
    Rater.objects.bulk_create([Rater(user=u, kind=Rater.Kind.GENERALIST) for u in users])
    return list(Rater.objects.select_related("user").order_by("id"))


def integrity() -> dict:
    """Over-assigned items and duplicate labels, counted with SQL over the whole database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*) FROM labeling_queueitem q
              LEFT JOIN (SELECT item_id, count(*) n FROM labeling_annotation
                          WHERE provenance = 'human' AND undone_at IS NULL GROUP BY item_id) a ON a.item_id = q.id
             WHERE NOT q.is_gold AND (coalesce(a.n, 0) > q.needed OR coalesce(a.n, 0) <> q.submitted_count
                                      OR q.submitted_count + q.leased_count > q.needed)""")
        over = cursor.fetchone()[0]
        cursor.execute("""
            SELECT count(*) FROM (SELECT 1 FROM labeling_annotation WHERE provenance = 'human' AND undone_at IS NULL
                                   GROUP BY item_id, rater_id HAVING count(*) > 1) d""")
        duplicates = cursor.fetchone()[0]
        cursor.execute("""
            SELECT count(*) FROM labeling_queueitem q
             WHERE q.leased_count <> (SELECT count(*) FROM labeling_assignment a
                                       WHERE a.item_id = q.id AND a.state = 'leased' AND a.holds_slot)
               AND q.id IN (SELECT item_id FROM labeling_assignment)""")
        leases = cursor.fetchone()[0]
    return {"over_assigned": over, "duplicates": duplicates, "lease_counts_off": leases}


def report_integrity(phase: str) -> bool:
    found = integrity()
    ok = not any(found.values())
    h.say(f"({phase}) integrity: {found['over_assigned']} over-assigned items, {found['duplicates']} duplicate "
          f"labels, {found['lease_counts_off']} items whose lease count disagrees with their leases: "
          f"{'MET' if ok else 'MISSED'}")
    return ok


def pct(values: list, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


# --- (c) next at two queue sizes


def scale(small, large, raters: list, samples: int) -> dict:
    from labeling import services

    timings = {small.pk: [], large.pk: []}
    for i in range(samples + 200):
        for project in (small, large):
            rater = raters[i % len(raters)]
            started = time.perf_counter()
            lease = services.item_next(rater=rater, project=project)
            took = time.perf_counter() - started
            services.assignment_submit(assignment=lease, value=CHOICES[i % 2]["value"])
            if i >= 200:  # the first calls warm caches and connections
                timings[project.pk].append(took * 1000)
    return timings


# --- (a) throughput with processes


def rater_loop(rater_id: int, project_id: int, start_at: float, stop_at: float, results) -> None:
    """One rater process: next, submit, again, until stop_at; reports submits inside [start_at, stop_at)."""
    from django.db import connections

    connections.close_all()
    from labeling import services
    from labeling.models import LabelingProject, Rater

    rater = Rater.objects.select_related("user").get(pk=rater_id)
    project = LabelingProject.objects.get(pk=project_id)
    counted = errors = 0
    number = 0
    try:
        while time.time() < start_at:
            time.sleep(0.01)
        while True:
            now = time.time()
            if now >= stop_at:
                break
            lease = services.item_next(rater=rater, project=project)
            if lease is None:
                errors += 1
                continue
            number += 1
            services.assignment_submit(assignment=lease, value=CHOICES[number % 2]["value"])
            if time.time() < stop_at:
                counted += 1
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        results.put((rater_id, counted, repr(exc)))
        return
    finally:
        connections.close_all()
    results.put((rater_id, counted, None if not errors else f"{errors} empty nexts"))


def throughput(project, raters: list, duration: float, deadline: h.Deadline) -> tuple[int, float, list]:
    from django.db import connections

    connections.close_all()  # never fork with an open connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 3  # every process forked and connected before the clock starts
    stop_at = start_at + duration
    procs = [context.Process(target=rater_loop, args=(r.pk, project.pk, start_at, stop_at, results), daemon=True)
             for r in raters]
    for proc in procs:
        proc.start()
    rows = [results.get(timeout=max(1.0, deadline.left())) for _ in procs]
    for proc in procs:
        proc.join(30)
    problems = [f"rater {r}: {p}" for r, _, p in rows if p]
    return sum(c for _, c, _ in rows), duration, problems


def floor_loop(url: str, table: str, start_at: float, stop_at: float, results) -> None:
    count = 0
    with h.connect(url, autocommit=True) as conn:
        while time.time() < start_at:
            time.sleep(0.01)
        while time.time() < stop_at:
            conn.execute(f"INSERT INTO {table} (item_id, project_id, provenance, value, actor, created_at) "
                         "VALUES (1, 1, 'human', '\"positive\"', '', now())")
            count += 1
    results.put(count)


def floor(url: str, processes: int, seconds: float) -> float:
    """Single-row INSERT + commit from `processes` connections into a bare copy of the annotation table."""
    table = "bench_next_floor"
    with h.connect(url) as conn:
        h.floor_table(conn, "labeling_annotation", table)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 2
    procs = [context.Process(target=floor_loop, args=(url, table, start_at, start_at + seconds, results), daemon=True)
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    total = sum(results.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join(10)
    with h.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}")
    return total / seconds


# --- (b) HTTP


def request(port: int, method: str, path: str, token: str | None = None, body: bytes | None = None) -> tuple:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def open_loop(rate: float, duration: float, work, *, processes: int, warmup: float = 3.0,
              threads: int = 16) -> dict:
    """Call work(number) on a fixed schedule (send number n at start + n / rate) from `processes` forked
    load processes, each with its own threads, taking every processes-th send: one Python process
    cannot offer this many requests on time. work returns the perf_counter time at which its timed part
    ended, or an error. Latency runs from the scheduled time, so a backlog counts against the app."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = time.time() + 1.0
    procs = [context.Process(target=_offer, args=(k, processes, rate, duration, warmup, threads, start, work, results),
                             daemon=True) for k in range(processes)]
    for proc in procs:
        proc.start()
    rows = []
    for _ in procs:
        rows += results.get(timeout=warmup + duration + 120)
    for proc in procs:
        proc.join(10)
    counted = [r for r in rows if r[0]]
    ms = [r[1] for r in counted if r[1] is not None]
    return {"sent": len(counted), "errors": sum(1 for r in counted if r[1] is None), "p50": pct(ms, 50),
            "p95": pct(ms, 95), "p99": pct(ms, 99), "max": max(ms, default=float("nan")),
            "late_p99": pct([r[3] for r in counted], 99), "failures": [r[2] for r in counted if r[1] is None][:3]}


def _offer(k: int, processes: int, rate: float, duration: float, warmup: float, threads: int, start: float, work,
           results) -> None:
    """One load process: sends k, k + processes, ... on the shared schedule; reports (counted, ms, error, late ms)."""
    jobs: queue.Queue = queue.Queue()
    rows, lock = [], threading.Lock()
    origin = time.perf_counter() + (start - time.time())  # the shared wall-clock start on this process's clock

    def sender():
        while (job := jobs.get()) is not None:
            number, scheduled = job
            late = (time.perf_counter() - scheduled) * 1000
            try:
                ended = work(number)
            except Exception as exc:  # noqa: BLE001 - counted as an error
                ended = repr(exc)
            ok = isinstance(ended, float)
            with lock:
                rows.append((number / rate >= warmup, (ended - scheduled) * 1000 if ok else None,
                             None if ok else ended, late))

    pool = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for number in range(k, int((warmup + duration) * rate), processes):
        scheduled = origin + number / rate
        pause = scheduled - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        jobs.put((number, scheduled))
    for _ in pool:
        jobs.put(None)
    for thread in pool:
        thread.join(60)
    results.put(rows)


class ServiceSubmitter:
    """Submits leases through the service layer from one thread (one database connection) per load process."""

    def __init__(self, project):
        self.project = project
        self.jobs: queue.Queue | None = None

    def submit(self, lease: dict, value: str) -> None:
        if self.jobs is None:  # first use in this (forked) process
            from django.db import connections

            connections.close_all()  # the parent's connection is not this process's to use
            self.jobs = queue.Queue()
            threading.Thread(target=self._run, daemon=True).start()
        done = threading.Event()
        self.jobs.put((lease, value, done))
        done.wait(30)

    def _run(self) -> None:
        from labeling import services
        from labeling.models import Assignment

        while True:
            lease, value, done = self.jobs.get()
            assignment = Assignment(id=lease["id"], project_id=self.project.pk, item_id=lease["item"])
            assignment.project = self.project
            try:
                services.assignment_submit(assignment=assignment, value=value)
            finally:
                done.set()


def http_phase(stack: h.Stack, project, tokens: list, rate: float, seconds: float, processes: int,
               submit_over_http: bool) -> dict:
    """Each tick: one rater's next over HTTP (timed: scheduled send to answer), then their label (not timed),
    over HTTP too or through the service layer. Send n goes to rater n % raters, so each rater is served by
    one load process, and a rater's next waits for their previous label."""
    locks = [threading.Lock() for _ in tokens]
    path = f"/api/v1/projects/{project.pk}/next"
    submitter = ServiceSubmitter(project)

    def tick(number: int):
        rater = number % len(tokens)
        with locks[rater]:
            status, body = request(stack.port, "GET", path, tokens[rater])
            answered = time.perf_counter()
            if status != 200:
                return f"next {status}: {body[:200]!r}"
            lease, value = json.loads(body), CHOICES[number % 2]["value"]
            if not submit_over_http:
                submitter.submit(lease, value)
                return answered
            done, _ = request(stack.port, "POST", f"/api/v1/assignments/{lease['id']}/annotation", tokens[rater],
                              json.dumps({"value": value}).encode())
            return answered if done in (200, 201) else f"submit {done}"

    return open_loop(rate, seconds, tick, processes=processes)


def health_phase(stack: h.Stack, rate: float, seconds: float, processes: int) -> dict:
    def health(number: int):
        status, _ = request(stack.port, "GET", "/healthz")
        return time.perf_counter() if status == 200 else f"healthz {status}"

    return open_loop(rate, seconds, health, processes=processes)


def main() -> int:
    args = h.arguments(__doc__.split("\n")[0], lambda p: (
        p.add_argument("--items", type=int, default=1_000_000, help="queue items in the large project"),
        p.add_argument("--small", type=int, default=10_000, help="queue items in the small project"),
        p.add_argument("--raters", type=int, default=50),
        p.add_argument("--duration", type=float, default=60, help="seconds of the throughput phase"),
        p.add_argument("--samples", type=int, default=2000, help="timed nexts per project in the scale phase"),
        p.add_argument("--rate", type=float, default=100, help="next requests offered per second over HTTP"),
        p.add_argument("--http-seconds", type=float, default=30),
        p.add_argument("--phases", default="cab", help="which phases to run, in this order (c, a, b)"),
        p.add_argument("--load-processes", type=int, default=5, help="processes offering the HTTP load"),
    ))
    if args.database_url.endswith("/sieve_bench"):
        args.database_url += "_next"  # never the database of the other benches
    h.say(f"bench/next_item.py, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} cores; "
          f"{args.items:,} and {args.small:,} items, overlap 3, {args.raters} raters; throughput for "
          f"{args.duration:g} s; next over HTTP at {args.rate:g}/s for {args.http_seconds:g} s, "
          f"{args.web_workers} gunicorn workers")
    met = True
    with h.Stack(args, worker=False) as stack:
        django_setup(stack.env)
        raters = make_raters(args.raters)
        started = time.perf_counter()
        large, route_large = fill("bench-large", args.items, raters)
        small, route_small = fill("bench-small", args.small, raters)
        h.say(f"set up in {time.perf_counter() - started:.0f} s: routing {args.items:,} records took "
              f"{route_large:.1f} s, {args.small:,} took {route_small:.1f} s (for information)")

        for phase in args.phases:
            met &= PHASES[phase](args, stack, small, large, raters)
    h.say("all targets met" if met else "a target was missed")
    return 0 if met else 1


def phase_c(args, stack, small, large, raters) -> bool:
    """next at two queue sizes, through the service layer."""
    met = True
    timings = scale(small, large, raters, args.samples)
    a, b = timings[small.pk], timings[large.pk]
    for name, p in (("median", 50), ("p99", 99)):
        ratio = pct(b, p) / pct(a, p)
        ok = ratio <= SCALE_TARGET
        met &= ok
        h.say(f"(c) next {name}: {pct(a, p):.2f} ms at {args.small:,} items, {pct(b, p):.2f} ms at "
              f"{args.items:,} items; ratio {ratio:.2f}x (target <= {SCALE_TARGET}x): {'MET' if ok else 'MISSED'}")
    h.say(f"    for information, means {statistics.mean(a):.2f} / {statistics.mean(b):.2f} ms")
    return report_integrity("c") and met


def phase_a(args, stack, small, large, raters) -> bool:
    """Annotations per second from rater processes, against single-row commits from as many connections."""
    floor_rate = floor(args.database_url, args.raters, 10)
    count, seconds, problems = throughput(large, raters, args.duration, stack.deadline)
    rate = count / seconds
    ok = rate >= THROUGHPUT_TARGET and not problems
    h.say(f"(a) {args.raters} rater processes, next + submit, no think time: {count:,} annotations in "
          f"{seconds:.0f} s = {rate:,.0f}/s; floor (single-row INSERT + commit from {args.raters} connections) "
          f"{floor_rate:,.0f}/s; ratio {rate / floor_rate:.2f}x; target >= {THROUGHPUT_TARGET}/s: "
          f"{'MET' if ok else 'MISSED'}" + (f"; problems: {problems[:3]}" if problems else ""))
    return report_integrity("a") and ok


def phase_b(args, stack, small, large, raters) -> bool:
    """next over HTTP at a fixed offered rate: labels sent through the service layer (the issue's load: next
    requests only), then labels over HTTP too (twice the requests), and /healthz for reference."""
    from django.db import connections

    from labeling import services

    tokens = [services.rater_token(rater=r) for r in raters]
    connections.close_all()  # never fork with an open connection
    met = True
    for over_http in (False, True):
        measured = http_phase(stack, large, tokens, args.rate, args.http_seconds, args.load_processes, over_http)
        ok = measured["p99"] < P99_TARGET_MS and measured["errors"] == 0
        met &= ok or over_http  # the stricter variant is reported, the load is judged
        how = "each label POSTed over HTTP too" if over_http else "labels through the service layer"
        h.say(f"(b) GET next over HTTP at {args.rate:g}/s, {how} ({measured['sent']} counted, {measured['errors']} "
              f"errors{' ' + str(measured['failures']) if measured['failures'] else ''}): p50 {measured['p50']:.1f} "
              f"ms, p95 {measured['p95']:.1f} ms, p99 {measured['p99']:.1f} ms, max {measured['max']:.1f} ms (sends "
              f"late by p99 {measured['late_p99']:.1f} ms); target p99 < {P99_TARGET_MS} ms: "
              f"{'MET' if ok else 'MISSED'}{' (for information)' if over_http else ''}")
        met &= report_integrity("b")
    health = health_phase(stack, args.rate, min(args.http_seconds, 10), args.load_processes)
    h.say(f"    for information, /healthz at the same rate: p50 {health['p50']:.1f} ms, p99 {health['p99']:.1f} ms")
    return met


PHASES = {"a": phase_a, "b": phase_b, "c": phase_c}


if __name__ == "__main__":
    sys.exit(main())
