"""Bench of the label-quality maths: Dawid-Skene on a real set and on 1M generated labels, alpha + bootstrap.

Run: .venv/bin/python bench/dawid_skene.py [--labels 1000000] [--raters 1000] [--overlap 5] [--repeat 5]
Prints each figure with its ratio to a floor measured in the same run. The 1M-label run happens
in a child process, started before this process loads anything big, so its ru_maxrss (from
os.wait4) is its own peak resident memory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labeling.quality import (  # noqa: E402
    dawid_skene,
    encode,
    krippendorff_alpha,
    krippendorff_alpha_bootstrap,
    majority_vote,
)

PRODUCT = ROOT / "tests" / "data" / "crowd" / "zheng2017_product"
# Class mix of the generated truth, and the share of spammers (raters who answer uniformly).
PRIORS = (0.5, 0.3, 0.2)
SPAMMERS = 0.1


def say(message: str) -> None:
    """Print a line at once (the children's output interleaves with the parent's)."""
    print(message, flush=True)


def median_time(fn, repeat: int) -> tuple[float, object]:
    """Median wall time of `repeat` runs and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def generated(n_labels: int, n_raters: int, overlap: int, seed: int = 7):
    """Items x overlap distinct raters each; truth from PRIORS; each rater a random confusion
    matrix (diagonal 0.55-0.95, the rest split at random), a tenth of them uniform spammers."""
    rng = np.random.default_rng(seed)
    k = len(PRIORS)
    n_items = n_labels // overlap
    truth = rng.choice(k, n_items, p=PRIORS)
    accuracy = rng.uniform(0.55, 0.95, n_raters)
    off = rng.dirichlet(np.ones(k - 1), size=(n_raters, k)) * (1 - accuracy)[:, None, None]
    confusion = np.empty((n_raters, k, k))
    for true in range(k):
        confusion[:, true, true] = accuracy
        confusion[:, true, [c for c in range(k) if c != true]] = off[:, true]
    confusion[rng.random(n_raters) < SPAMMERS] = 1.0 / k
    raters = rng.integers(0, n_raters, (n_items, overlap))
    while True:  # redraw the rows where a rater came up twice
        sorted_rows = np.sort(raters, axis=1)
        dup = (sorted_rows[:, 1:] == sorted_rows[:, :-1]).any(axis=1)
        if not dup.any():
            break
        raters[dup] = rng.integers(0, n_raters, (int(dup.sum()), overlap))
    raters = raters.ravel()
    items = np.repeat(np.arange(n_items), overlap)
    cumulative = confusion[raters, truth[items]].cumsum(axis=1)
    labels = (rng.random(len(items))[:, None] > cumulative[:, :-1]).sum(axis=1)
    return items, raters, labels, truth


def floor_pass(items: np.ndarray, labels: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """The floor: one majority vote as bare numpy (a bincount of item x class, an argmax)."""
    return np.bincount(items * k + labels, minlength=n_items * k).reshape(n_items, k).argmax(axis=1)


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM restarts at exec, unlike a child's inherited pages)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_big(n_labels: int, n_raters: int, overlap: int, n_boot: int) -> None:
    """Child: generate the big set, time encode + DS, MV, alpha and its bootstrap; print JSON."""
    items, raters, labels, truth = generated(n_labels, n_raters, overlap)
    k = len(PRIORS)
    start = time.perf_counter()
    floor_pass(items, labels, len(truth), k)
    floor_s = time.perf_counter() - start
    start = time.perf_counter()
    m = encode(items, raters, labels)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    result = dawid_skene(m)
    ds_s = time.perf_counter() - start
    start = time.perf_counter()
    mv = majority_vote(m, tie="random", rng=0)
    mv_s = time.perf_counter() - start
    gold = truth[np.asarray(m.item_ids)]
    start = time.perf_counter()
    alpha = krippendorff_alpha(m)
    alpha_s = time.perf_counter() - start
    start = time.perf_counter()
    low, high = krippendorff_alpha_bootstrap(m, n_boot=n_boot)
    boot_s = time.perf_counter() - start
    print(json.dumps({
        "labels": m.n_labels, "items": m.n_items, "raters": m.n_raters, "floor_s": floor_s,
        "encode_s": encode_s, "ds_s": ds_s, "iterations": result.iterations, "converged": result.converged,
        "ds_accuracy": float((result.labels == gold).mean()), "mv_s": mv_s,
        "mv_accuracy": float((mv.labels == gold).mean()), "alpha": alpha, "alpha_s": alpha_s,
        "boot_s": boot_s, "ci": [low, high], "vmhwm_mb": peak_rss_mb(),
    }))


def run_child(*args: str) -> tuple[str, float]:
    """Run this script as a child; return its output and its ru_maxrss in MB (os.wait4)."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"child {args[0]} failed")
    return out, usage.ru_maxrss / 1024


def read_product() -> tuple[list, list, list, dict]:
    with open(PRODUCT / "answer.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(PRODUCT / "truth.csv", newline="") as f:
        truth = {row["question"]: int(row["truth"]) for row in csv.DictReader(f)}
    return [r["question"] for r in rows], [r["worker"] for r in rows], [int(r["answer"]) for r in rows], truth


def main() -> None:
    """Run every figure and print it with its ratio to the floor of the same run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--raters", type=int, default=1000)
    parser.add_argument("--overlap", type=int, default=5)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child-big", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_big:
        child_big(args.labels, args.raters, args.overlap, args.boot)
        return

    out, child_maxrss = run_child("--child-big", "--labels", str(args.labels), "--raters", str(args.raters),
                                  "--overlap", str(args.overlap), "--boot", str(args.boot))
    big = json.loads(out.strip().splitlines()[-1])

    items, raters, values, truth = read_product()
    m = encode(items, raters, values)
    codes = np.asarray(m.items, dtype=np.int64)
    labels = np.asarray(m.labels, dtype=np.int64)
    floor_s, _ = median_time(lambda: floor_pass(codes, labels, m.n_items, m.n_classes), args.repeat)
    mv_s, _ = median_time(lambda: majority_vote(encode(items, raters, values)), args.repeat)
    ds_s, (m, result) = median_time(lambda: (lambda mm: (mm, dawid_skene(mm)))(encode(items, raters, values)),
                                    args.repeat)
    gold = np.array([m.classes.index(truth[i]) for i in m.item_ids])
    accuracy = float((result.labels == gold).mean())
    mv_accuracy = float((majority_vote(m, tie="first").labels == gold).mean())
    say(f"zheng2017_product: {m.n_labels:,} labels, {m.n_items:,} items, {m.n_raters} raters")
    say(f"  floor (numpy bincount majority on encoded arrays): {floor_s * 1e3:.2f} ms")
    say(f"  encode + majority_vote: {mv_s * 1e3:.1f} ms ({mv_s / floor_s:.0f}x floor)")
    say(f"  encode + dawid_skene: {ds_s * 1e3:.0f} ms median of {args.repeat} ({ds_s / floor_s:.0f}x floor, "
        f"{ds_s / mv_s:.1f}x encode + majority_vote); {result.iterations} iterations, converged "
        f"{result.converged}; target < 1 s: {'MET' if ds_s < 1 else 'MISSED'}")
    say(f"  accuracy vs gold: DS {accuracy:.5f}, MV (first on ties) {mv_accuracy:.5f}")

    peak = max(big["vmhwm_mb"], child_maxrss)
    total = big["encode_s"] + big["ds_s"]
    say(f"generated: {big['labels']:,} labels, {big['items']:,} items, {big['raters']:,} raters, 3 classes, "
        f"overlap {args.overlap}, {SPAMMERS:.0%} spammers")
    say(f"  floor (numpy bincount majority): {big['floor_s']:.3f} s")
    say(f"  encode {big['encode_s']:.2f} s + dawid_skene {big['ds_s']:.2f} s = {total:.2f} s "
        f"({total / big['floor_s']:.0f}x floor); {big['iterations']} iterations, converged {big['converged']}; "
        f"target < 10 s: {'MET' if total < 10 else 'MISSED'}")
    say(f"  peak RSS of the child {peak:.0f} MB (VmHWM {big['vmhwm_mb']:.0f}, wait4 ru_maxrss {child_maxrss:.0f}); "
        f"target < 1 GB: {'MET' if peak < 1024 else 'MISSED'}")
    say(f"  accuracy vs generated truth: DS {big['ds_accuracy']:.4f}, MV (random ties) {big['mv_accuracy']:.4f} "
        f"(majority_vote {big['mv_s']:.2f} s)")
    say(f"  krippendorff_alpha {big['alpha']:.4f} in {big['alpha_s']:.3f} s; bootstrap {args.boot} resamples "
        f"{big['boot_s']:.3f} s, 95% CI [{big['ci'][0]:.4f}, {big['ci'][1]:.4f}]")


if __name__ == "__main__":
    main()
