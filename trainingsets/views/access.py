"""Who may do what on the training-set pages: staff everything, an owner publishes, readers read; anyone else
is told nothing (404), not even that the set exists."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from ..models import TrainingSet, TrainingSetVersion
from ..selectors import trainingset_can_publish, trainingset_get_for, version_get

__all__ = ["login_required", "may_manage", "may_publish", "readable_set", "readable_version", "require_staff"]


def readable_set(request, pk: int) -> TrainingSet:
    training_set = trainingset_get_for(request.user, pk)
    if training_set is None:
        raise Http404("No such training set.")
    return training_set


def readable_version(request, pk: int, number: int) -> tuple[TrainingSet, TrainingSetVersion]:
    training_set = readable_set(request, pk)
    version = version_get(training_set, number)
    if version is None:
        raise Http404("No such version.")
    return training_set, version


def may_publish(user, training_set: TrainingSet) -> bool:
    return trainingset_can_publish(user, training_set)


def may_manage(user) -> bool:
    """Create sets, edit their policy, decide on held versions, make baselines, rebuild: staff only."""
    return user.is_staff


def require_staff(user) -> None:
    if not may_manage(user):
        raise PermissionDenied("Staff only.")
