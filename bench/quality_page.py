"""The label quality pages with 1,000,000 labels: the cold computation, then p50/p95 per page through gunicorn.

    flock /tmp/sieve-bench.lock .venv/bin/python bench/quality_page.py              # the issue's sizes
    flock /tmp/sieve-bench.lock .venv/bin/python bench/quality_page.py --items 20000 --requests 10   # quick

The world, on PostgreSQL in a database of its own (sieve_bench_quality, dropped, made and migrated), made
with INSERT ... SELECT over generate_series (minutes, not hours): `--raters` raters (a tenth experts, a
tenth end users) in one single-choice project with 3 classes, `--items` items routed by the route step,
each labeled by `--overlap` raters (a submitted lease and its human label, 5 to 60 s apart, spread over
26 weeks; each rater right with their own probability, some biased toward one class) and complete with
its majority as consensus; `--gold` gold items each answered by 20 raters; 1 in 50 leases skipped; two
feedback rules' labels on a quarter of the items; every record labeled by its model-output source; a
finished Dawid-Skene run with a confusion matrix per rater; hourly rates per kind. Then ANALYZE, as
autovacuum would.

Timed: the cold computation of every figure (`quality_compute`, in this process) once; then the cache is
warmed by one view, and each page is fetched by a logged-in staff session (cookie from /admin/login/) from
a real gunicorn (the harness's, 4 sync workers): `--warmup` requests, then `--requests` one after the
other. The baseline is a trivial staff page in the same run (the project's feedback rules page: a few
small queries); the ratio printed is a page's median over the baseline's. Target (issue 10): the project
quality page's p95 under 300 ms. The exit status is 1 when a quality page misses it.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _harness as h  # noqa: E402
from pages import PASSWORD, p95, session_for, timed  # noqa: E402  the admin pages bench's login and timing

TARGET_MS = 300
CHOICES = [{"value": "positive", "label": "Positive", "hotkey": "1"},
           {"value": "negative", "label": "Negative", "hotkey": "2"},
           {"value": "neutral", "label": "Neutral", "hotkey": "3"}]


def options(parser):
    parser.add_argument("--raters", type=int, default=1000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--overlap", type=int, default=5)
    parser.add_argument("--gold", type=int, default=500, help="gold items, each answered by 20 raters")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")


def fill(args) -> dict:
    """Make the world; returns the ids the timed pages use."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from collection.models import Batch, Record, Source
    from labeling import services
    from labeling.models import Annotation, Assignment, ConsensusRun, LabelingProject, Membership, QueueItem, Rater

    started = time.monotonic()
    User = get_user_model()
    User.objects.create_superuser("bench", "bench@example.com", PASSWORD)
    kinds = [Rater.Kind.EXPERT if i % 10 == 0 else Rater.Kind.END_USER if i % 10 == 1 else Rater.Kind.GENERALIST
             for i in range(args.raters)]
    users = User.objects.bulk_create([User(username=f"rater-{i:04d}", password="!") for i in range(args.raters)])
    raters = Rater.objects.bulk_create([Rater(user=u, kind=k) for u, k in zip(users, kinds)])
    model = Source.objects.create(name="classifier-v7", kind=Source.Kind.MODEL_OUTPUT)
    batch = Batch.objects.create(source=model, status=Batch.Status.ADMITTED, format="ndjson", payload="bench",
                                 sha256="0" * 64, record_count=args.items + args.gold,
                                 ingested_count=args.items + args.gold)
    n = args.items + args.gold
    with connection.cursor() as cursor:
        # The model's label: the item's true class (g % 3) four times in five.
        cursor.execute(f"""
            INSERT INTO {Record._meta.db_table} (batch_id, source_id, line, external_id, features, label, is_current)
            SELECT %s, %s, g, 'rec-' || g, jsonb_build_object('text', 'review number ' || g),
                   to_jsonb((ARRAY['positive', 'negative', 'neutral'])[1 + (CASE WHEN g %% 5 = 0 THEN g + 1 ELSE g END)
                                                                            %% 3]), true
              FROM generate_series(1, %s) g""", [batch.pk, model.pk, n])
    project = services.project_create(
        name="reviews-1m", choices=CHOICES, overlap=args.overlap, sources=[model], gold_rate=0.05,
        hourly_rates={"generalist": 18, "expert": 75, "end_user": 0}, min_gold_accuracy=0.5, min_gold_answers=10)
    services.batch_add_to_project(project=project, batch=batch, actor="bench")
    Membership.objects.bulk_create([Membership(project=project, rater=r) for r in raters])
    rules = [services.feedback_rule_create(project=project, name=name, signal="thumbs", op="eq", threshold=t,
                                           label=label) for name, t, label in (("thumbs up", "up", "positive"),
                                                                               ("thumbs down", "down", "negative"))]
    h.say(f"raters, records, items and members made in {time.monotonic() - started:.1f} s")
    Q, A, N, R = (QueueItem._meta.db_table, Assignment._meta.db_table, Annotation._meta.db_table,
                  Record._meta.db_table)
    first_rater = raters[0].pk
    assert raters[-1].pk - first_rater == len(raters) - 1, "the raters' ids are not one run"
    now = timezone.now()
    step = time.monotonic()
    with connection.cursor() as cursor:
        # Items in record order: the first `gold` become gold (answer = true class), the rest regular.
        cursor.execute(f"CREATE TEMP TABLE bench_item AS SELECT q.id, r.line AS g, "
                       f"row_number() OVER (ORDER BY q.id) AS k FROM {Q} q JOIN {R} r ON r.id = q.record_id "
                       f"WHERE q.project_id = %s", [project.pk])
        cursor.execute(f"UPDATE {Q} q SET is_gold = true, gold_answer = to_jsonb((ARRAY['positive', 'negative', "
                       f"'neutral'])[1 + b.g %% 3]) FROM bench_item b WHERE b.id = q.id AND b.k <= %s", [args.gold])
        # Who labels what: item k gets raters (k*37 + j*197) mod R, j < overlap (distinct for R = 1,000),
        # so a rater shares ~200 items with each of ten others: enough for Cohen's kappa. Rater r is right
        # with probability 0.55 + 0.4 * (r mod 10) / 10; every 50th rater overuses "negative".
        cursor.execute("""
            CREATE TEMP TABLE bench_label AS
            SELECT b.id AS item_id, b.g, %s + ((b.k * 37 + j * 197) %% %s) AS rater_id,
                   %s::timestamptz - ((b.k %% 182) || ' days')::interval - ((j * 613 + b.k) %% 86400 || ' s')::interval
                       AS leased_at,
                   5 + (b.k * 7 + j * 13) %% 56 AS seconds
              FROM bench_item b, generate_series(0, %s - 1) j WHERE b.k > %s""",
                       [first_rater, args.raters, now, args.overlap, args.gold])
        cursor.execute(f"""
            INSERT INTO {A} (item_id, project_id, rater_id, state, is_gold, holds_slot, leased_at, expires_at,
                             finished_at, skip_reason)
            SELECT item_id, %s, rater_id, 'submitted', false, false, leased_at, leased_at + interval '15 min',
                   leased_at + seconds * interval '1 s', '' FROM bench_label""", [project.pk])
        h.say(f"  {cursor.rowcount:,} submitted leases in {time.monotonic() - step:.1f} s")
        step = time.monotonic()
        cursor.execute(f"""
            INSERT INTO {N} (item_id, project_id, assignment_id, rater_id, actor, provenance, value, created_at,
                             is_gold)
            SELECT a.item_id, a.project_id, a.id, a.rater_id, '', 'human',
                   to_jsonb((ARRAY['positive', 'negative', 'neutral'])[1 + CASE
                       WHEN (a.rater_id - %s) %% 50 = 7 AND random() < 0.5 THEN 1
                       WHEN random() < 0.55 + 0.4 * ((a.rater_id - %s) %% 10) / 10.0 THEN r.line %% 3
                       ELSE floor(random() * 3)::int END]),
                   a.finished_at, false
              FROM {A} a JOIN {Q} q ON q.id = a.item_id JOIN {R} r ON r.id = q.record_id
             WHERE a.project_id = %s AND a.state = 'submitted'""", [first_rater, first_rater, project.pk])
        labels = cursor.rowcount
        h.say(f"  {labels:,} human labels in {time.monotonic() - step:.1f} s")
        step = time.monotonic()
        # Skips: one lease in 50 more, on items the rater did not label.
        cursor.execute(f"""
            INSERT INTO {A} (item_id, project_id, rater_id, state, is_gold, holds_slot, leased_at, expires_at,
                             finished_at, skip_reason)
            SELECT b.id, %s, %s + ((b.k * 37 + %s * 197 + 1) %% %s), 'skipped', false, false, %s::timestamptz,
                   %s::timestamptz + interval '15 min', %s::timestamptz + interval '9 s', 'unsure'
              FROM bench_item b WHERE b.k > %s AND b.k %% 10 = 0 ON CONFLICT DO NOTHING""",
                       [project.pk, first_rater, args.overlap, args.raters, now, now, now, args.gold])
        # Gold answers: each gold item by 20 raters, scored.
        cursor.execute(f"""
            WITH answered AS (
                SELECT b.id AS item_id, b.g, %s + ((b.k * 53 + j * 47) %% %s) AS rater_id, j
                  FROM bench_item b, generate_series(0, 19) j WHERE b.k <= %s
            ), leased AS (
                INSERT INTO {A} (item_id, project_id, rater_id, state, is_gold, holds_slot, leased_at, expires_at,
                                 finished_at, skip_reason)
                SELECT item_id, %s, rater_id, 'submitted', true, false, %s::timestamptz - (j || ' days')::interval,
                       %s::timestamptz - (j || ' days')::interval + interval '15 min',
                       %s::timestamptz - (j || ' days')::interval + interval '20 s', '' FROM answered
                ON CONFLICT DO NOTHING RETURNING id, item_id, rater_id, finished_at
            ), valued AS (
                SELECT l.*, CASE WHEN random() < 0.55 + 0.4 * ((l.rater_id - %s) %% 10) / 10.0 THEN r.line %% 3
                                 ELSE floor(random() * 3)::int END AS v, r.line %% 3 AS truth
                  FROM leased l JOIN {Q} q ON q.id = l.item_id JOIN {R} r ON r.id = q.record_id
            )
            INSERT INTO {N} (item_id, project_id, assignment_id, rater_id, actor, provenance, value, correct, is_gold,
                             created_at)
            SELECT item_id, %s, id, rater_id, '', 'human', to_jsonb((ARRAY['positive', 'negative', 'neutral'])[1 + v]),
                   v = truth, true, finished_at FROM valued""",
                       [first_rater, args.raters, args.gold, project.pk, now, now, now, first_rater, project.pk])
        gold_answers = cursor.rowcount
        # Process feedback on a quarter of the items (feedback_event carries no foreign key).
        cursor.execute(f"""
            INSERT INTO {N} (item_id, project_id, rater_id, actor, provenance, value, rule_id, feedback_event_id,
                             created_at, is_gold)
            SELECT b.id, %s, NULL, 'actor-' || b.k, 'process_feedback',
                   CASE WHEN b.k %% 2 = 0 THEN '"positive"'::jsonb ELSE '"negative"'::jsonb END,
                   CASE WHEN b.k %% 2 = 0 THEN %s ELSE %s END, b.k, %s, false
              FROM bench_item b WHERE b.k > %s AND b.k %% 4 = 0""",
                       [project.pk, rules[0].pk, rules[1].pk, now, args.gold])
        feedback = cursor.rowcount
        # Settled: each regular item complete with its majority (a tie: no consensus), as settling leaves them.
        cursor.execute(f"""
            WITH votes AS (
                SELECT item_id, value, count(*) AS n,
                       rank() OVER (PARTITION BY item_id ORDER BY count(*) DESC) AS place,
                       count(*) OVER (PARTITION BY item_id) AS kinds
                  FROM {N} WHERE project_id = %s AND provenance = 'human' AND NOT is_gold GROUP BY item_id, value
            ), top AS (
                SELECT item_id, min(value::text)::jsonb AS value, count(*) AS tied, max(n) AS n FROM votes
                 WHERE place = 1 GROUP BY item_id
            )
            UPDATE {Q} q SET state = 'complete', submitted_count = needed, leased_count = 0,
                             consensus = CASE WHEN top.tied = 1 THEN top.value END,
                             agreement = top.n::float / needed, confidence = top.n::float / needed,
                             decided_by = 'majority', completed_at = %s
              FROM top WHERE top.item_id = q.id""", [project.pk, now])
        # The open tail: the newest tenth of the regular items still need two labels each.
        cursor.execute(f"UPDATE {Q} q SET state = 'open', submitted_count = needed - 2, consensus = NULL, "
                       f"completed_at = NULL FROM bench_item b WHERE b.id = q.id AND b.k > %s", [n - args.items // 10])
    h.say(f"  skips, {gold_answers:,} gold answers, {feedback:,} feedback labels and consensus in "
          f"{time.monotonic() - step:.1f} s")
    import numpy as np

    rng = np.random.default_rng(1)
    confusion, accuracy = {}, {}
    for i, r in enumerate(raters):
        right = 0.55 + 0.4 * (i % 10) / 10
        matrix = np.full((3, 3), (1 - right) / 2) + np.diag([right - (1 - right) / 2] * 3)
        matrix = np.clip(matrix + rng.normal(0, 0.02, (3, 3)), 0.001, None)
        matrix /= matrix.sum(axis=1, keepdims=True)
        confusion[str(r.pk)] = matrix.round(4).tolist()
        accuracy[str(r.pk)] = float(np.trace(matrix) / 3)
    ConsensusRun.objects.create(project=project, status=ConsensusRun.Status.DONE, finished_at=now,
                                classes=[c["value"] for c in CHOICES], rater_confusion=confusion,
                                rater_accuracy=accuracy, label_count=labels, rater_count=len(raters),
                                item_count=args.items)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size = cursor.fetchone()[0]
    h.say(f"filled in {time.monotonic() - started:.1f} s ({size}): {labels:,} labels on {args.items:,} items by "
          f"{args.raters:,} raters, {args.gold} gold items")
    slow = LabelingProject.objects.get(pk=project.pk)
    return {"project": slow.pk, "rater": raters[7].pk, "labels": labels}


def main() -> int:
    args = h.arguments(__doc__.splitlines()[0], options)
    if args.database_url.endswith("/sieve_bench"):
        args.database_url += "_quality"
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=args.database_url,
                      REDIS_URL=args.redis_url, LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.core.cache import cache

    from labeling.models import LabelingProject
    from labeling.selectors.quality import quality_compute, quality_figures_refresh

    all_met = True
    with h.Stack(args, worker=False) as stack:
        ids = fill(args)
        project = LabelingProject.objects.get(pk=ids["project"])
        cache.clear()  # this run's Redis database: no figures from an earlier run
        started = time.monotonic()
        figures = quality_compute(project=project)
        cold = time.monotonic() - started
        a = figures["agreement"]
        h.say(f"cold computation of every figure (in this process): {cold:.2f} s; alpha {a['alpha']:.3f} "
              f"{tuple(round(x, 3) for x in a['interval'])}, {a['pairs']['count']:,} rater pairs, "
              f"{len(figures['weeks'])} weeks, {len(figures['raters']):,} rater rows")
        quality_figures_refresh(project=project)  # the cache the pages read, as the task leaves it
        session = session_for(stack.base)
        p, r = ids["project"], ids["rater"]
        baseline = timed(session, f"{stack.base}/label/admin/projects/{p}/rules/", warmup=args.warmup,
                         n=args.requests)
        base_ms = statistics.median(baseline)
        h.say(f"baseline, the project's rules page: median {base_ms:.1f} ms, p95 {p95(baseline):.1f} ms "
              f"({args.requests} requests after {args.warmup} warm-up, one at a time)")
        pages = [
            ("quality page", f"/label/admin/projects/{p}/quality/", True),
            ("quality page, sorted by kappa", f"/label/admin/projects/{p}/quality/?sort=-kappa", True),
            ("quality page, raters page 15", f"/label/admin/projects/{p}/quality/?sort=median_seconds&page=15", True),
            ("a rater's page", f"/label/admin/projects/{p}/quality/raters/{r}/", True),
            ("project overview (for information)", f"/label/admin/projects/{p}/", False),
        ]
        for name, url, judged in pages:
            samples = timed(session, stack.base + url, warmup=args.warmup, n=args.requests)
            median, high = statistics.median(samples), p95(samples)
            met = high < TARGET_MS
            if judged:
                all_met &= met
            verdict = f"(target p95 < {TARGET_MS} ms): {'MET' if met else 'MISSED'}" if judged else ""
            h.say(f"{name:<36} median {median:6.1f} ms  p95 {high:6.1f} ms  ratio {median / base_ms:5.1f}x "
                  f"baseline  {verdict}")
    if not args.keep:
        from pages import drop

        drop(args.database_url)
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
