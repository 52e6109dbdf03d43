"""A record's split from its identity alone: a keyed hash of (source, external id), or of its group's
value, mapped onto the rule's fractions; or its observed time against the rule's cutoffs.

The hash is BLAKE2b keyed with the set's secret, read as a number in [0, 1): the same record gets the
same number in every version, so its split never changes while the rule does not (and the rule is
fixed once a version is published). A source cannot aim a record at a split without the key.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from hashlib import blake2b

import numpy as np
import orjson
import pyarrow as pa

TWO_64 = float(2**64)


def unit_hashes(keys: list[bytes], secret: bytes) -> np.ndarray:
    """Each key's keyed hash as a float in [0, 1)."""
    digests = b"".join(blake2b(k, key=secret, digest_size=8).digest() for k in keys)
    return np.frombuffer(digests, dtype=">u8").astype(np.float64) / TWO_64


def _micros(text: str) -> int:
    """An ISO time as µs since the epoch (UTC; a time without an offset is UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return int(np.datetime64(moment, "us").astype(np.int64))


def group_key(value) -> bytes | None:
    if value is None or value == "":
        return None
    return b"g\x00" + (value.encode() if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


@dataclass
class SplitRule:
    kind: str
    names: list[str]
    bounds: np.ndarray  # cumulative fractions (random, group) or cutoffs in µs since the epoch (time)
    secret: bytes
    feature: str = ""

    @classmethod
    def of(cls, training_set) -> SplitRule:
        secret = bytes.fromhex(training_set.split_key)
        if training_set.split_kind == "time":
            names = [n for n, _ in training_set.split_cutoffs]
            cuts = [_micros(c) if c else np.iinfo(np.int64).max for _, c in training_set.split_cutoffs]
            return cls("time", names, np.asarray(cuts, dtype=np.int64), secret)
        names = [n for n, _ in training_set.split_fractions]
        bounds = np.cumsum([float(f) for _, f in training_set.split_fractions])
        bounds[-1] = 1.0  # rounding must never leave a hash without a split
        return cls(training_set.split_kind, names, bounds, secret, training_set.split_feature)

    def assign(self, table: pa.Table, group_column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(split index per row, rows without what the rule needs: no observed time, no group value)."""
        n = table.num_rows
        if self.kind == "time":
            observed = table.column("__o")
            missing = observed.is_null().to_numpy(zero_copy_only=False)
            micros = observed.cast(pa.int64()).fill_null(0).to_numpy()
            # A record observed before a cutoff takes that cutoff's split: the first cutoff above its time.
            return np.searchsorted(self.bounds, micros, side="right"), missing
        if self.kind == "group":
            values = table.column(group_column).to_pylist() if group_column else [None] * n
            keys = [group_key(v) for v in values]
            missing = np.array([k is None for k in keys], dtype=bool)
            u = unit_hashes([k or b"" for k in keys], self.secret)
        else:
            sources = table.column("__s").to_pylist()
            ids = table.column("__e").to_pylist()
            u = unit_hashes([f"{s}\x00{e}".encode() for s, e in zip(sources, ids)], self.secret)
            missing = np.zeros(n, dtype=bool)
        return np.searchsorted(self.bounds, u, side="right").clip(max=len(self.names) - 1), missing
