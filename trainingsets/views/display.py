"""What the pages show of a set and a version, as words and rows: the label policy and split rule in plain
language, a manifest's splits, labels, files and schema. Plain data in, plain data out (no queries)."""
import json

from ..models import SplitKind, TrainingSet, TrainingSetVersion, Unlabeled

ORIGINS = {"gold": "gold answers", "adjudicated": "adjudicated", "consensus": "consensus",
           "feedback": "process feedback", "batch": "sent with the batch", "none": "unlabeled"}
EXCLUDED = {"no_label": "no acceptable label", "gold": "gold items (policy)", "erased": "erased",
            "no_observed_at": "no observed_at (time rule)", "no_group": "no value of the group feature"}
# The verdict classes of the stylesheet (pass / warn / fail), per version status.
STATUS_CLASS = {"published": "pass", "review": "warn", "rejected": "fail", "failed": "fail", "queued": "",
                "building": ""}


def api_files_url(training_set_id: int, number: int) -> str:
    return f"/api/v1/training-sets/{training_set_id}/versions/{number}/files/"


def policy_words(policy: dict) -> list[str]:
    """The label policy (a set's or a manifest's `policy`), best label first, as sentences."""
    used = []
    if policy.get("gold"):
        used.append("gold items with their known answer")
    if policy.get("adjudicated"):
        used.append("adjudicated labels")
    if policy.get("consensus"):
        used.append(f"consensus at confidence {float(policy.get('min_confidence') or 0):.2f} or more")
    if policy.get("feedback"):
        used.append("process-feedback labels")
    if policy.get("batch_labels"):
        used.append("labels sent with the batch")
    words = [("Labels that count, best first: " + "; ".join(used) + ".") if used else "No label counts."]
    if not policy.get("gold"):
        words.append("Records that are gold items are left out.")
    words.append("A record without an acceptable label is kept, unlabeled." if policy.get("unlabeled") == Unlabeled.KEEP
                 else "A record without an acceptable label is left out.")
    return words


def _share(value) -> str:
    try:
        return f"{float(value) * 100:g} %"
    except (TypeError, ValueError):
        return str(value)


def split_words(rule: dict) -> str:
    """A split rule (a set's or a manifest's `split_rule`) as one sentence."""
    kind = rule.get("kind")
    if kind == SplitKind.TIME:
        parts = [f"observed before {cut} → {name}" if cut else f"later → {name}"
                 for name, cut in rule.get("cutoffs", [])]
        return "By time on observed_at: " + "; ".join(parts) + "."
    shares = ", ".join(f"{name} {_share(share)}" for name, share in rule.get("fractions", []))
    if kind == SplitKind.GROUP:
        return (f"By group on the feature “{rule.get('feature')}”: {shares}, by a keyed hash of the feature's value, "
                f"so every record of a group lands in the same split.")
    return (f"Random: {shares}, by a keyed hash of source and external id, so a record keeps its split in every "
            f"version.")


def set_words(training_set: TrainingSet) -> dict:
    return {"policy": policy_words(training_set.policy()), "split": split_words(training_set.split_rule())}


def label_text(key) -> str:
    """A label as the manifest keys it (JSON text) for reading: `"fraud"` reads fraud."""
    if key is None:
        return "(unlabeled)"
    try:
        value = json.loads(key)
    except (TypeError, ValueError):
        return str(key)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return json.dumps(value)


def split_order(manifest: dict) -> list[str]:
    """The splits in the rule's order (train, validation, test): PostgreSQL's jsonb keeps keys sorted its own way."""
    rule = manifest.get("split_rule") or {}
    named = [pair[0] for pair in rule.get("cutoffs") or rule.get("fractions") or [] if pair]
    present = list((manifest.get("splits") or {}).keys())
    return [n for n in named if n in present] + [n for n in present if n not in named]


def _splits(manifest: dict) -> list[tuple[str, dict]]:
    splits = manifest.get("splits") or {}
    return [(name, splits[name]) for name in split_order(manifest)]


def split_rows(manifest: dict) -> list[dict]:
    """One row per split: rows, labeled, unlabeled and where the labels came from."""
    rows = []
    total = manifest.get("rows") or 0
    for name, split in _splits(manifest):
        count = split.get("rows", 0)
        origins = [{"origin": o, "text": ORIGINS.get(o, o), "count": n}
                   for o, n in sorted((split.get("origins") or {}).items(), key=lambda kv: -kv[1]) if n]
        rows.append({"name": name, "rows": count, "unlabeled": split.get("unlabeled", 0),
                     "share": count / total if total else None, "origins": origins,
                     "labels": len(split.get("labels") or {})})
    return rows


def label_chart(manifest: dict, limit: int = 30) -> dict | None:
    """The label distribution per split for Chart.js: the `limit` commonest labels (the rest as "other"), each
    split's share of its rows and its counts (for the tooltip and the table beside the chart)."""
    splits = _splits(manifest)
    totals = {}
    for _, split in splits:
        for key, n in (split.get("labels") or {}).items():
            totals[key] = totals.get(key, 0) + n
    if not totals:
        return None
    keys = [k for k, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]
    shown, rest = keys[:limit], keys[limit:]
    series = []
    for name, split in splits:
        labels = split.get("labels") or {}
        counts = [labels.get(k, 0) for k in shown] + ([sum(labels.get(k, 0) for k in rest)] if rest else [])
        rows = split.get("rows") or 0
        series.append({"split": name, "counts": counts, "shares": [c / rows if rows else 0 for c in counts]})
    names = [label_text(k) for k in shown] + ([f"other ({len(rest)})"] if rest else [])
    rows = [{"label": name, "counts": [s["counts"][i] for s in series]} for i, name in enumerate(names)]
    return {"labels": names, "series": series, "rows": rows}


def file_rows(version: TrainingSetVersion) -> list[dict]:
    """The split files of a version, in the rule's split order then by format, with their download links."""
    manifest = version.manifest or {}
    splits = split_order(manifest)
    base = api_files_url(version.training_set_id, version.number)
    rows = []
    for name, meta in (manifest.get("files") or {}).items():
        split, _, fmt = name.rpartition(".")
        if split not in splits:
            continue
        rows.append({"name": name, "split": split, "format": fmt, "url": base + name, "bytes": meta.get("bytes"),
                     "sha256": meta.get("sha256", ""), "rows": meta.get("rows")})
    order = {"parquet": 0, "csv": 1, "jsonl": 2}
    return sorted(rows, key=lambda r: (splits.index(r["split"]), order.get(r["format"], 9), r["format"]))


def other_files(manifest: dict) -> list[dict]:
    """The files beside the splits (lineage.parquet, ...), with their hashes: part of the content hash too."""
    splits = set((manifest.get("splits") or {}).keys())
    return [{"name": name, **meta} for name, meta in sorted((manifest.get("files") or {}).items())
            if name.rpartition(".")[0] not in splits]


def excluded_rows(manifest: dict) -> list[dict]:
    return [{"why": EXCLUDED.get(k, k), "count": n} for k, n in (manifest.get("excluded") or {}).items() if n]


def raters_rows(manifest: dict) -> list[dict]:
    per = manifest.get("raters_per_item") or {}
    return [{"raters": k, "items": per[k]} for k in sorted(per, key=lambda k: (len(str(k)), str(k)))]


def value_text(value) -> str:
    """A label value (from a diff or a lineage) for reading: texts bare, lists joined, nothing as a dash."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value) or "(none)"
    return json.dumps(value)


DIFF_KINDS = [("added", "Added"), ("removed", "Removed"), ("relabeled", "Relabeled"), ("moved_split", "Moved split")]


def diff_view(diff: dict | None, order: list[str] = ()) -> dict | None:
    """A version diff with its labels as text, its splits in `order` and its examples grouped by kind."""
    if not diff or "error" in diff:
        return diff
    examples = []
    for kind, title in DIFF_KINDS:
        rows = [{**e, "old_text": value_text(e.get("old_label")), "new_text": value_text(e.get("new_label"))}
                for e in (diff.get("examples") or {}).get(kind, [])]
        if rows:
            examples.append({"kind": kind, "title": title, "total": diff.get(kind, 0), "rows": rows})
    pairs = [{**p, "old_text": value_text(p["old_label"]), "new_text": value_text(p["new_label"])}
             for p in diff.get("relabel_pairs") or []]
    rank = {name: i for i, name in enumerate(order)}
    return {**diff, "totals": [{"kind": k, "title": t, "count": diff.get(k, 0)} for k, t in DIFF_KINDS],
            "split_rows": [{"name": name, **row} for name, row in sorted(
                (diff.get("splits") or {}).items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))],
            "example_groups": examples, "pairs": pairs}


def lineage_view(rows: list[dict]) -> list[dict]:
    """Lineage rows with their labels as text and the consensus posterior as figures."""
    shown = []
    for row in rows:
        consensus = row.get("consensus_run")
        if consensus:
            posterior = consensus.get("posterior")
            if isinstance(posterior, dict):
                posterior = " · ".join(f"{k} {v:.3f}" for k, v in sorted(posterior.items(), key=lambda kv: -kv[1]))
            elif isinstance(posterior, list):
                posterior = " · ".join(f"{v:.3f}" for v in posterior if isinstance(v, (int, float)))
            consensus = {**consensus, "label_text": value_text(consensus.get("label")), "posterior_text": posterior}
        shown.append({**row, "label_text": value_text(row.get("label")), "consensus": consensus,
                      "labels": [{**a, "text": value_text(a.get("value"))} for a in row.get("labels", [])],
                      "adjudications": [{**a, "text": value_text(a.get("value"))}
                                        for a in row.get("adjudications", [])],
                      "items": [{**i, "consensus_text": value_text(i.get("consensus"))} for i in row.get("items", [])]})
    return shown
