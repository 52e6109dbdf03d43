"""Bench of the validation engine: profiling + compare against a minimal floor, chunks, Parquet.

Run: .venv/bin/python bench/validation.py [--rows 1000000] [--parquet-rows 10000000]
Prints each figure with its ratio to the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from testdata.synthetic import bench_frame  # noqa: E402
from validation.stats import Profile, compare, profile_chunks, profile_frame, profile_parquet  # noqa: E402


def say(message: str) -> None:
    """Print a line at once (the run is long; progress should show)."""
    print(message, flush=True)


def timed(fn, repeat: int) -> tuple[float, object]:
    """Best wall time of `repeat` runs (the run least disturbed by other processes), and the
    last result; the floor is timed the same way."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def floor_pass(df, spec) -> None:
    """The floor: a numpy histogram on fixed edges per numeric column, value counts otherwise."""
    for name, fs in spec.features.items():
        if name == spec.label:
            continue
        if fs.kind == "numeric":
            np.histogram(df[name].to_numpy(), np.asarray(fs.edges))
        else:
            df[name].value_counts()


def same_report(a, b) -> list[str]:
    """Differences between two reports: findings exactly, metrics exactly but for sketch ones, which must agree
    within the sum of both reports' proven bounds (each is within its own bound of the exact value)."""
    diffs = []
    if (a.verdict, a.shift.kind, a.kinds()) != (b.verdict, b.shift.kind, b.kinds()):
        diffs.append(f"findings differ: {a.verdict}/{a.shift.kind}/{a.kinds() ^ b.kinds()}")
    for feature, metrics in a.metrics.items():
        for name, mv in metrics.items():
            other = b.metrics[feature][name].value
            tolerance = (mv.error or 0.0) + (b.metrics[feature][name].error or 0.0) + 1e-9 * max(1.0, abs(mv.value))
            if abs(mv.value - other) > tolerance:
                diffs.append(f"{feature}.{name}: {mv.value} vs {other}")
    return diffs


def write_parquet(path: Path, rows: int) -> None:
    """Write the batch frame `rows` long, one million rows at a time, 500k-row row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = 1_000_000
    writer = None
    for i in range(0, rows, part):
        table = pa.Table.from_pandas(bench_frame(min(part, rows - i), 100 + i // part, drift=True),
                                     preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=500_000)
    writer.close()


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM is per address space, so it restarts at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_prepare(rows: int, parquet_rows: int) -> None:
    """Child: profile the reference (the baseline) and write the Parquet batch if missing."""
    baseline = profile_frame(bench_frame(rows, 1), label="label")
    (OUT / "validation-baseline.json").write_text(baseline.to_json())
    path = OUT / f"validation-batch-{parquet_rows}.parquet"
    if not path.exists():
        start = time.perf_counter()
        write_parquet(path, parquet_rows)
        print(f"wrote {path.name} in {time.perf_counter() - start:.1f} s", flush=True)


def child_parquet(path: str, baseline_json: str) -> None:
    """Child: profile the Parquet file against the baseline, print JSON."""
    baseline = Profile.from_json(Path(baseline_json).read_text())
    start = time.perf_counter()
    report = compare(profile_parquet(path, spec=baseline.spec), baseline)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "verdict": report.verdict, "rows": report.n_batch,
                      "vmhwm_mb": peak_rss_mb()}))


def run_child(*args: str) -> tuple[str, float]:
    """Run this script as a child; return its output and its own ru_maxrss in MB (wait4)."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child {args[0]} failed with {proc.returncode}")
    return out, usage.ru_maxrss / 1024


def main() -> None:
    """Run every figure and print it with its ratio to the floor of the same run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parquet-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child-prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-parquet", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.child_prepare:
        child_prepare(args.rows, args.parquet_rows)
        return
    if args.child_parquet:
        child_parquet(*args.child_parquet)
        return

    # Children run first, while this process is small: a child's ru_maxrss also counts the
    # pages it shared with its parent before exec.
    say(f"data: reference and batch of {args.rows:,} rows, 10 numeric + 10 string features + label")
    out, _ = run_child("--child-prepare", "--rows", str(args.rows), "--parquet-rows", str(args.parquet_rows))
    if out.strip():
        say(out.strip())
    baseline_json = OUT / "validation-baseline.json"
    path = OUT / f"validation-batch-{args.parquet_rows}.parquet"
    out, child_maxrss = run_child("--child-parquet", str(path), str(baseline_json))
    child = json.loads(out.strip().splitlines()[-1])

    baseline = Profile.from_json(baseline_json.read_text())
    spec = baseline.spec
    batch = bench_frame(args.rows, 2, drift=True)
    floor, _ = timed(lambda: floor_pass(batch, spec), args.repeat)
    profile_s, profile = timed(lambda: profile_frame(batch, spec=spec), args.repeat)
    compare_s, report = timed(lambda: compare(profile, baseline), args.repeat)
    # The floor is single-threaded; profile_frame uses one thread per CPU (up to 4) by default.
    total_s, _ = timed(lambda: compare(profile_frame(batch, spec=spec), baseline), args.repeat)
    single_s, _ = timed(lambda: compare(profile_frame(batch, spec=spec, workers=1), baseline), args.repeat)
    say(f"floor (np.histogram per numeric + value_counts per string): {floor:.3f} s")
    say(f"profile batch: {profile_s:.3f} s ({profile_s / floor:.2f}x floor)")
    say(f"compare with baseline: {compare_s:.3f} s ({compare_s / floor:.2f}x floor)")
    say(f"profile + compare: {total_s:.3f} s; ratio {total_s / floor:.2f}x floor "
        f"(target <= 1.5x): {'MET' if total_s / floor <= 1.5 else 'MISSED'}")
    say(f"profile + compare on one thread (workers=1): {single_s:.3f} s; ratio {single_s / floor:.2f}x floor")
    say(f"report: verdict {report.verdict}, shift {report.shift.kind} {report.shift.drivers}, "
        f"drifted share {report.drifted_share:.0%}")

    chunks = [batch.iloc[i : i + args.rows // 4] for i in range(0, args.rows, args.rows // 4)]
    chunk_s, merged = timed(lambda: profile_chunks(chunks, spec=spec), 1)
    diffs = same_report(compare(merged, baseline), report)
    say(f"4 chunks profiled and merged: {chunk_s:.3f} s; merged report equals whole-frame report: "
        f"{'YES' if not diffs else 'NO ' + '; '.join(diffs[:5])}")

    ratio = child["seconds"] / total_s
    peak = child["vmhwm_mb"]
    say(f"parquet {child['rows']:,} rows in chunks: {child['seconds']:.2f} s "
        f"({ratio:.1f}x the {args.rows:,}-row run, target <= 11x: {'MET' if ratio <= 11 else 'MISSED'}); "
        f"peak RSS {peak:.0f} MB (child's VmHWM; wait4 ru_maxrss {child_maxrss:.0f} MB; "
        f"target < 600 MB: {'MET' if max(peak, child_maxrss) < 600 else 'MISSED'}); verdict {child['verdict']}")


if __name__ == "__main__":
    main()
