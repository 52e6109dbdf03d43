"""Keyed hashes that name a record or an actor without keeping either: what a tombstone holds.

The same keyed hash as the actors' pseudonyms (`collection.services.actor_pseudonym`, one secret), over
texts of their own: a source id and an external id, or "actor" and a pseudonym.
"""
from collection.services import actor_pseudonym


def record_identity(source_id: int, external_id: str) -> str:
    """The identity of a record of a source (all its revisions), as a keyed hash."""
    return actor_pseudonym(f"{source_id}\x00{external_id}")


def actor_identity(pseudonym: str) -> str:
    """The identity of a feedback actor, from the pseudonym Sieve already keeps for it."""
    return actor_pseudonym(f"actor\x00{pseudonym}")
