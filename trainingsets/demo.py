"""The training-set part of `manage.py demo`: a set over the demo source and its fraud project, and its first
version built here, as a worker would, so the pages show a published version with files at once. Safe to run
again: an existing set keeps its versions."""
from collection.models import Source
from labeling.models import LabelingProject

from .models import TrainingSet, TrainingSetVersion
from .services import trainingset_create, version_build, version_request
from .services.decisions import version_decide

DEMO_SET = "demo-orders"
# The demo's baseline was made before raters could answer "Can't tell", so its gate may hold the first version.
APPROVAL = ("Approved by the demo's setup, so that the demo has a published version to download: read the gate's "
            "reasons above before approving real data despite them.")
DESCRIPTION = ("Checkout orders of the demo app with their fraud label: the raters' consensus where it is "
               "confident, else the label the app sent.")


def demo_trainingset(*, source: Source, projects: list[LabelingProject], owner=None) -> TrainingSetVersion | None:
    """Make (or find) the demo set and publish its first version in this process; returns its latest version.

    The version request enqueues a build too: the worker that gets it later finds the version built (the build
    claims it first) and does nothing. A version the gate holds is approved with a comment that says so, as
    staff would, so the demo shows a decision on its page too."""
    training_set = TrainingSet.objects.filter(name=DEMO_SET).first() or trainingset_create(
        name=DEMO_SET, description=DESCRIPTION, sources=[source], projects=projects, owner=owner,
        min_confidence=0.7, formats=["parquet", "csv", "jsonl"])
    if not training_set.versions.exists():
        version = version_request(training_set=training_set, user=owner, comment="the demo's first version",
                                  idempotency_key="demo-v1")
        version = version_build(version_id=version.pk)
        if version.status == TrainingSetVersion.Status.REVIEW and owner is not None and owner.is_staff:
            version_decide(version=version, user=owner, approve=True, comment=APPROVAL)
    return training_set.versions.order_by("-number").first()
