"""Erasure: a record (source + external id) or an actor's feedback leaves the database at once, its files after.

The rows go in one transaction, which leaves a tombstone (`Erasure`: a keyed hash of what was erased,
counts, who and why, never the data), marks the built versions whose lineage holds it, takes the
record's feature values out of validation's examples, and writes an audit entry with the counts. The
raw payloads and Parquet copies of the batches that held a record are rewritten after the commit by
`erasure_rewrite_files` (the `rewrite_erased_files` task): payload lines masked, Parquet rows removed
(trainingsets.erasure_files). Nothing erasure writes (tombstone, audit entry, alert, log line, error)
holds an external id, an actor id or pseudonym, or a feature value.

- record: `erasure_record`; actor: `erasure_actor`; files: the rewrite, its retry and the resend of lost
  messages; examples: feature values quoted by validation; tombstone: what every erasure shares.
"""
from .actor import erasure_actor
from .files import ErasureFilesBusy, erasure_retry, erasure_rewrite_files, erasures_resend_pending
from .record import erasure_record

__all__ = ["ErasureFilesBusy", "erasure_actor", "erasure_record", "erasure_retry", "erasure_rewrite_files",
           "erasures_resend_pending"]
