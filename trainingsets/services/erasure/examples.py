"""An erased record's values where validation keeps or quotes them: profiles, explanations, reports, alerts.

A profile keeps some text values by name: a categorical feature's values outside its vocabulary (up to
20, `other_examples`) and a distinct-count sketch's exact values while there are few (`exact`, up to its
cap); a baseline's bins name its top categories (`vocab`, copied into every profile made on them), and
its inferred schema lists a small feature's whole domain. An out-of-domain finding quotes a few values
in its explanation, its run's report and the quarantine alert. Those names can be a person's data (a
name sent as a feature), so an erasure takes the record's text values out: examples, exact values and
domain entries go, a bin keeps its place and counts under the name `[erased #<position>]`, a quoted
value becomes '[erased]'. Counts, histograms and distances stay (aggregates). Only the record's rare
values are taken out (shared by fewer than RARE_BELOW records of its batch): a common one names no one.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from django.db.models import Q

from collection.models import Batch, BatchTransition
from collection.storage import data_path
from validation.models import Alert, Anomaly, Baseline, DailyProfile, ValidationRun
from validation.stats.profile import Profile

from ... import erasure_files

ERASED = "'[erased]'"
# A text value that fewer records of its batch share may point to a person; a commoner one (a country, a
# device) is left where it is: renaming a common category would blind the drift charts and tell nothing.
RARE_BELOW = 10


def rare_values(revisions: Iterable[tuple[str, dict]]) -> set[str]:
    """The text values (list elements too) of the revisions' features that fewer than RARE_BELOW records of
    their batch share, counted in the batch's Parquet copy (`revisions`: (columnar path, features) pairs).
    Only those can point to a person; without a copy to count in, every value counts as rare."""
    rare = set()
    for columnar, features in revisions:
        wanted = {}
        for name, value in (features or {}).items():
            texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
            texts = {text for text in texts if isinstance(text, str) and text}
            if texts:
                wanted[name] = texts
        path = data_path(columnar) if columnar else None
        if path is None or not path.exists():
            rare.update(text for texts in wanted.values() for text in texts)
        elif wanted:
            counts = erasure_files.value_counts(path, wanted)
            rare.update(value for (_, value), n in counts.items() if n < RARE_BELOW)
    return rare


def examples_scrub(*, values: set[str], external_id: str, source_id: int, batch_ids: list[int]) -> int:
    """Take the values out of the examples and quotes of the source's validation data, and the external id out
    of its batch errors (a parse error quotes a repeated id) and alerts. Returns how many rows changed."""
    quoted = [repr(v) for v in values] + [repr(external_id)]
    held, said = Q(pk__in=[]), Q(pk__in=[])
    for value in values:
        for form in _in_json(value):
            held |= Q(profile__contains=form)
    for text in quoted:
        said |= Q(explanation__contains=text)
    changed = 0
    # The batches' own runs, and any run of the source whose profile names a value: a baseline's vocabulary
    # is written into every profile made on its bins.
    runs = ValidationRun.objects.filter(Q(batch_id__in=batch_ids) | (held & Q(batch__source_id=source_id)))
    for run in runs.select_for_update():
        changed += _save(run, profile=_profile(run.profile, values), report=_walk(run.report, values, quoted),
                         reasons=_walk(run.reasons, values, quoted))
    for anomaly in Anomaly.objects.filter(said, run__batch__source_id=source_id).select_for_update():
        changed += _save(anomaly, explanation=_quotes(anomaly.explanation, quoted))
    if values:
        for daily in DailyProfile.objects.filter(held, source_id=source_id).select_for_update():
            changed += _save(daily, profile=_profile(daily.profile, values), metrics=_walk(daily.metrics, values,
                                                                                           quoted))
        for baseline in Baseline.objects.filter(held, source_id=source_id).select_for_update():
            changed += _save(baseline, profile=_profile(baseline.profile, values),
                             schema=_walk(baseline.schema, values, quoted))
    told = Q(pk__in=[])
    for text in quoted:
        told |= Q(message__contains=text)
    for alert in Alert.objects.filter(told, source_id=source_id).select_for_update():
        changed += _save(alert, message=_quotes(alert.message, quoted))
    for batch in Batch.objects.filter(source_id=source_id, error__contains=repr(external_id)).select_for_update():
        changed += _save(batch, error=_quotes(batch.error, quoted))
    for step in BatchTransition.objects.filter(batch__source_id=source_id, note__contains=repr(external_id)):
        changed += _save(step, note=_quotes(step.note, quoted))
    return changed


def _save(row, **fields) -> int:
    """Write the fields that changed; 1 if any did."""
    changed = [name for name, value in fields.items() if value != getattr(row, name)]
    for name in changed:
        setattr(row, name, fields[name])
    if changed:
        row.save(update_fields=changed)
    return int(bool(changed))


def _profile(text: str, values: set[str]) -> str:
    """A profile's versioned JSON without these examples, written back by the engine (unchanged if none)."""
    if not text or not any(form in text for v in values for form in _in_json(v)):
        return text
    data = Profile.from_json(text).to_dict()
    cleaned = _walk(data, values, [])
    return text if cleaned == data else Profile.from_dict(cleaned).to_json()


def _in_json(value: str) -> set[str]:
    """How a value can appear inside JSON text (ASCII-escaped, as the engine writes it, or not)."""
    return {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


def _walk(obj, values: set[str], quoted: list[str]):
    """A copy of JSON data with `other_examples` losing the values and strings losing the quotes."""
    if isinstance(obj, dict):
        return {key: _kept(key, item, values, quoted) for key, item in obj.items()}
    if isinstance(obj, list):
        return [_walk(item, values, quoted) for item in obj]
    if isinstance(obj, str):
        return _quotes(obj, quoted)
    return obj


def _kept(key: str, item, values: set[str], quoted: list[str]):
    if key == "other_examples" and isinstance(item, dict):
        return {name: n for name, n in item.items() if name not in values}
    if key in ("exact", "domain") and isinstance(item, list):  # a sketch's exact values; a schema's domain
        return [value for value in item if value not in values]
    if key == "vocab" and isinstance(item, list):  # bins: the position stays (its counts), the name goes
        return [f"[erased #{i}]" if value in values else value for i, value in enumerate(item)]
    return _walk(item, values, quoted)


def _quotes(text: str, quoted: list[str]) -> str:
    for item in quoted:
        if item in text:
            text = text.replace(item, ERASED)
    return text
