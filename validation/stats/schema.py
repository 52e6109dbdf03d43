"""An editable schema inferred from a baseline profile: types, presence, domains, ranges."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .categorical import CategoricalProfile
from .numeric import NumericProfile
from .profile import Profile

SCHEMA_VERSION = 1
TRAINING = "training"
SERVING = "serving"


@dataclass
class FeatureSchema:
    """What a batch must satisfy for one feature; None means the check is off."""

    kind: str
    required: bool = True
    domain: list[str] | None = None
    min: float | None = None
    max: float | None = None
    not_in_environments: list[str] = field(default_factory=list)


@dataclass
class Schema:
    """Plain data: an admin may edit it as JSON, then compare() enforces it."""

    features: dict[str, FeatureSchema] = field(default_factory=dict)
    label: str | None = None

    def expected(self, environment: str) -> list[str]:
        """Features a batch in this environment should carry (the label is absent in serving)."""
        return [n for n, f in self.features.items() if environment not in f.not_in_environments]

    def to_dict(self) -> dict:
        """Plain JSON-ready form with a "version" field."""
        return {
            "version": SCHEMA_VERSION,
            "label": self.label,
            "features": {n: asdict(f) for n, f in self.features.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        """Inverse of to_dict."""
        if d.get("version") != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema version {d.get('version')!r}")
        features = {n: FeatureSchema(**f) for n, f in d["features"].items()}
        return cls(features, d.get("label"))

    def to_json(self) -> str:
        """Versioned, indented JSON for humans."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        """Inverse of to_json."""
        return cls.from_dict(json.loads(text))


def infer_schema(
    profile: Profile,
    *,
    max_domain_size: int = 100,
    label_absent_in: tuple[str, ...] = (SERVING,),
) -> Schema:
    """Infer a schema: required if never missing, domain if small and complete, observed range."""
    features = {}
    for name, fp in profile.features.items():
        fs = FeatureSchema(kind=fp.kind, required=fp.missing == 0)
        if isinstance(fp, CategoricalProfile):
            vocab = profile.spec.features[name].vocab if name in profile.spec.features else ()
            # A domain is only known when the top-K saw every value (nothing fell into "other").
            if fp.hist[-1] == 0 and 0 < len(vocab) <= max_domain_size:
                fs.domain = [v for v, c in zip(vocab, fp.hist) if c > 0]
        elif isinstance(fp, NumericProfile):
            fs.min, fs.max = fp.min, fp.max
        if name == profile.spec.label:
            fs.not_in_environments = list(label_absent_in)
        features[name] = fs
    return Schema(features, profile.spec.label)
