"""Label values and consensus, as plain functions: checking a value against a project's label kind,
the key under which two labels count as the same, and the majority of a list of labels."""
from collections import Counter
from dataclasses import dataclass

SINGLE, MULTIPLE, RATING, TEXT = "single_choice", "multiple_choice", "rating", "free_text"


class InvalidLabel(ValueError):
    """A value that does not fit the project's label kind; says which value and why."""

    def __init__(self, message: str, *, value=None, field: str = "value"):
        super().__init__(message)
        self.value = value
        self.field = field


@dataclass(frozen=True)
class LabelSpec:
    """What a project accepts: its kind, choice values, rating scale and longest text."""

    kind: str
    choices: tuple = ()
    scale_min: int = 1
    scale_max: int = 5
    text_max_length: int = 2000

    @classmethod
    def of(cls, project) -> "LabelSpec":
        return cls(kind=project.label_kind, choices=tuple(c["value"] for c in project.choices or []),
                   scale_min=project.scale_min, scale_max=project.scale_max,
                   text_max_length=project.text_max_length)

    def check(self, value):
        """The value as stored (a multiple choice in the project's order), or InvalidLabel."""
        if self.kind == SINGLE:
            if not isinstance(value, str) or value not in self.choices:
                raise InvalidLabel(f"{value!r} is not one of the choices {list(self.choices)}", value=value)
            return value
        if self.kind == MULTIPLE:
            if not isinstance(value, list) or not value:
                raise InvalidLabel("a multiple-choice label is a non-empty list of choices", value=value)
            unknown = [v for v in value if not isinstance(v, str) or v not in self.choices]
            if unknown:
                raise InvalidLabel(f"{unknown!r} not among the choices {list(self.choices)}", value=value)
            if len(set(value)) != len(value):
                raise InvalidLabel("a choice is given twice", value=value)
            return [c for c in self.choices if c in value]
        if self.kind == RATING:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                raise InvalidLabel("a rating is a whole number", value=value)
            if not self.scale_min <= value <= self.scale_max:
                raise InvalidLabel(f"a rating is from {self.scale_min} to {self.scale_max}", value=value)
            return int(value)
        if self.kind == TEXT:
            if not isinstance(value, str) or not value.strip():
                raise InvalidLabel("a free-text label is a non-empty string", value=value)
            if len(value) > self.text_max_length:
                raise InvalidLabel(f"longer than {self.text_max_length} characters", value=value[:100])
            return value.strip()
        raise InvalidLabel(f"unknown label kind {self.kind!r}", field="label_kind", value=self.kind)


def label_key(value):
    """Two labels agree when their keys are equal: texts ignore case and spacing, choice lists order."""
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, list):
        return tuple(sorted(label_key(v) for v in value))
    return value


@dataclass(frozen=True)
class Consensus:
    label: object  # one of the values (the first seen of the winning key), None on a tie
    agreement: float  # votes for the most common key / all votes
    tie: bool


def consensus(values: list) -> Consensus | None:
    """The majority of `values` (a strict plurality: more votes than any other label); None for no values.

    The tie rule is deterministic: when two or more labels share the most votes there is no label
    (`label` None, `tie` True, `agreement` the tied share), whatever the order of the values. Settling
    (services.settling) turns a tie into one more rater, then adjudication; exports show no label.
    The winning label is the first value given under the winning key (texts differing only in case
    or spacing count as one label).
    """
    if not values:
        return None
    counts = Counter(label_key(v) for v in values)
    ranked = counts.most_common()
    top_key, top = ranked[0]
    share = top / len(values)
    if len(ranked) > 1 and ranked[1][1] == top:
        return Consensus(label=None, agreement=share, tie=True)
    label = next(v for v in values if label_key(v) == top_key)
    return Consensus(label=label, agreement=share, tie=False)


def same_label(a, b) -> bool:
    return label_key(a) == label_key(b)


_COMPARE = {
    "eq": lambda v, t: label_key(v) == label_key(t),
    "ne": lambda v, t: label_key(v) != label_key(t),
    "gt": lambda v, t: v > t,
    "gte": lambda v, t: v >= t,
    "lt": lambda v, t: v < t,
    "lte": lambda v, t: v <= t,
    "in": lambda v, t: label_key(v) in {label_key(x) for x in t},
}


def rule_applies(op: str, threshold, value) -> bool:
    """Does a feedback value meet a rule's condition? Comparing a number with a text is simply no match."""
    if op == "any":
        return True
    if op in ("gt", "gte", "lt", "lte") and (isinstance(value, bool) or not isinstance(value, (int, float))
                                           or isinstance(threshold, bool) or not isinstance(threshold, (int, float))):
        return False
    if op == "in" and not isinstance(threshold, list):
        return False
    try:
        return bool(_COMPARE[op](value, threshold))
    except (KeyError, TypeError):
        return False
