"""An admin's edit of a baseline's schema and thresholds: the rules an edit must keep, the settings it describes,
and its save, checked against concurrent edits and audited."""
import hashlib
import json

from django.db import transaction

from validation.models import Baseline
from validation.stats import Schema, Thresholds
from validation.stats.schema import SERVING, TRAINING
from validation.stats.thresholds import feature_metrics

from .audit import actor_label, audit_record
from .reviews import ReviewError


class EditInvalid(ValueError):
    """An edit that breaks the rules of a schema; `problems` holds (feature, setting, message) for each."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        super().__init__("; ".join(f"{feature} {setting}: {message}" for feature, setting, message in problems))
        self.problems = problems


def baseline_edit_check(*, features: dict[str, dict]) -> list[tuple[str, str, str]]:
    """The rules an edit of a baseline's features must keep, as (feature, setting, message) for each broken one:
    a numeric range whose max is below its min, a feature absent in training and in serving. `features` maps a
    feature to what was given of its `min`, `max` and `absent` (environments); a missing setting breaks nothing."""
    problems = []
    for name, edit in features.items():
        low, high = edit.get("min"), edit.get("max")
        if low is not None and high is not None and low > high:
            problems.append((name, "max", f"{high:g} is below the min, {low:g}"))
        if TRAINING in edit.get("absent", ()) and SERVING in edit.get("absent", ()):
            problems.append((name, f"absent-{SERVING}", "a feature cannot be absent in training and in serving"))
    return problems


def baseline_edit_build(*, baseline: Baseline, drift_share: float, min_rows: int, alpha: float,
                        defaults: dict[str, float | None], features: dict[str, dict]) -> tuple[Schema, Thresholds]:
    """The schema and thresholds the baseline would have with an admin's edit (nothing is saved: baseline_edit
    saves). `defaults`: the metrics' thresholds (None: report only). `features`, per feature of the schema:
    `required`, `absent` (environments), `domain` (categories; empty: any) or `min` and `max` (numbers), and
    `thresholds` for the kind's metrics (thresholds.feature_metrics; None: the default). Raises EditInvalid when
    the edit breaks a rule (baseline_edit_check)."""
    problems = baseline_edit_check(features=features)
    if problems:
        raise EditInvalid(problems)
    schema = Schema.from_dict(baseline.schema)
    thresholds = Thresholds.from_dict(baseline.thresholds or {})
    thresholds.drift_share, thresholds.min_rows, thresholds.alpha = drift_share, min_rows, alpha
    thresholds.defaults.update(defaults)
    for name, edit in features.items():
        fs = schema.features[name]
        fs.required = edit["required"]
        fs.not_in_environments = [env for env in (TRAINING, SERVING) if env in edit["absent"]]
        if fs.kind == "categorical":
            fs.domain = list(dict.fromkeys(edit["domain"])) or None
        else:
            fs.min, fs.max = edit["min"], edit["max"]
        # Overrides of metrics the form does not offer (set in JSON, say) are kept as they are.
        overrides = thresholds.per_feature.setdefault(name, {})
        for metric in feature_metrics(fs.kind):
            if edit["thresholds"].get(metric) is None:
                overrides.pop(metric, None)
            else:
                overrides[metric] = edit["thresholds"][metric]
        if not overrides:
            del thresholds.per_feature[name]
    return schema, thresholds


def _flat(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _changes(before: dict, after: dict) -> list[str]:
    """Each setting that differs, as 'where: old -> new'."""
    old, new = _flat(before), _flat(after)
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
            for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]


def baseline_digest(baseline: Baseline) -> str:
    """A fingerprint of what an edit changes (schema and thresholds): an editor sends back the one they saw."""
    text = json.dumps([baseline.schema, baseline.thresholds], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class BaselineConflict(ReviewError):
    """The baseline was saved by someone else after the editor opened it."""


def baseline_edit(*, baseline: Baseline, schema: Schema, thresholds: Thresholds, by=None,
                  seen: str | None = None) -> list[str]:
    """Save an admin's edit of a baseline's schema and thresholds; the change, setting by setting,
    goes to the audit log in the same transaction. Returns the changes (empty: nothing saved).

    `seen`: the digest of the baseline the editor opened (baseline_digest). The row is locked and its digest
    checked in the transaction that writes, so of two editors who opened the same version only the first saves;
    the second gets BaselineConflict and nothing of theirs is written (no lost update)."""
    with transaction.atomic():
        current = Baseline.objects.select_for_update().get(pk=baseline.pk)
        if seen is not None and seen != baseline_digest(current):
            raise BaselineConflict("Someone saved this baseline after you opened it: reload the page to see "
                                   "their change.")
        saved = Thresholds.from_dict(current.thresholds or {}).to_dict()
        changes = _changes({"schema": current.schema, "thresholds": saved},
                           {"schema": schema.to_dict(), "thresholds": thresholds.to_dict()})
        if not changes:
            return []
        Baseline.objects.filter(pk=baseline.pk).update(schema=schema.to_dict(), thresholds=thresholds.to_dict())
        audit_record(actor=actor_label(by), action="baseline_edited", source_id=baseline.source_id,
                     baseline_id=baseline.pk, detail="\n".join(changes))
    baseline.refresh_from_db()
    return changes
