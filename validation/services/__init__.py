"""Every write of the validation app, by subject: baselines, edits of a baseline, verdicts on batches, reviews.

Callers may import from the submodules; the names below stay importable from `validation.services`, since the
pipeline, the other apps, the commands and the tests use them from here.
"""
from .baselines import (
    CHUNK_ROWS,
    FILE_FORMATS,
    BaselineError,
    baseline_activate,
    baseline_compare,
    baseline_create_from_batches,
    baseline_create_from_file,
    baseline_create_from_profile,
)
from .edits import BaselineConflict, baseline_digest, baseline_edit
from .policies import source_policy_set
from .reviews import ReviewError, batch_make_baseline, batch_retry, batch_review
from .verdicts import (
    CHUNKS_DIR,
    _json_safe,
    batch_validate,
    batch_validate_chunk,
    batch_validate_claim,
    batch_validate_merge,
    batch_validate_release,
    batch_validate_whole,
    report_json,
)

__all__ = [
    "CHUNK_ROWS", "CHUNKS_DIR", "FILE_FORMATS", "BaselineConflict", "BaselineError", "ReviewError", "_json_safe",
    "baseline_activate", "baseline_compare", "baseline_create_from_batches", "baseline_create_from_file",
    "baseline_create_from_profile", "baseline_digest", "baseline_edit", "batch_make_baseline", "batch_retry",
    "batch_review", "batch_validate", "batch_validate_chunk", "batch_validate_claim", "batch_validate_merge",
    "batch_validate_release", "batch_validate_whole", "report_json", "source_policy_set",
]
