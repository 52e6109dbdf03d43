"""Creating and changing training sets: the label policy and the split rule, checked before they are kept."""
from __future__ import annotations

import math
import re

from django.db import transaction

from collection.timestamps import TimestampInvalid, timestamp_parse

from ..build.derived import FORMATS
from ..models import GateOn, SplitKind, TrainingSet, TrainingSetVersion, Unlabeled
from .errors import PolicyInvalid, SplitRuleInvalid, SplitRuleLocked

SPLIT_FIELDS = ("split_kind", "split_fractions", "split_cutoffs", "split_feature")
POLICY_FIELDS = ("description", "use_gold", "use_adjudicated", "use_consensus", "min_confidence", "use_feedback",
                 "use_batch_labels", "unlabeled", "formats", "gate_on", "owner")
SPLIT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _names(pairs, field: str) -> list[str]:
    if not isinstance(pairs, list) or not pairs:
        raise SplitRuleInvalid("give at least one split as [name, value] pairs", field=field, value=pairs)
    names = []
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[0], str):
            raise SplitRuleInvalid(f"each split is a [name, value] pair, not {pair!r}", field=field, value=pair)
        if not SPLIT_NAME.match(pair[0]):
            raise SplitRuleInvalid(f"split name {pair[0]!r}: lowercase letters, digits, - and _ (it names files)",
                                   field=field, value=pair[0])
        names.append(pair[0])
    if len(set(names)) != len(names):
        raise SplitRuleInvalid("split names must differ", field=field, value=names)
    return names


def _check_fractions(pairs) -> None:
    _names(pairs, "split_fractions")
    for name, fraction in pairs:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise SplitRuleInvalid(f"split {name!r}: a fraction must be in (0, 1], not {fraction!r}",
                                   field="split_fractions", value=fraction)
    total = sum(f for _, f in pairs)
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise SplitRuleInvalid(f"the fractions add up to {total:g}, not 1", field="split_fractions", value=total)


def _check_cutoffs(pairs) -> None:
    _names(pairs, "split_cutoffs")
    previous = None
    for i, (name, cutoff) in enumerate(pairs):
        last = i == len(pairs) - 1
        if cutoff is None:
            if not last:
                raise SplitRuleInvalid(f"split {name!r}: only the last split may be open-ended (null)",
                                       field="split_cutoffs", value=cutoff)
            continue
        try:
            moment = timestamp_parse(cutoff)  # without a zone, UTC
        except TimestampInvalid as exc:
            raise SplitRuleInvalid(f"split {name!r}: {cutoff!r} {exc}", field="split_cutoffs", value=cutoff) from None
        if previous is not None and moment <= previous:
            raise SplitRuleInvalid(f"split {name!r}: cutoffs must increase", field="split_cutoffs", value=cutoff)
        previous = moment
    if pairs[-1][1] is not None:
        raise SplitRuleInvalid("the last split takes everything after the last cutoff: give it null",
                               field="split_cutoffs", value=pairs[-1][1])


def _check(ts: TrainingSet) -> None:
    if ts.split_kind not in SplitKind.values:
        raise SplitRuleInvalid(f"split kind must be one of {', '.join(SplitKind.values)}", field="split_kind",
                               value=ts.split_kind)
    if ts.split_kind == SplitKind.TIME:
        _check_cutoffs(ts.split_cutoffs)
    else:
        _check_fractions(ts.split_fractions)
    if ts.split_kind == SplitKind.GROUP and not ts.split_feature:
        raise SplitRuleInvalid("a group split needs the feature that names the group", field="split_feature",
                               value=ts.split_feature)
    if isinstance(ts.min_confidence, bool) or not isinstance(ts.min_confidence, (int, float)) \
            or not 0 <= ts.min_confidence <= 1:
        raise PolicyInvalid("min_confidence is a share in [0, 1]", field="min_confidence", value=ts.min_confidence)
    if ts.unlabeled not in Unlabeled.values:
        raise PolicyInvalid(f"unlabeled must be one of {', '.join(Unlabeled.values)}", field="unlabeled",
                            value=ts.unlabeled)
    if ts.gate_on not in GateOn.values:
        raise PolicyInvalid(f"gate_on must be one of {', '.join(GateOn.values)}", field="gate_on", value=ts.gate_on)
    if not isinstance(ts.formats, list) or "parquet" not in ts.formats or not set(ts.formats) <= set(FORMATS):
        raise PolicyInvalid(f"formats: parquet and any of {', '.join(FORMATS[1:])}", field="formats",
                            value=ts.formats)
    ts.formats = [f for f in FORMATS if f in ts.formats]


def _known(fields: dict) -> None:
    unknown = sorted(set(fields) - set(SPLIT_FIELDS) - set(POLICY_FIELDS))
    if unknown:
        raise PolicyInvalid(f"unknown setting {unknown[0]!r}", field=unknown[0])


@transaction.atomic
def trainingset_create(*, name: str, sources, projects=(), owner=None, reader_groups=(), **fields) -> TrainingSet:
    """A new training set over `sources` (and the labeling `projects` whose labels it takes)."""
    _known(fields)
    sources = list(sources)
    if not sources:
        raise PolicyInvalid("a training set needs at least one source", field="sources")
    if not name or TrainingSet.objects.filter(name=name).exists():
        raise PolicyInvalid(f"a training set named {name!r} exists" if name else "give the set a name",
                            field="name", value=name)
    training_set = TrainingSet(name=name, owner=owner, **fields)
    _check(training_set)
    training_set.full_clean(exclude=["split_key"])
    training_set.save()
    training_set.sources.set(sources)
    training_set.projects.set(list(projects))
    training_set.reader_groups.set(list(reader_groups))
    return training_set


def split_rule_locked(training_set: TrainingSet) -> bool:
    """Once a version is built and kept, its splits must hold for every later version."""
    kept = (TrainingSetVersion.Status.PUBLISHED, TrainingSetVersion.Status.REVIEW)
    return training_set.versions.filter(status__in=kept).exists()


@transaction.atomic
def trainingset_update(*, training_set: TrainingSet, sources=None, projects=None, reader_groups=None,
                       **fields) -> TrainingSet:
    """Change a set's policy, sources or projects; the split rule only until a version is published."""
    _known(fields)
    locked = TrainingSet.objects.select_for_update().get(pk=training_set.pk)
    changed_split = [f for f in SPLIT_FIELDS if f in fields and fields[f] != getattr(locked, f)]
    if changed_split and split_rule_locked(locked):
        raise SplitRuleLocked("a published version fixes the split rule (a record must never change split): "
                              "make a new training set for another rule", field=changed_split[0],
                              value=fields[changed_split[0]])
    for key, value in fields.items():
        setattr(locked, key, value)
    _check(locked)
    locked.full_clean(exclude=["split_key", "name"])
    locked.save()
    if sources is not None:
        if not list(sources):
            raise PolicyInvalid("a training set needs at least one source", field="sources")
        locked.sources.set(list(sources))
    if projects is not None:
        locked.projects.set(list(projects))
    if reader_groups is not None:
        locked.reader_groups.set(list(reader_groups))
    return locked
