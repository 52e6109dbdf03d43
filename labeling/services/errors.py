"""What the labeling services refuse, each with a code and what it is about, so the API can say so."""


class LabelingError(Exception):
    """A request the queue cannot honour; `code` names the problem, `field`/`value` locate it."""

    code = "labeling_error"
    status = 409

    def __init__(self, message: str, *, field: str | None = None, value=None):
        super().__init__(message)
        self.field = field
        self.value = value


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
