"""Staff decisions on a version: approve or reject one its gate held, and make a published one its sources'
baseline."""
from django.db import transaction
from django.utils import timezone

from validation import alerts
from validation.models import Alert, AuditEntry, Baseline
from validation.services import BaselineError, baseline_create_from_profile
from validation.stats import Profile

from ..models import TrainingSetVersion
from .errors import CommentRequired, NoProfile, NotAllowed, NotInReview, NotPublished, VersionNotFound

Status = TrainingSetVersion.Status


def review_subject(version: TrainingSetVersion) -> str:
    """The subject of the VERSION_REVIEW alert raised when the gate holds this version."""
    return f"trainingset:{version.training_set_id}/version:{version.number}"


def _staff(user, doing: str) -> None:
    if user is None or not user.is_staff:
        raise NotAllowed(f"only staff may {doing}")


def _version(version_id: int | None, version: TrainingSetVersion | None) -> TrainingSetVersion:
    pk = version.pk if version is not None else version_id
    found = TrainingSetVersion.objects.select_related("training_set").filter(pk=pk).first()
    if found is None:
        raise VersionNotFound(f"no version {pk}", field="version", value=pk)
    return found


def _actor(user) -> str:
    return f"user:{user.get_username()}"


def version_decide(*, user, approve: bool, comment: str, version_id: int | None = None,
                   version: TrainingSetVersion | None = None) -> TrainingSetVersion:
    """A staff member's decision on a version the gate held (`review`): approve publishes it, reject keeps its
    files but never publishes it. Approving needs a comment; a second decision finds it no longer in review.

    Recorded on the version (who, when, the comment) and in the audit log, and the review alert closes, all
    in one transaction.
    """
    _staff(user, "decide on a version")
    current = _version(version_id, version)
    comment = (comment or "").strip()
    if approve and not comment:
        raise CommentRequired("say why the version is approved despite its gate", field="comment")
    now = timezone.now()
    target = Status.PUBLISHED if approve else Status.REJECTED
    with transaction.atomic():
        # Conditional on `review`: of two staff deciding at once, one decides and the other is told.
        decided = TrainingSetVersion.objects.filter(pk=current.pk, status=Status.REVIEW).update(
            status=target, decided_by=user, decided_at=now, decision_comment=comment, updated_at=now)
        if not decided:
            status = TrainingSetVersion.objects.filter(pk=current.pk).values_list("status", flat=True).first()
            raise NotInReview(f"{current} is {status}, not awaiting review", field="status", value=status)
        name = current.training_set.name
        AuditEntry.objects.create(actor=_actor(user), action="version_approved" if approve else "version_rejected",
                                  detail=f"set {name} v{current.number}" + (f": {comment}" if comment else ""))
        alerts.alert_resolve(kind=Alert.Kind.VERSION_REVIEW, subject=review_subject(current))
    current.refresh_from_db()
    return current


def version_make_baseline(*, user, version_id: int | None = None, version: TrainingSetVersion | None = None
                          ) -> list[Baseline]:
    """Make a published version the active baseline of every source of its set, from the profile its gate kept
    (no new pass over the files). Each source's earlier baseline is kept, inactive. All sources or none."""
    _staff(user, "make a baseline")
    current = _version(version_id, version)
    if current.status != Status.PUBLISHED:
        raise NotPublished(f"{current} is {current.status}: only a published version can become a baseline",
                           field="status", value=current.status)
    if not current.profile:
        raise NoProfile(f"{current} has no profile")
    profile = Profile.from_json(current.profile)
    detail = f"{current.training_set.name} v{current.number}"
    try:
        with transaction.atomic():
            return [baseline_create_from_profile(source=source, profile=profile, origin=Baseline.Origin.TRAINING_SET,
                                                 detail=detail, name=detail, created_by=user, activate=True)
                    for source in current.training_set.sources.order_by("name")]
    except BaselineError as exc:  # a version without rows
        raise NoProfile(f"{current}: {exc}") from exc
