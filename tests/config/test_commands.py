"""The commands above the apps: source_create makes a source with validation's policy for it and prints a working
key (the demo's command: tests/config/test_embedded.py, tests/trainingsets/test_pages.py)."""
import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from collection.models import Source
from validation.models import SourcePolicy


def test_source_create_prints_a_key_that_works(db):
    out, err = io.StringIO(), io.StringIO()
    call_command("source_create", "fraud-model", "--kind", "model_output", "--from-model",
                 "--expected-interval-minutes", "30", stdout=out, stderr=err)
    source = Source.objects.get(name="fraud-model")
    assert source.from_model and source.expected_interval.total_seconds() == 1800
    key = out.getvalue().strip()
    assert key.startswith("sieve_") and "shown once" in err.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/batches").status_code == 200


def test_source_create_refuses_a_taken_name(db):
    call_command("source_create", "app-one", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="name"):
        call_command("source_create", "app-one", stdout=io.StringIO(), stderr=io.StringIO())
    assert Source.objects.filter(name="app-one").count() == 1


def test_source_create_sets_validations_policy_for_the_source(db):
    call_command("source_create", "crm-export", "--quarantine-on", "warn", "--privacy-check", "warn",
                 stdout=io.StringIO(), stderr=io.StringIO())
    call_command("source_create", "plain-app", stdout=io.StringIO(), stderr=io.StringIO())
    policies = {policy.source.name: (policy.quarantine_on, policy.privacy_check)
                for policy in SourcePolicy.objects.select_related("source")}
    assert policies == {"crm-export": ("warn", "warn"), "plain-app": ("fail", "error")}


def test_source_create_refuses_an_unknown_policy_and_makes_nothing(db):
    with pytest.raises(CommandError, match="privacy-check"):
        call_command("source_create", "odd-app", "--privacy-check", "maybe", stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert not Source.objects.filter(name="odd-app").exists()
