"""A version published through a real Celery worker reaches its end state with its files."""
import pytest

from collection.storage import data_path
from tests.conftest import wait_for
from trainingsets.models import TrainingSetVersion
from trainingsets.services import version_request

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_requested_version_is_built_by_a_worker(worker, labeled_set):
    version = version_request(training_set=labeled_set)
    done = wait_for(lambda: TrainingSetVersion.objects.filter(pk=version.pk, status="published").first(),
                    timeout=60, what="the worker to publish the version")
    assert done.rows_written == done.rows_total == 60
    assert (data_path(done.folder) / "train.parquet").exists() and done.content_sha256
