"""A source's policy (validation.SourcePolicy): the defaults without a row, the row made on the first change, and
which verdicts it quarantines."""
import pytest
from django.core.exceptions import ValidationError

from validation.models import PrivacyPolicy, QuarantinePolicy, SourcePolicy, ValidationRun
from validation.selectors import source_policy_get
from validation.services import source_policy_set

Verdict = ValidationRun.Verdict


def test_a_source_without_a_policy_row_has_the_defaults_and_reading_them_writes_nothing(source):
    policy = source_policy_get(source=source)
    assert (policy.quarantine_on, policy.privacy_check) == (QuarantinePolicy.ERRORS, PrivacyPolicy.ERROR)
    assert not SourcePolicy.objects.exists()


def test_the_first_change_makes_the_row_and_a_later_one_keeps_the_other_setting(source):
    source_policy_set(source=source, privacy_check=PrivacyPolicy.OFF)
    source_policy_set(source=source, quarantine_on=QuarantinePolicy.WARNINGS)
    policy = SourcePolicy.objects.get()
    assert (policy.source_id, policy.quarantine_on, policy.privacy_check) == (source.pk, "warn", "off")
    assert source_policy_get(source=source).quarantine_on == QuarantinePolicy.WARNINGS


def test_a_value_outside_the_choices_is_refused_and_nothing_is_saved(source):
    with pytest.raises(ValidationError):
        source_policy_set(source=source, quarantine_on="pass")
    assert not SourcePolicy.objects.exists()


@pytest.mark.parametrize("quarantine_on,verdict,quarantined", [
    (QuarantinePolicy.ERRORS, Verdict.PASS, False),
    (QuarantinePolicy.ERRORS, Verdict.WARN, False),
    (QuarantinePolicy.ERRORS, Verdict.FAIL, True),
    (QuarantinePolicy.ERRORS, Verdict.NO_BASELINE, True),
    (QuarantinePolicy.WARNINGS, Verdict.PASS, False),
    (QuarantinePolicy.WARNINGS, Verdict.WARN, True),
    (QuarantinePolicy.WARNINGS, Verdict.FAIL, True),
    (QuarantinePolicy.WARNINGS, Verdict.NO_BASELINE, True),
])
def test_fail_and_no_baseline_always_quarantine_a_warning_only_under_the_warnings_policy(quarantine_on, verdict,
                                                                                          quarantined):
    assert SourcePolicy(quarantine_on=quarantine_on).quarantines(verdict) is quarantined
