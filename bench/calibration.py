"""Calibration of the drift decisions: false alarms on undrifted data by sample size, and two subtle shifts.

Run: .venv/bin/python bench/calibration.py [--seeds 250] [--processes 2]   (~9 min on two cores)

False alarms. For each (reference rows n, batch rows m) both samples are drawn independently from the same
laws (testdata.synthetic.calibration_frame: one column per law and a label), profiled and compared with
the defaults: every feature of every draw is one trial. A feature's false alarm is any anomaly on it (an error;
"any" also counts warnings); the label's own checks count for the label. Draws per size (draws_for): twice
--seeds up to 1,000 rows a side, where the noise floors decide, then fewer as the sizes grow (at 1M rows a side
only a few: the floors are tiny there and the practical thresholds decide, so the "largest value/threshold" row
shows how far from an alarm the worst metric stayed). The figure is the worst feature's rate over all sizes
together, with a one-sided 95% Clopper-Pearson upper bound, and its ratio to the 1% target. A second compare of
the same profiles with every threshold at 0 decides on the noise floors alone: its per-metric exceedance rates
show whether each floor holds its alpha (0.1% per metric) at each size.

Subtle shifts (issue 12, finding 7): a Poisson(4) count moved to Poisson(4.17) (normed Wasserstein 0.17 / 2 =
0.085) and a 25-level Zipf categorical whose largest share moves from 26.2% to 22.6% (L-infinity 0.036), each
beside an undrifted twin; detection = a distribution_drift error on the moved column.

Writes bench/out/calibration.json and prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from testdata.synthetic import calibration_frame, subtle_shift_frame  # noqa: E402
from validation.stats import Thresholds, compare, infer_schema, profile_frame  # noqa: E402
from validation.stats.thresholds import METRICS  # noqa: E402

TARGET = 0.01
# Metrics the floor table always lists (class_conditional, which only names the shift type, and psi when hit).
DECIDING_METRICS = {"wasserstein", "js", "linf", "ks", "out_of_range", "out_of_domain", "missing_rate", "label",
                    "concept"}
EQUAL_SIZES = [200, 1_000, 5_000, 20_000, 100_000, 1_000_000]
UNEQUAL = [(100_000, 200), (200, 20_000), (5_000, 100_000), (1_000_000, 1_000)]
SHIFT_SIZES = [5_000, 20_000, 100_000, 1_000_000]
# Draws at 1M rows a side, at least (about 40 s of profiling each on one core).
MIN_DRAWS = 4


def floors_only() -> Thresholds:
    """Every threshold at 0, so each metric decides on its noise floor alone."""
    return Thresholds(defaults={name: 0.0 for name in METRICS})


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(list(key))


def null_trial(task: tuple[int, int, int]) -> dict:
    """One draw of both samples from the same laws: the anomalies per feature, and per-metric floor exceedances."""
    n, m, seed = task
    ref, cur = calibration_frame(_rng(1, n, m, seed, 0), n), calibration_frame(_rng(1, n, m, seed, 1), m)
    base = profile_frame(ref, label="label", workers=1)
    batch = profile_frame(cur, spec=base.spec, workers=1)
    schema = infer_schema(base)
    report = compare(batch, base, schema=schema)
    errors, any_severity, kinds = set(), set(), Counter()
    for a in report.anomalies:
        any_severity.add(a.feature)
        if a.severity == "error":
            errors.add(a.feature)
        kinds[f"{a.feature}|{a.kind}|{a.severity}"] += 1
    headroom = {}
    for feature, metrics in report.metrics.items():
        # class_conditional only names the shift type: it raises no anomaly.
        ratios = [mv.value / mv.threshold for name, mv in metrics.items()
                  if mv.threshold and math.isfinite(mv.value) and name != "class_conditional"]
        headroom[feature] = max(ratios, default=0.0)
    pvalues = Counter()
    for metrics in report.metrics.values():
        for name in ("chi2", "ks"):
            if name in metrics and metrics[name].p_value is not None:
                pvalues[f"{name}|reported"] += 1
                pvalues[f"{name}|below 0.01"] += metrics[name].p_value < 0.01
                pvalues[f"{name}|below 0.001"] += metrics[name].p_value < 0.001
    floor_report = compare(batch, base, schema=schema, thresholds=floors_only())
    floor_hits = Counter(f"{feature}|{name}" for feature, metrics in floor_report.metrics.items()
                         for name, mv in metrics.items()
                         if mv.threshold is not None and mv.value > 0 and mv.value >= mv.threshold)
    return {"n": n, "m": m, "features": sorted(report.metrics), "errors": sorted(errors),
            "any": sorted(any_severity), "kinds": dict(kinds), "headroom": headroom,
            "floor_hits": dict(floor_hits), "pvalues": dict(pvalues)}


def shift_trial(task: tuple[int, int]) -> dict:
    """One draw of the subtle shifts: which columns got a drift error, and their distances."""
    n, seed = task
    ref = subtle_shift_frame(_rng(2, n, seed, 0), n, False)
    cur = subtle_shift_frame(_rng(2, n, seed, 1), n, True)
    base = profile_frame(ref, workers=1)
    report = compare(profile_frame(cur, spec=base.spec, workers=1), base)
    found = sorted({a.feature for a in report.anomalies if a.kind == "distribution_drift" and a.severity == "error"})
    flagged = sorted({a.feature for a in report.anomalies})
    values = {"count_moved": report.metrics["count_moved"]["wasserstein"].value,
              "zipf_moved": report.metrics["zipf_moved"]["linf"].value}
    return {"n": n, "found": found, "flagged": flagged, "values": values}


def draws_for(rows: int, seeds: int) -> int:
    """Draws for a comparison whose larger side has `rows` rows: 2 x --seeds up to 1,000 rows, --seeds up to 5,000,
    half up to 20,000, a tenth up to 100,000, a fiftieth (at least MIN_DRAWS) above."""
    for limit, share in ((1_000, 2.0), (5_000, 1.0), (20_000, 0.5), (100_000, 0.1)):
        if rows <= limit:
            return max(1, round(seeds * share))
    return max(MIN_DRAWS, seeds // 50)


def clopper_pearson_upper(k: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound of a binomial rate."""
    from scipy.stats import beta

    return 1.0 if k >= trials else float(beta.ppf(confidence, k + 1, trials - k))


def summarise_null(results: list[dict]) -> dict:
    """Per (n, m): per-feature error and any-severity alarm rates, kinds, headroom and floor exceedances."""
    out: dict[str, dict] = {}
    for r in results:
        key = f"{r['n']}x{r['m']}"
        s = out.setdefault(key, {"n": r["n"], "m": r["m"], "draws": 0, "errors": Counter(), "any": Counter(),
                                 "kinds": Counter(), "headroom": {}, "floor_hits": Counter(), "features": [],
                                 "pvalues": Counter()})
        s["draws"] += 1
        s["features"] = r["features"]
        s["errors"].update(r["errors"])
        s["any"].update(r["any"])
        s["kinds"].update(r["kinds"])
        s["floor_hits"].update(r["floor_hits"])
        s["pvalues"].update(r["pvalues"])
        for feature, ratio in r["headroom"].items():
            s["headroom"][feature] = max(s["headroom"].get(feature, 0.0), ratio)
    for s in out.values():
        draws = s["draws"]
        s["rates"] = {f: {"error": s["errors"][f] / draws, "any": s["any"][f] / draws} for f in s["features"]}
        worst = max(s["features"], key=lambda f: (s["any"][f], s["errors"][f]))
        s["worst"] = {"feature": worst, "any": s["any"][worst] / draws, "error": s["errors"][worst] / draws,
                      "upper95": clopper_pearson_upper(s["any"][worst], draws)}
        s["floor_rates"] = {k: v / draws for k, v in sorted(s["floor_hits"].items())}
        for name in ("errors", "any", "kinds", "floor_hits", "pvalues"):
            s[name] = dict(s[name])
    return out


def summarise_shifts(results: list[dict]) -> dict:
    """Per size: detection rate of each moved column, false-alarm rate of each control, mean distances."""
    out: dict[str, dict] = {}
    for r in results:
        s = out.setdefault(str(r["n"]), {"n": r["n"], "draws": 0, "found": Counter(), "flagged": Counter(),
                                         "values": {k: [] for k in r["values"]}})
        s["draws"] += 1
        s["found"].update(r["found"])
        s["flagged"].update(r["flagged"])
        for k, v in r["values"].items():
            s["values"][k].append(v)
    for s in out.values():
        draws = s["draws"]
        s["detection"] = {k: s["found"][k] / draws for k in ("count_moved", "zipf_moved")}
        s["control_alarms"] = {k: s["flagged"][k] / draws for k in ("count_control", "zipf_control")}
        s["mean_value"] = {k: float(np.mean(v)) for k, v in s["values"].items()}
        s["found"], s["flagged"] = dict(s["found"]), dict(s["flagged"])
        del s["values"]
    return out


def pooled_by_feature(null: dict) -> dict:
    """Per feature over every size: alarms of any severity, draws, rate and its one-sided 95% upper bound."""
    out = {}
    for feature in next(iter(null.values()))["features"]:
        alarms = sum(s["any"].get(feature, 0) for s in null.values())
        draws = sum(s["draws"] for s in null.values())
        out[feature] = {"alarms": alarms, "draws": draws, "rate": alarms / draws,
                        "upper95": clopper_pearson_upper(alarms, draws)}
    return out


def pooled_table(overall: dict) -> str:
    """Markdown: one row per feature, all sizes together."""
    lines = ["| feature | alarms / draws | rate | 95% upper |", "| --- | --- | --- | --- |"]
    for feature, r in overall.items():
        lines.append(f"| {feature} | {r['alarms']} / {r['draws']} | {_pct(r['rate'])} | {_pct(r['upper95'])} |")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x else "0"


def null_table(null: dict) -> str:
    """Markdown: features by rows, sizes by columns, the alarm rate (errors; any severity if different)."""
    keys = list(null)
    head = "| feature | " + " | ".join(f"{null[k]['n']:,} vs {null[k]['m']:,}" for k in keys) + " |"
    lines = [head, "|" + " --- |" * (len(keys) + 1), "| draws | " + " | ".join(str(null[k]["draws"]) for k in keys)
             + " |"]
    for feature in null[keys[0]]["features"]:
        cells = []
        for k in keys:
            rate = null[k]["rates"].get(feature, {"error": 0.0, "any": 0.0})
            cell = _pct(rate["error"])
            if rate["any"] != rate["error"]:
                cell += f" ({_pct(rate['any'])})"
            cells.append(cell)
        lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    lines.append("| **worst** | " + " | ".join(
        f"{null[k]['worst']['feature']} {_pct(null[k]['worst']['any'])}, "
        f"{null[k]['worst']['any'] / TARGET:.2f}x 1% (95% upper {_pct(null[k]['worst']['upper95'])})" for k in keys)
        + " |")
    lines.append("| largest value/threshold | " + " | ".join(
        f"{max(null[k]['headroom'].values()):.2f} ({max(null[k]['headroom'], key=null[k]['headroom'].get)})"
        for k in keys) + " |")
    return "\n".join(lines)


def shift_table(shifts: dict) -> str:
    """Markdown: detection of the two subtle shifts and alarms on their controls, by size."""
    lines = ["| rows per side | draws | count moved (W 0.085) found | mean W | its control flagged | "
             "25-level moved (L-inf 0.036) found | mean L-inf | its control flagged |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in shifts.values():
        lines.append(f"| {s['n']:,} | {s['draws']} | {_pct(s['detection']['count_moved'])} | "
                     f"{s['mean_value']['count_moved']:.3f} | {_pct(s['control_alarms']['count_control'])} | "
                     f"{_pct(s['detection']['zipf_moved'])} | {s['mean_value']['zipf_moved']:.3f} | "
                     f"{_pct(s['control_alarms']['zipf_control'])} |")
    return "\n".join(lines)


def floor_table(null: dict) -> str:
    """Markdown: per metric, the largest exceedance rate of its noise floor alone (all thresholds 0) by size."""
    keys = list(null)
    metrics = sorted({k.split("|")[1] for s in null.values() for k in s["floor_rates"]} | DECIDING_METRICS)
    lines = ["| metric (floor alone, alpha 0.1%) | " + " | ".join(f"{null[k]['n']:,} vs {null[k]['m']:,}"
                                                            for k in keys) + " |",
             "|" + " --- |" * (len(keys) + 1)]
    for metric in metrics:
        cells = []
        for k in keys:
            rates = {f.split("|")[0]: r for f, r in null[k]["floor_rates"].items() if f.split("|")[1] == metric}
            if not rates:
                cells.append("0")
                continue
            worst = max(rates, key=rates.get)
            cells.append(f"{_pct(rates[worst])} {worst}")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pvalue_table(null: dict) -> str:
    """Markdown: how often a reported p-value fell below 0.01 and 0.001 on undrifted data (a right one: 1%, 0.1%)."""
    keys = list(null)
    lines = ["| p-value (undrifted) | " + " | ".join(f"{null[k]['n']:,} vs {null[k]['m']:,}" for k in keys) + " |",
             "|" + " --- |" * (len(keys) + 1)]
    for name in ("chi2", "ks"):
        cells = []
        for k in keys:
            pv = null[k]["pvalues"]
            reported = pv.get(f"{name}|reported", 0)
            cells.append("not reported" if not reported else
                         f"{reported}: <0.01 {pv.get(f'{name}|below 0.01', 0) / reported:.2%}, "
                         f"<0.001 {pv.get(f'{name}|below 0.001', 0) / reported:.2%}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=250,
                        help="draws per size at 5,000 rows a side; twice as many below, fewer above (draws_for)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--skip-null", action="store_true", help="only the subtle shifts")
    parser.add_argument("--skip-shifts", action="store_true", help="only the false alarms")
    parser.add_argument("--max-rows", type=int, default=1_000_000, help="leave out sizes above this")
    args = parser.parse_args()
    pairs = [(s, s) for s in EQUAL_SIZES] + UNEQUAL
    pairs = [p for p in pairs if max(p) <= args.max_rows]
    null_tasks = [] if args.skip_null else [
        (n, m, seed) for n, m in pairs for seed in range(draws_for(max(n, m), args.seeds))]
    shift_tasks = [] if args.skip_shifts else [
        (n, seed) for n in SHIFT_SIZES if n <= args.max_rows for seed in range(draws_for(n, args.seeds // 2))]
    # Largest first, so the two processes finish together.
    null_tasks.sort(key=lambda t: -max(t[0], t[1]))
    shift_tasks.sort(key=lambda t: -t[0])
    start = time.perf_counter()
    with Pool(args.processes) as pool:
        null_results = list(pool.imap_unordered(null_trial, null_tasks, chunksize=1))
        shift_results = list(pool.imap_unordered(shift_trial, shift_tasks, chunksize=1))
    elapsed = time.perf_counter() - start
    null = summarise_null(null_results)
    null = {f"{n}x{m}": null[f"{n}x{m}"] for n, m in pairs if f"{n}x{m}" in null}
    shifts = summarise_shifts(shift_results)
    shifts = {str(n): shifts[str(n)] for n in SHIFT_SIZES if str(n) in shifts}
    OUT.mkdir(parents=True, exist_ok=True)
    summary = {"seeds": args.seeds, "seconds": round(elapsed, 1), "target": TARGET,
               "defaults": {k: v for k, (v, _) in METRICS.items()}, "null": null, "shifts": shifts}
    print(f"calibration: {len(null_tasks)} undrifted draws, {len(shift_tasks)} shifted draws, "
          f"{elapsed:.0f} s on {args.processes} processes; draws per size from --seeds {args.seeds}: "
          f"{draws_for(200, args.seeds)} up to 1,000 rows a side, {draws_for(5_000, args.seeds)} at 5,000, "
          f"{draws_for(20_000, args.seeds)} at 20,000, {draws_for(100_000, args.seeds)} at 100,000 and only "
          f"{draws_for(1_000_000, args.seeds)} at 1,000,000 (the row of largest value/threshold stands in there)")
    if null:
        print("\nFalse alarms per feature on undrifted data (errors; any severity in parentheses when different):\n")
        print(null_table(null))
        print("\nNoise floors alone (every threshold 0): the worst feature's exceedance rate per metric:\n")
        print(floor_table(null))
        print("\nReported p-values on undrifted data (count; share below 0.01 and 0.001):\n")
        print(pvalue_table(null))
        overall = pooled_by_feature(null)
        summary["by_feature"] = overall
        print("\nAll sizes together, per feature (alarms of any severity / draws; one-sided 95% upper bound):\n")
        print(pooled_table(overall))
        worst = max(overall, key=lambda f: overall[f]["rate"])
        rate = overall[worst]["rate"]
        print(f"\nworst feature: {worst}, {overall[worst]['alarms']} alarms in {overall[worst]['draws']} draws = "
              f"{_pct(rate)} (95% upper {_pct(overall[worst]['upper95'])}); ratio to the 1% target "
              f"{rate / TARGET:.2f}x: {'MET' if overall[worst]['upper95'] < TARGET else 'MISSED'} "
              "(met when even the upper bound is under 1%)")
    if shifts:
        print("\nSubtle shifts (issue 12, finding 7): detection by rows per side:\n")
        print(shift_table(shifts))
    (OUT / "calibration.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
    print(f"\nJSON: {OUT / 'calibration.json'}")


if __name__ == "__main__":
    main()
