"""Every write of the labeling app. Split by subject; import from here.

- people: raters (create, invite, tokens) and projects (create, members)
- queue: next item, submit, skip, undo, lease expiry, consensus, gold items
- routing: the route step (admitted batches become queue items, once)
- feedback: process feedback becomes labels by a project's rules
"""
from ..labels import InvalidLabel
from .errors import AlreadyFinished, LabelingError, LeaseLost, NotAllowed, NothingToUndo, RouteError
from .feedback import (
    feedback_apply_rules,
    feedback_label,
    feedback_rule_create,
    feedback_rule_update,
    feedback_rules_preview,
)
from .people import (
    project_add_raters,
    project_create,
    project_remove_rater,
    rater_check_fits,
    rater_create,
    rater_fit_problem,
    rater_invite,
    rater_profile_add,
    rater_set_active,
    rater_token,
    user_token,
)
from .queue import (
    annotation_undo_last,
    assignment_skip,
    assignment_submit,
    item_next,
    item_set_gold,
    item_settle,
    leases_reclaim,
)
from .routing import batch_add_to_project, batch_route, items_queue_batch, project_queue_admitted

__all__ = [
    "AlreadyFinished", "InvalidLabel", "LabelingError", "LeaseLost", "NotAllowed", "NothingToUndo", "RouteError",
    "annotation_undo_last", "assignment_skip", "assignment_submit", "batch_add_to_project", "batch_route",
    "feedback_apply_rules", "feedback_label", "feedback_rule_create", "feedback_rule_update", "feedback_rules_preview", "item_next",
    "item_set_gold", "item_settle", "items_queue_batch", "leases_reclaim", "project_add_raters", "project_create",
    "project_queue_admitted", "project_remove_rater", "rater_check_fits", "rater_create", "rater_fit_problem",
    "rater_invite", "rater_profile_add", "rater_set_active", "rater_token", "user_token",
]
