"""How validation treats a source's batches: which verdicts quarantine them, and the personal-data check."""
from collection.models import Source

from ..models import SourcePolicy
from ..selectors import source_policy_get


def source_policy_set(*, source: Source, quarantine_on: str | None = None,
                      privacy_check: str | None = None) -> SourcePolicy:
    """Change a source's policy (None keeps a setting); its row is made with the defaults on the first change."""
    policy = source_policy_get(source=source)
    if quarantine_on is not None:
        policy.quarantine_on = quarantine_on
    if privacy_check is not None:
        policy.privacy_check = privacy_check
    policy.full_clean()
    policy.save()
    return policy
