"""Personal data in a text feature: email addresses, phone numbers, payment card numbers, IBANs and IP addresses.

A value counts when the WHOLE value (trimmed) is of a kind, never when it merely contains one (free text that
mentions an address is not detected). Each profile checks a bounded, deterministic sample of a frame's distinct
values (SAMPLE_SIZE of them, chosen by a hash of their position, never at random), weighted by how often each
occurs, so a feature's share of personal data is an estimate over that sample; the counts add up when profiles
merge. Only masked examples are ever kept (`j***@e***.com`, `+44 ** **** 0958`, `**** **** **** 1111`,
`DE** **** **** 3000`, `192.168.*.*`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import phonenumbers

from .columns import category_codes
from .report import ERROR, PERSONAL_DATA, WARNING, Anomaly

# A feature whose estimated share of personal data (of the present values checked) reaches this floor is reported,
# and its profile keeps no raw value of it (no exact distinct set, no examples, no vocabulary).
PRIVACY_MIN_SHARE = 0.05
# Distinct values checked per profiled frame and feature (the share's standard error at the floor: ~0.5% a frame),
# and of those the ones checked for phone numbers (libphonenumber's check costs ~0.15 ms a value; ~1.4% at the
# floor): a feature's check costs at most ~20 ms a frame, ~60 ms when it holds phone numbers.
SAMPLE_SIZE = 2048
PHONE_SAMPLE = 256
# Masked examples kept per kind.
MAX_EXAMPLES = 3

EMAIL, PHONE, CARD, IBAN, IP = "email", "phone", "card", "iban", "ip"
KINDS = (EMAIL, PHONE, CARD, IBAN, IP)
# A source's setting (validation.models.PrivacyPolicy) and the severity of its finding.
POLICIES = {"error": ERROR, "warn": WARNING, "off": None}
DESCRIPTIONS = {EMAIL: "email addresses", PHONE: "phone numbers", CARD: "payment card numbers", IBAN: "IBANs",
                IP: "IP addresses"}

# A loose shape of every kind, so that only candidates reach the exact checks below: something@something.tld;
# digits with separators, an optional + or (; two letters, two digits, letters or digits; hex groups with at least
# two colons. Python's re costs ~1 us a value, where pandas' .str.fullmatch on Arrow strings costs ~0.8 ms a call.
_CANDIDATE = re.compile(
    r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"
    r"|[+(]?[0-9][0-9 ().:-]{5,30}[0-9]"
    r"|[A-Z]{2}[0-9]{2}[A-Z0-9 ]{11,40}"
    r"|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z]+)?"
)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")
_DIGIT_GROUPS = re.compile(r"[0-9]{3,}(?:[ -][0-9]{3,})*")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z]+)?")
# International: + or 00, a country code, digits in groups; a 00 form needs a separator (a zero-padded id is none).
_PHONE_PLUS = re.compile(r"\+[1-9][0-9 ().-]{6,20}[0-9]")
_PHONE_00 = re.compile(r"00[1-9][0-9]*[ ().-][0-9 ().-]{4,20}[0-9]")
# National: only the North American form with the area code in brackets, "(415) 555-2671".
_PHONE_NANP = re.compile(r"\([2-9][0-9]{2}\) ?[2-9][0-9]{2}[-. ][0-9]{4}")

# Payment card issuer prefixes (IIN ranges) and the lengths each issues: Visa, Mastercard, Amex, Diners, JCB,
# Discover, UnionPay, Maestro, Mir. A number with another prefix (1, 7, 8, 9, 0...: ids, timestamps, ISBNs) is no
# card.
_ANY = frozenset(range(16, 20))
_IIN = (
    ("4", "4", frozenset({13, 16, 19})),
    ("51", "55", frozenset({16})),
    ("2221", "2720", frozenset({16})),
    ("34", "34", frozenset({15})),
    ("37", "37", frozenset({15})),
    ("300", "305", frozenset({14}) | _ANY),
    ("36", "36", frozenset({14}) | _ANY),
    ("38", "39", _ANY),
    ("3528", "3589", _ANY),
    ("6011", "6011", _ANY),
    ("644", "649", _ANY),
    ("65", "65", _ANY),
    ("62", "62", _ANY),
    ("2200", "2204", _ANY),
    ("5018", "5018", frozenset(range(13, 20))),
    ("5020", "5020", frozenset(range(13, 20))),
    ("5038", "5038", frozenset(range(13, 20))),
    ("5893", "5893", frozenset(range(13, 20))),
    ("6304", "6304", frozenset(range(13, 20))),
    ("6759", "6759", frozenset(range(13, 20))),
    ("6761", "6763", frozenset(range(13, 20))),
)

# IBAN length per country (SWIFT's IBAN registry); another two-letter code is held to 15-34 characters.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a digit string: from the right, every second digit doubled (minus 9 past 9)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_digits(value: str) -> str | None:
    if not _DIGIT_GROUPS.fullmatch(value):
        return None
    digits = value.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19:
        return None
    for low, high, lengths in _IIN:
        if low <= digits[: len(low)] <= high and len(digits) in lengths:
            return digits if luhn_ok(digits) else None
    return None


def _iban_compact(value: str) -> str | None:
    if "  " in value:
        return None
    compact = value.replace(" ", "")
    if not _IBAN.fullmatch(compact):
        return None
    expected = _IBAN_LENGTHS.get(compact[:2])
    if (expected is None and not 15 <= len(compact) <= 34) or (expected is not None and len(compact) != expected):
        return None
    number = int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4]))
    return compact if number % 97 == 1 else None


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not (_IPV4.fullmatch(value) or _IPV6.fullmatch(value)):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _phone(value: str) -> phonenumbers.PhoneNumber | None:
    if _PHONE_PLUS.fullmatch(value):
        text, region = value, None
    elif _PHONE_00.fullmatch(value):
        text, region = "+" + value[2:], None
    elif _PHONE_NANP.fullmatch(value):
        text, region = value, "US"
    else:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _stars(n: int) -> str:
    """n stars in groups of four from the right, as digits are usually printed."""
    text = "*" * n
    head = n % 4
    groups = ([text[:head]] if head else []) + [text[i : i + 4] for i in range(head, n, 4)]
    return " ".join(groups)


def _email_masked(value: str) -> str | None:
    if len(value) > 254 or not _EMAIL.fullmatch(value) or value.index("@") > 64:
        return None
    local, domain = value.split("@")
    labels = domain.split(".")
    return f"{local[0]}***@{labels[0][0]}***.{labels[-1].lower()}"


def _ip_masked(address) -> str:
    if address.version == 4:
        return ".".join(str(address).split(".")[:2] + ["*", "*"])
    return ":".join([f"{int(group, 16):x}" for group in address.exploded.split(":")[:2]] + ["*"] * 6)


def detect(value: str, *, phone: bool = True) -> tuple[str, str] | None:
    """(kind, masked form) when the whole trimmed value is personal data of one of KINDS, else None (phone numbers
    only when `phone`).

    The masked form keeps the value's shape and never its identifying part: an email's first letters and top-level
    domain, a card's or an IBAN's last four characters, a phone's country code and last digits, an IPv4's /16.
    """
    value = value.strip()
    if "@" in value:
        masked = _email_masked(value)
        return None if masked is None else (EMAIL, masked)
    compact = _iban_compact(value)
    if compact:
        return IBAN, f"{compact[:2]}** **** **** {compact[-4:]}"
    digits = _card_digits(value)
    if digits:
        return CARD, f"{_stars(len(digits) - 4)} {digits[-4:]}"
    address = _ip(value)
    if address is not None:
        return IP, _ip_masked(address)
    number = _phone(value) if phone else None
    if number is not None:
        national = str(number.national_number)
        keep = 4 if len(national) >= 8 else 2
        return PHONE, f"+{number.country_code} {_stars(len(national) - keep)} {national[-keep:]}"
    return None


def classify(value: str) -> str | None:
    """The kind of personal data the whole trimmed value is (one of KINDS), or None."""
    found = detect(value)
    return None if found is None else found[0]


def mask_examples(examples: dict[str, int]) -> dict[str, int]:
    """Examples with every personal value masked (counts of values that mask alike added), others as they are."""
    out: dict[str, int] = {}
    for value, n in examples.items():
        found = detect(value)
        key = value if found is None else found[1]
        out[key] = out.get(key, 0) + n
    return out


@dataclass
class PrivacyCounts:
    """Mergeable counts of one feature, per kind: the weight (occurrences) of the distinct values checked for it,
    the weight that matched, and up to MAX_EXAMPLES masked examples (the smallest, so merges are deterministic)."""

    checked: dict[str, int] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def kind_share(self, kind: str) -> float:
        """Estimated share of present values that are of `kind`."""
        checked = self.checked.get(kind, 0)
        return self.matched.get(kind, 0) / checked if checked else 0.0

    @property
    def share(self) -> float:
        """Estimated share of present values that are personal data, all kinds together (a value is of one kind)."""
        return min(1.0, sum(self.kind_share(kind) for kind in self.matched))

    @property
    def flagged(self) -> bool:
        """True when the share reaches PRIVACY_MIN_SHARE: reported, and no raw value of the feature is kept."""
        return self.share >= PRIVACY_MIN_SHARE

    def merge(self, other: PrivacyCounts | None) -> PrivacyCounts:
        """Counts of both inputs; examples the smallest masked ones of both."""
        if other is None:
            return self

        def added(a: dict, b: dict) -> dict:
            return {k: a.get(k, 0) + b.get(k, 0) for k in KINDS if k in a or k in b}

        examples = {k: sorted(set(self.examples.get(k, ())) | set(other.examples.get(k, ())))[:MAX_EXAMPLES]
                    for k in KINDS if k in self.examples or k in other.examples}
        return PrivacyCounts(added(self.checked, other.checked), added(self.matched, other.matched), examples)

    def explanation(self, feature: str) -> str:
        """Per kind, largest first: "email: 64% of contact look like email addresses (e.g. j***@e***.com)"."""
        parts = []
        for kind in sorted(self.matched, key=lambda k: (-self.kind_share(k), k)):
            examples = ", ".join(self.examples.get(kind, ()))
            parts.append(f"{kind}: {self.kind_share(kind):.0%} of {feature} look like {DESCRIPTIONS[kind]}"
                         + (f" (e.g. {examples})" if examples else ""))
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """Plain JSON-ready form."""
        return {"checked": dict(self.checked), "matched": dict(self.matched),
                "examples": {k: list(v) for k, v in self.examples.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> PrivacyCounts:
        """Inverse of to_dict."""
        return cls({k: int(v) for k, v in d["checked"].items()}, {k: int(v) for k, v in d["matched"].items()},
                   {k: list(v) for k, v in d["examples"].items()})


def _sample(n: int, limit: int) -> np.ndarray:
    """Positions of at most `limit` of n distinct values, in order: all of them, or those whose position has the
    smallest hash (splitmix64: the same positions every time, never random, and spread without a period that could
    line up with the data's). A hash of the values themselves would cost ~0.2 us a distinct value; this ~0.01."""
    if n <= limit:
        return np.arange(n)
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return np.sort(np.argpartition(z, limit)[:limit])


def scan(values: Sequence[str], counts: np.ndarray) -> PrivacyCounts:
    """Check a frame's distinct values, weighted by their occurrences (values that occur 0 times are skipped).

    Every kind but phone is checked on the sample (_sample, SAMPLE_SIZE); phone, whose check costs ~0.15 ms a value,
    on every k-th value of it (PHONE_SAMPLE at most). A cheap regex of every kind's shape lets only candidates
    through to the exact checks.
    """
    present = np.flatnonzero(np.asarray(counts) > 0)
    if not present.size:
        return PrivacyCounts()
    picked = present[_sample(present.size, SAMPLE_SIZE)]
    weights = np.asarray(counts)[picked].astype(np.int64)
    step = -(-picked.size // PHONE_SAMPLE)
    total = int(weights.sum())
    checked = {kind: total for kind in KINDS}
    checked[PHONE] = int(weights[::step].sum())
    matched: dict[str, int] = {}
    examples: dict[str, set[str]] = {}
    candidate = _CANDIDATE.fullmatch
    for i, position in enumerate(picked.tolist()):
        value = values[position].strip()
        if not candidate(value):
            continue
        found = detect(value, phone=i % step == 0)
        if found is None:
            continue
        kind = found[0]
        matched[kind] = matched.get(kind, 0) + int(weights[i])
        masked = examples.setdefault(kind, set())
        masked.add(found[1])
        if len(masked) > MAX_EXAMPLES:
            masked.remove(max(masked))
    return PrivacyCounts(checked, {k: matched[k] for k in KINDS if k in matched},
                         {k: sorted(examples[k]) for k in KINDS if k in examples})


def scan_series(series: pd.Series) -> PrivacyCounts:
    """scan() of a whole column (a reference's, before its vocabulary is chosen)."""
    codes, uniques = category_codes(series)
    return scan(uniques, np.bincount(codes[codes >= 0], minlength=len(uniques)))


def personal_data_anomalies(batch, policy: str = "error") -> list[Anomaly]:
    """One anomaly per text feature of a batch profile whose share of personal data reaches PRIVACY_MIN_SHARE, of
    the policy's severity ("error" or "warn"; "off": none), explained with masked examples only."""
    if policy not in POLICIES:
        raise ValueError(f"privacy must be one of {', '.join(POLICIES)}, not {policy!r}")
    severity = POLICIES[policy]
    if severity is None:
        return []
    found = []
    for name, fp in batch.features.items():
        counts = getattr(fp, "privacy", None)
        if counts is not None and counts.flagged:
            found.append(Anomaly(PERSONAL_DATA, name, PERSONAL_DATA, counts.share, PRIVACY_MIN_SHARE, severity,
                                 counts.explanation(name)))
    return found
