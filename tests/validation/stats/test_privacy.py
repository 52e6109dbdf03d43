"""The privacy check: personal data found by kind with its share, look-alikes left alone, masked examples only,
and profiles that keep no raw value of a feature of personal data."""

import ipaddress
import json
import uuid

import numpy as np
import pandas as pd
import pytest

from validation.stats import Profile, compare, infer_schema, privacy, profile_chunks, profile_frame, spec_from_frame
from validation.stats.privacy import PRIVACY_MIN_SHARE, classify, detect

# --- generated personal data, one generator per kind


def luhn_completed(body: str) -> str:
    """body plus the check digit that makes it pass the Luhn check."""
    for digit in "0123456789":
        if privacy.luhn_ok(body + digit):
            return body + digit
    raise AssertionError(body)


def card(rng, prefix: str, length: int, sep: str = "") -> str:
    digits = luhn_completed(prefix + "".join(rng.choice(list("0123456789"), length - 1 - len(prefix))))
    return sep.join(digits[i : i + 4] for i in range(0, length, 4)) if sep else digits


def iban(rng, country: str, bban: str, *, spaced: bool = False) -> str:
    number = int("".join(str(int(ch, 36)) for ch in bban + country + "00"))
    value = f"{country}{98 - number % 97:02d}{bban}"
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if spaced else value


def digits(rng, n: int) -> str:
    return "".join(rng.choice(list("0123456789"), n))


def emails(rng, n):
    names = ["anna", "ben", "chloe", "dmitri", "eva", "farid", "grace", "hiro"]
    domains = ["example.com", "mail.example.org", "post.example.co.uk", "example.de"]
    return [f"{rng.choice(names)}.{rng.choice(names)}{i}@{rng.choice(domains)}" for i in range(n)]


def phones(rng, n):
    forms = ["+44 20 7946 0{:03d}", "0044 20 7946 0{:03d}", "+1 415 555 1{:03d}", "(212) 555-1{:03d}",
             "+33 6 12 34 5{:1d} {:02d}", "+4930123{:05d}"]
    out = []
    for i in range(n):
        form = forms[i % len(forms)]
        k = i // len(forms)
        out.append(form.format(k // 100, k % 100) if form.count("{") == 2 else form.format(k))
    return out


def cards(rng, n):
    makers = [lambda: card(rng, "4", 16, " "), lambda: card(rng, "4", 16), lambda: card(rng, "53", 16, "-"),
              lambda: card(rng, "37", 15), lambda: card(rng, "6011", 16, " ")]
    return [makers[i % len(makers)]() for i in range(n)]


def ibans(rng, n):
    makers = [lambda: iban(rng, "DE", digits(rng, 18)), lambda: iban(rng, "DE", digits(rng, 18), spaced=True),
              lambda: iban(rng, "GB", "WEST" + digits(rng, 14)), lambda: iban(rng, "FR", digits(rng, 23), spaced=True),
              lambda: iban(rng, "NL", "ABNA" + digits(rng, 10))]
    return [makers[i % len(makers)]() for i in range(n)]


def ips(rng, n):
    out = []
    for i in range(n):
        if i % 3 == 2:
            out.append(str(ipaddress.IPv6Address(int(rng.integers(1, 2**62)) << 64 | int(rng.integers(1, 2**62)))))
        else:
            out.append(".".join(str(int(x)) for x in [rng.integers(1, 224), *rng.integers(0, 256, 3)]))
    return out


KINDS = {"email": emails, "phone": phones, "card": cards, "iban": ibans, "ip": ips}
FILLER = ["Berlin", "Paris", "Lisbon", "Oslo", "Rome", "Vienna", "Madrid", "Athens", "Dublin", "Prague"]


def column(values: list[str], share: float, n: int, rng) -> list[str]:
    """n values, a `share` of them personal (cycling through `values`), the rest city names, shuffled."""
    k = round(share * n)
    out = [values[i % len(values)] for i in range(k)] + [FILLER[i % len(FILLER)] for i in range(n - k)]
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_is_found_with_its_share_and_shown_masked_only(kind):
    rng = np.random.default_rng(1)
    personal = KINDS[kind](rng, 200)
    assert all(classify(v) == kind for v in personal), [v for v in personal if classify(v) != kind]
    frame = pd.DataFrame({"contact": column(personal, 0.3, 1000, rng), "x": np.arange(1000.0)})
    fp = profile_frame(frame).features["contact"]
    assert fp.privacy.matched == {kind: 300} and fp.privacy.checked[kind] == 1000
    assert fp.privacy.kind_share(kind) == pytest.approx(0.3) and fp.privacy.flagged
    examples = fp.privacy.examples[kind]
    assert 1 <= len(examples) <= 3 and examples == sorted(examples)
    for masked in examples:
        assert "*" in masked and masked not in personal
    text = json.dumps(fp.privacy.to_dict())
    assert not any(v in text for v in personal)


def test_masks_keep_the_shape_and_never_the_identifying_part():
    assert detect("john.doe@example.com") == ("email", "j***@e***.com")
    assert detect("  jane@mail.example.co.uk ") == ("email", "j***@m***.uk")
    assert detect("+44 20 7946 0958") == ("phone", "+44 ** **** 0958")
    assert detect("0044 20 7946 0958") == ("phone", "+44 ** **** 0958")
    assert detect("(415) 555-2671") == ("phone", "+1 ** **** 2671")
    assert detect("4111 1111 1111 1111") == ("card", "**** **** **** 1111")
    assert detect("378282246310005") == ("card", "*** **** **** 0005")
    assert detect("DE89 3704 0044 0532 0130 00") == ("iban", "DE** **** **** 3000")
    assert detect("GB82WEST12345698765432") == ("iban", "GB** **** **** 5432")
    assert detect("192.168.1.10") == ("ip", "192.168.*.*")
    assert detect("2001:db8::8a2e:370:7334") == ("ip", "2001:db8:*:*:*:*:*:*")


def test_a_version_with_four_numbers_is_an_ipv4_address_as_the_check_reads_it():
    # Said plainly in the docs: "1.2.3.4" is an IPv4 address whatever it meant; a three-part version is not.
    assert classify("1.2.3.4") == "ip" and classify("10.0.19045") is None and classify("1.2.3") is None


def look_alikes(rng) -> dict[str, list[str]]:
    valid_cards = [card(rng, "4", 16) for _ in range(60)]
    valid_ibans = [iban(rng, "DE", digits(rng, 18)) for _ in range(60)]
    return {
        "luhn-failing 16 digits": [v[:-1] + str((int(v[-1]) + 1) % 10) for v in valid_cards],
        "ibans with a wrong check": [v[:2] + f"{(int(v[2:4]) + 1) % 100:02d}" + v[4:] for v in valid_ibans],
        "random 16 digits outside the card prefixes": [str(d) + digits(rng, 15) for d in rng.choice([1, 7, 8, 9], 60)],
        "bad addresses": ["999.1.1.1", "256.0.0.1", "1.2.3.256", "a@b", "a@b.c", "user@localhost", "a@@b.com",
                          "@example.com", "user@.com", "12:30:45", "00:1A:2B:3C:4D:5E", "fe80:::1"],
        "dates and times": ["2024-01-15", "15/01/2024", "01.15.2024", "2024-01-15T10:30:00Z", "2024-01-15 10:30:00",
                            "20240115", "10:30", "Mon, 15 Jan 2024 10:30:00 +0000"],
        "versions": [f"{a}.{b}.{c}" for a, b, c in rng.integers(0, 30, (60, 3))] + ["v2.10.4", "1.0.0-rc.1"],
        "isbn-13": ["978-3-16-148410-0", "9780306406157", "978-0-306-40615-7", "979-10-90636-07-1"],
        "order numbers": [f"ORD-{2024}-{i:06d}" for i in range(60)] + [f"A{i:08d}" for i in range(60)],
        "us zip codes": [f"{z:05d}" for z in rng.integers(501, 99950, 60)] + [f"94105-{i:04d}" for i in range(60)],
        "uuids": [str(uuid.UUID(int=int(rng.integers(0, 2**62)) << 64 | int(rng.integers(0, 2**62))))
                  for _ in range(60)],
        "timestamps": [str(1_700_000_000_000 + int(i)) for i in rng.integers(0, 10**9, 60)]
                      + [str(1_700_000_000_000_000 + int(i)) for i in rng.integers(0, 10**12, 60)],
        "plain integers": [str(int(i)) for i in rng.integers(0, 10**12, 60)] + ["42", "-17", "+12", "+100"],
        "zero-padded ids": ["00" + digits(rng, 12) for _ in range(60)],
        "short numbers with a plus": ["+1.5", "+05:30", "+12345678"],
    }


@pytest.mark.parametrize("group", sorted(look_alikes(np.random.default_rng(2))))
def test_look_alikes_are_not_personal_data(group):
    values = look_alikes(np.random.default_rng(2))[group]
    assert [v for v in values if classify(v) is not None] == []
    fp = profile_frame(pd.DataFrame({"code": values})).features["code"]
    assert fp.privacy.matched == {} and fp.privacy.share == 0 and not fp.privacy.flagged


def test_a_substring_is_not_a_match_only_a_whole_value():
    text = ["write to anna@example.com", "call +44 20 7946 0958 today", "card 4111 1111 1111 1111", "ip=10.0.0.1"]
    assert [classify(v) for v in text] == [None] * 4


def test_a_flagged_feature_keeps_no_raw_value_in_the_spec_the_profile_or_the_schema():
    rng = np.random.default_rng(3)
    personal = emails(rng, 300)
    reference = pd.DataFrame({"contact": column(personal, 0.5, 600, rng), "city": column([], 0, 600, rng),
                              "y": ["a", "b"] * 300})
    baseline = profile_frame(reference, label="y")
    assert baseline.spec.features["contact"].vocab == () and baseline.spec.features["city"].vocab
    contact = baseline.features["contact"]
    assert contact.hist.tolist() == [600] and contact.other_examples == {} and contact.distinct.exact is None
    stored = baseline.to_json() + infer_schema(baseline).to_json()
    assert not any(v in stored for v in personal) and "Berlin" not in json.dumps(contact.to_dict())
    assert infer_schema(baseline).features["contact"].domain is None
    assert baseline.features["city"].distinct.exact  # a feature without personal data keeps its values


def test_below_the_floor_the_feature_keeps_its_values_but_personal_examples_are_masked():
    rng = np.random.default_rng(4)
    personal = emails(rng, 10)
    reference = pd.DataFrame({"note": FILLER * 10})
    values = [FILLER[i % 10] for i in range(990)] + personal  # 1%: under the floor
    fp = profile_frame(pd.DataFrame({"note": values}), spec=spec_from_frame(reference)).features["note"]
    assert fp.privacy.matched == {"email": 10} and not fp.privacy.flagged
    assert fp.distinct.exact is not None
    masked = [v for v in fp.other_examples if "@" in v]
    assert masked and all("***" in v for v in masked) and not set(personal) & set(fp.other_examples)


def two_sides(policy_rows: int = 800, seed: int = 5):
    """A reference and a batch whose `contact` is 40% email addresses (the reference's vocabulary is then empty)."""
    rng = np.random.default_rng(seed)
    personal = emails(rng, 120)

    def frame(n):
        return pd.DataFrame({"contact": column(personal, 0.4, n, rng), "amount": rng.normal(10, 2, n)})

    return profile_frame(frame(policy_rows)), frame(policy_rows), personal


def test_compare_reports_personal_data_as_the_source_s_policy_says():
    baseline, batch_frame, personal = two_sides()
    batch = profile_frame(batch_frame, spec=baseline.spec)
    failed = compare(batch, baseline)  # "error" by default
    [anomaly] = [a for a in failed.anomalies if a.kind == "personal_data"]
    assert (anomaly.feature, anomaly.metric, anomaly.severity) == ("contact", "personal_data", "error")
    assert anomaly.value == pytest.approx(0.4) and anomaly.threshold == PRIVACY_MIN_SHARE
    assert anomaly.explanation.startswith("email: 40% of contact look like email addresses (e.g. ")
    assert "***@" in anomaly.explanation
    assert failed.verdict == "fail" and "error: personal_data in contact" in failed.reasons
    warned = compare(batch, baseline, privacy="warn")
    assert warned.verdict == "warn" and [a.severity for a in warned.anomalies] == ["warning"]
    quiet = compare(batch, baseline, privacy="off")
    assert quiet.verdict == "pass" and quiet.anomalies == []
    with pytest.raises(ValueError, match="privacy must be one of"):
        compare(batch, baseline, privacy="loud")
    for report in (failed, warned, quiet):
        assert not any(v in report.to_json() for v in personal)


def test_off_checks_nothing_and_keeps_the_values_as_before():
    baseline, batch_frame, personal = two_sides()
    spec = spec_from_frame(batch_frame, privacy=False)
    assert set(spec.features["contact"].vocab) & set(personal)
    fp = profile_frame(batch_frame, spec=spec, privacy=False).features["contact"]
    assert fp.privacy is None and fp.distinct.exact and "privacy" not in fp.to_dict()


def test_merged_chunk_profiles_count_what_one_pass_counts():
    # Every distinct value is checked (fewer than PHONE_SAMPLE), so the counts are exact on both sides.
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"contact": column(emails(rng, 80) + cards(rng, 80) + ips(rng, 80), 0.3, 4000, rng),
                          "phone": column(phones(rng, 50), 0.5, 4000, rng)})
    whole = profile_frame(frame)
    chunks = profile_chunks([frame.iloc[i : i + 1000] for i in range(0, 4000, 1000)], spec=whole.spec)
    for name in ("contact", "phone"):
        assert chunks.features[name].privacy == whole.features[name].privacy
        assert chunks.features[name].privacy.flagged
        assert chunks.features[name].distinct.exact is None and chunks.features[name].other_examples == {}
    assert set(whole.features["contact"].privacy.matched) == {"email", "card", "ip"}
    assert sum(whole.features["contact"].privacy.matched.values()) == 1200


def test_a_frame_with_many_distinct_values_is_checked_on_a_bounded_deterministic_sample():
    n = 20_000
    values = [f"user{i}@example.com" if i % 4 == 0 else f"item-{i}" for i in range(n)]  # 25% emails, all distinct
    frame = pd.DataFrame({"contact": values, "phone": [f"+44 20 7946 {i % 10_000:04d}" for i in range(n)]})
    first = profile_frame(frame).features
    assert first["contact"].privacy.checked["email"] == privacy.SAMPLE_SIZE
    assert first["contact"].privacy.kind_share("email") == pytest.approx(0.25, abs=0.03)
    assert first["phone"].privacy.checked["phone"] <= 2 * privacy.PHONE_SAMPLE
    assert first["phone"].privacy.kind_share("phone") == 1.0
    again = profile_frame(frame).features
    assert again["contact"].privacy == first["contact"].privacy  # the same data: the same sample, never random


def test_profiles_round_trip_through_json_and_older_profiles_without_the_counts_still_load():
    baseline, batch_frame, personal = two_sides()
    batch = profile_frame(batch_frame, spec=baseline.spec)
    again = Profile.from_json(batch.to_json())
    assert again.to_json() == batch.to_json()
    assert again.features["contact"].privacy == batch.features["contact"].privacy
    old = json.loads(batch.to_json())
    for feature in old["features"].values():
        feature.pop("privacy", None)
    loaded = Profile.from_dict(old)
    assert loaded.features["contact"].privacy is None
    assert [a.kind for a in compare(loaded, baseline).anomalies] == []
    assert loaded.merge(batch).features["contact"].privacy == batch.features["contact"].privacy
