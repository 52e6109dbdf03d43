"""Keyed hashes that name a record or an actor without keeping either: what a tombstone holds."""
import hmac

from django.conf import settings


def _keyed(text: str) -> str:
    return hmac.digest(settings.SIEVE_PSEUDONYM_SECRET.encode(), text.encode(), "sha256").hex()


def record_identity(source_id: int, external_id: str) -> str:
    """The identity of a record of a source (all its revisions), as a keyed hash."""
    return _keyed(f"{source_id}\x00{external_id}")


def actor_identity(pseudonym: str) -> str:
    """The identity of a feedback actor, from the pseudonym Sieve already keeps for it."""
    return _keyed(f"actor\x00{pseudonym}")
