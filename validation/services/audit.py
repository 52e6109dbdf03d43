"""The audit trail of validation's writes: who did what to which source, batch or baseline."""
from validation.models import AuditEntry


def actor_label(user) -> str:
    """How the audit log names a user (or the system, for None)."""
    return f"user:{user.get_username()}" if user is not None else "system"


def audit_record(*, actor: str, action: str, detail: str = "", source_id=None, batch_id=None,
                 baseline_id=None) -> AuditEntry:
    """Write one audit entry (inside the caller's transaction, when there is one)."""
    return AuditEntry.objects.create(actor=actor, action=action, detail=detail, source_id=source_id,
                                     batch_id=batch_id, baseline_id=baseline_id)
