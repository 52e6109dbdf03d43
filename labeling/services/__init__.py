"""Every write of the labeling app. Split by subject; import from here.

- people: raters (create, invite, tokens) and projects (create, members)
- queue: next item, submit, skip, undo, lease expiry
- settling: the settling rule (complete, extra rater, adjudication), re-settling a project, gold items
- routing: the route step (admitted batches become queue items, once)
- feedback: process feedback becomes labels by a project's rules
- labels_io: every individual label out (CSV, Parquet), bulk import in; assign: an item to a given rater
- consensus: Dawid-Skene (or majority) runs over a project's labels, kept and applied
- adjudication: experts or staff decide the items the raters could not settle
- raters: the gold-accuracy gate, pausing and resuming a rater in a project
"""
from ..labels import InvalidLabel
from .adjudication import (
    AlreadyDecided,
    NotAdjudicable,
    ReasonMissing,
    adjudicator_check,
    adjudicator_problem,
    item_adjudicate,
    item_close_unlabelable,
)
from .assign import CannotAssign, item_assign
from .consensus import (
    ConsensusParametersInvalid,
    consensus_parameters,
    consensus_run_execute,
    consensus_run_request,
    consensus_runs_check,
)
from .errors import AlreadyFinished, LabelingError, LeaseLost, NotAllowed, NothingToUndo, RouteError
from .feedback import (
    feedback_apply_rules,
    feedback_label,
    feedback_rule_create,
    feedback_rule_update,
    feedback_rules_preview,
)
from .labels_io import (
    LabelsRejected,
    TooManyLabels,
    labels_import,
    labels_parse,
    labels_write_csv,
    labels_write_parquet,
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
    QueueBusy,
    annotation_undo_last,
    assignment_skip,
    assignment_submit,
    item_next,
    leases_reclaim,
)
from .raters import rater_gold_gate, rater_pause, rater_resume
from .routing import batch_add_to_project, batch_route, items_queue_batch, project_queue_admitted
from .settling import (
    item_set_gold,
    item_settle,
    item_unset_gold,
    items_escalate_stuck,
    items_settle,
    project_resettle,
    project_update_overlap,
)

__all__ = [
    "QueueBusy", "item_unset_gold", "items_escalate_stuck", "project_resettle", "project_update_overlap",
    "rater_gold_gate", "rater_pause", "rater_resume",
    "CannotAssign", "LabelsRejected", "TooManyLabels", "item_assign", "labels_import", "labels_parse",
    "labels_write_csv", "labels_write_parquet",
    "AlreadyDecided", "ConsensusParametersInvalid", "NotAdjudicable", "ReasonMissing", "adjudicator_check",
    "adjudicator_problem", "consensus_parameters", "consensus_run_execute", "consensus_run_request",
    "consensus_runs_check", "item_adjudicate", "item_close_unlabelable",
    "AlreadyFinished", "InvalidLabel", "LabelingError", "LeaseLost", "NotAllowed", "NothingToUndo", "RouteError",
    "annotation_undo_last", "assignment_skip", "assignment_submit", "batch_add_to_project", "batch_route",
    "feedback_apply_rules", "feedback_label", "feedback_rule_create", "feedback_rule_update",
    "feedback_rules_preview", "item_next", "item_set_gold", "item_settle", "items_settle", "items_queue_batch",
    "leases_reclaim", "project_add_raters", "project_create",
    "project_queue_admitted", "project_remove_rater", "rater_check_fits", "rater_create", "rater_fit_problem",
    "rater_invite", "rater_profile_add", "rater_set_active", "rater_token", "user_token",
]
