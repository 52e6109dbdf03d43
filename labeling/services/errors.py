"""What the labeling services refuse, each with a code and what it is about, so the API can say so."""
from collection.errors import Refusal


class LabelingError(Refusal):
    """A request the queue cannot honour; `code` names the problem, `field`/`value` locate it."""

    code = "labeling_error"
    status = 409


class NotAllowed(LabelingError):
    """The rater may not work on this project (not a member, wrong kind or domain, inactive)."""

    code = "not_allowed"
    status = 403


class LeaseLost(LabelingError):
    """The lease expired and its slot went to someone else (or the item is complete)."""

    code = "lease_expired"
    status = 409


class AlreadyFinished(LabelingError):
    """The assignment was already submitted, skipped or undone."""

    code = "assignment_finished"
    status = 409


class NothingToUndo(LabelingError):
    code = "nothing_to_undo"
    status = 409


class RouteError(LabelingError):
    """A batch that cannot be queued (it is not admitted, say)."""

    code = "not_routable"
    status = 409


class ReasonMissing(LabelingError):
    code = "reason_required"
    status = 400


class NotAdjudicable(LabelingError):
    """The item is not waiting for adjudication (and the user may not override it), or it is gold."""

    code = "not_in_adjudication"
    status = 409


class AlreadyDecided(LabelingError):
    """Someone adjudicated or closed the item already (with another decision)."""

    code = "already_adjudicated"
    status = 409


class CannotAssign(LabelingError):
    """The item cannot go to this rater (closed, already theirs once, or they do not fit the project)."""

    code = "not_assignable"
    status = 409


class QueueBusy(LabelingError):
    """Items this rater could take exist, but other transactions held every one of them for longer than
    SIEVE_NEXT_CONTENTION_SECONDS: ask again after `retry_after` seconds (the API answers 503 with Retry-After)."""

    code = "queue_busy"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 1, **where):
        super().__init__(message, **where)
        self.retry_after = retry_after
