"""Every refusal of the training-set services, with the API's error code and HTTP status."""
from collection.errors import Refusal


class TrainingSetError(Refusal):
    """A request the training-set services refuse."""


class SplitRuleInvalid(TrainingSetError):
    code = "invalid_split_rule"


class PolicyInvalid(TrainingSetError):
    code = "invalid_policy"


class SplitRuleLocked(TrainingSetError):
    """A published version fixes the split rule: changing it would move records between splits."""

    code = "split_rule_locked"
    status = 409


class VersionBuilding(TrainingSetError):
    code = "version_building"
    status = 409


class NotInReview(TrainingSetError):
    code = "not_in_review"
    status = 409


class CommentRequired(TrainingSetError):
    code = "comment_required"


class VersionNotReady(TrainingSetError):
    """Its files cannot be read: still building, failed or rejected."""

    code = "version_not_ready"
    status = 409


class FormatNotBuilt(TrainingSetError):
    code = "format_not_built"
    status = 404


class NotRebuildable(TrainingSetError):
    code = "not_rebuildable"
    status = 409


class NothingToErase(TrainingSetError):
    code = "nothing_to_erase"
    status = 404


class NotPublished(TrainingSetError):
    code = "not_published"
    status = 409


class NotAllowed(TrainingSetError):
    """Only staff decide on a held version or make a version a baseline."""

    code = "not_allowed"
    status = 403


class VersionNotFound(TrainingSetError):
    code = "not_found"
    status = 404


class NoProfile(TrainingSetError):
    """A version without rows has no profile a baseline could be made from."""

    code = "no_profile"
    status = 409


class UnknownSplit(TrainingSetError):
    code = "unknown_split"
    status = 404


class FileMissing(TrainingSetError):
    """The manifest lists the file but it is not on disk (removed by hand, or a disk not mounted)."""

    code = "file_missing"
    status = 404


class LineageMissing(FileMissing, FileNotFoundError):
    """A built version's lineage file is gone; also a FileNotFoundError, which the build's diff with the
    previous version tolerates (it skips the diff rather than failing a version already built)."""


class NotInVersion(TrainingSetError):
    code = "not_found"
    status = 404


class NoPreviousVersion(TrainingSetError):
    code = "no_previous_version"
    status = 404


class ErasureInvalid(TrainingSetError):
    """What to erase is not said right: no source or external id, or not exactly one of actor and pseudonym."""

    code = "invalid_erasure"


class ReasonHoldsData(TrainingSetError):
    """The reason names what is erased: the tombstone would then keep the very data it stands for."""

    code = "reason_holds_data"


class ErasureNotFailed(TrainingSetError):
    """Only a failed erasure's file rewrite can be retried (a pending one is still running)."""

    code = "erasure_not_failed"
    status = 409
