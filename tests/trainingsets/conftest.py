"""Fixtures of the training-set tests: admitted batches of records, a project with consensus, a set, a version."""
import uuid

import pytest

from labeling.models import LabelingProject
from tests.factories import admitted_batch, build, checkout_rows, settle
from trainingsets.services import trainingset_create


@pytest.fixture
def project(source):
    project = LabelingProject.objects.create(
        name=f"fraud-{uuid.uuid4().hex[:6]}", label_kind=LabelingProject.LabelKind.SINGLE,
        choices=[{"value": "ok", "label": "OK", "hotkey": "1"}, {"value": "fraud", "label": "Fraud", "hotkey": "2"}])
    project.sources.add(source)
    return project


@pytest.fixture
def labeled_set(source, project):
    """A set over 60 admitted records of `source`, each with a confident consensus in `project`."""
    batch = admitted_batch(source, checkout_rows(60))
    settle(project, batch, lambda r: "fraud" if int(r.external_id[1:]) % 5 == 0 else "ok")
    return trainingset_create(name=f"set-{uuid.uuid4().hex[:6]}", sources=[source], projects=[project])


@pytest.fixture
def built_version(labeled_set):
    """The first version of `labeled_set`, built in this process."""
    version = build(labeled_set)
    assert version.status == "published", version.error
    return version
