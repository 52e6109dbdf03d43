"""Mergeable sketches: a deterministic quantile sketch with proven bounds, and HLL distinct counts (Apache
DataSketches)."""

from __future__ import annotations

import base64
import math

import datasketches as ds
import numpy as np
import pandas as pd

# Fibonacci hashing: one wrapping multiply spreads float bit patterns over the top bits.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


# Values kept per level of the quantile sketch. Up to this many values (more when they repeat) the sketch keeps
# every value and is exact; past it each level holds at most this many items, so a column costs at most
# CAPACITY x levels x 8 bytes (~16 kB per level; log2(n / CAPACITY) levels at most).
CAPACITY = 2048
# A compaction leaves capacity / TAIL_SHARE items at each end of its level alone.
TAIL_SHARE = 16


def _coalesce(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two equal items of one level are one item of the next, with no error: returns (stay, up)."""
    if items.size < 2 or not np.count_nonzero(items[1:] == items[:-1]):
        return items, items[:0]
    starts = np.flatnonzero(np.concatenate(([True], items[1:] != items[:-1])))
    if starts.size == items.size:
        return items, items[:0]
    counts = np.diff(np.append(starts, items.size))
    values = items[starts]
    return values[counts % 2 == 1], np.repeat(values, counts // 2)


class QuantileSketch:
    """Quantiles of a numeric column: a deterministic, mergeable compactor hierarchy with proven error bounds.

    `levels[h]` holds sorted items that each stand for 2**h values. While no level passes `capacity` every value
    is kept (equal values are counted exactly, two of level h being one of level h + 1), so the sketch is exact.
    Past it a level is compacted (Manku, Rajagopalan & Lindsay 1998; KLL without its coin): its sorted items are
    cut into blocks of s = 2**j and the middle item of each block goes up j levels for the whole block. That moves
    any rank by at most 2**h * s / 2 (only the block straddling a point is off) and moves mass by the distances
    of each item to its block's middle, both summed into `rank_err` and `transport`, so:
    |CDF_sketch(x) - CDF_data(x)| <= rank_err / n for every x, and W1(sketch, data) <= transport / n.
    No randomness: the same values in the same chunks give the same bytes; any other chunking stays within the
    bounds. Which of the two middle items is kept alternates per level (`parity`), so roundings do not pile up
    on one side.
    """

    def __init__(self, capacity: int = CAPACITY, levels: list[np.ndarray] | None = None, rank_err: int = 0,
                 transport: float = 0.0, parity: list[int] | None = None):
        self.capacity = capacity
        self.levels = levels if levels is not None else []
        self.rank_err = rank_err
        self.transport = transport
        self.parity = parity if parity is not None else []
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    # -- building -----------------------------------------------------------------------------------------
    def _level(self, h: int) -> np.ndarray:
        while len(self.levels) <= h:
            self.levels.append(np.zeros(0))
            self.parity.append(0)
        return self.levels[h]

    def _compact(self, items: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Compact sorted items of level h: (items left at h, items promoted, levels up).

        The TAIL smallest and largest items stay: the tails are where values lie far apart, so rounding them
        would cost Wasserstein most; they are compacted later only if more extreme values push them inward."""
        tail = self.capacity // TAIL_SHARE
        inner = items[tail: items.size - tail]
        j = max(1, int(math.floor(math.log2(inner.size / (self.capacity / 2)))))
        s = 1 << j
        blocks = inner.size // s
        used = inner[: blocks * s].reshape(blocks, s)
        middle = s // 2 - (self.parity[h] & 1)
        picked = used[:, middle].copy()
        self.parity[h] += 1
        weight = 1 << h
        self.rank_err += weight * s // 2
        # Sum of |item - its block's middle| over sorted blocks: the items above minus the items below, then the
        # middle once per item on each side (einsum: no BLAS threads), plus what rounding in these sums can hide.
        side = np.zeros(s)
        side[:middle], side[middle + 1:] = -1.0, 1.0
        moved = np.einsum("ij,j->", used, side) + (2 * middle + 1 - s) * float(picked.sum())
        rounding = 4 * used.size * np.finfo(np.float64).eps * max(abs(float(inner[0])), abs(float(inner[-1])))
        self.transport += weight * (max(float(moved), 0.0) + rounding)
        return np.concatenate([items[:tail], inner[blocks * s:], items[items.size - tail:]]), picked, j

    def _absorb(self, incoming: dict[int, list[np.ndarray]]) -> None:
        """Add items of weight 2**h (incoming[h]: lists of arrays), level by level from the bottom: each level is
        sorted once with what reaches it, equal items coalesce, and a level over capacity is compacted upwards."""
        while incoming:
            h = min(incoming)
            parts = [part for part in incoming.pop(h) if part.size]
            level = self._level(h)
            if not parts:
                continue
            items = np.sort(np.concatenate([level, *parts]))
            if items.size > self.capacity:
                items, up = _coalesce(items)
                if up.size:
                    incoming.setdefault(h + 1, []).append(up)
                if items.size > self.capacity:
                    items, picked, j = self._compact(items, h)
                    incoming.setdefault(h + j, []).append(picked)
            self.levels[h] = items
        while self.levels and not self.levels[-1].size:
            self.levels.pop()
            self.parity.pop()

    def add_sorted(self, segments: list[np.ndarray]) -> None:
        """Add every value of some sorted runs; a run over capacity is compacted on its own first (no sort)."""
        self._sorted = None
        self._level(0)
        incoming: dict[int, list[np.ndarray]] = {0: []}
        for seg in segments:
            seg = np.asarray(seg, dtype=np.float64)
            if seg.size > self.capacity:
                seg, up = _coalesce(seg)
                incoming.setdefault(1, []).append(up)
                if seg.size > self.capacity:
                    seg, picked, j = self._compact(seg, 0)
                    incoming.setdefault(j, []).append(picked)
            incoming[0].append(seg)
        self._absorb(incoming)

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch of both inputs (does not touch either operand; the same for a.merge(b) and b.merge(a))."""
        height = max(len(self.levels), len(other.levels))
        parity = [(self.parity[h] if h < len(self.parity) else 0) + (other.parity[h] if h < len(other.parity) else 0)
                  for h in range(height)]
        result = QuantileSketch(self.capacity, [np.zeros(0)] * height, self.rank_err + other.rank_err,
                                self.transport + other.transport, parity)
        result._absorb({h: [lv[h] for lv in (self.levels, other.levels) if h < len(lv)] for h in range(height)})
        return result

    # -- reading ------------------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """How many values the sketch stands for."""
        return sum(level.size << h for h, level in enumerate(self.levels))

    @property
    def empty(self) -> bool:
        """True when no value was added."""
        return not any(level.size for level in self.levels)

    @property
    def is_exact(self) -> bool:
        """True while every value is kept (no compaction has lost anything)."""
        return self.rank_err == 0

    def weighted(self) -> tuple[np.ndarray, np.ndarray]:
        """The sketch as sorted values and their cumulative weights (cached)."""
        if self._sorted is None:
            values = np.concatenate(self.levels) if self.levels else np.zeros(0)
            weights = np.concatenate([np.full(level.size, 1 << h, dtype=np.int64)
                                      for h, level in enumerate(self.levels)]) if self.levels else np.zeros(0, np.int64)
            order = np.argsort(values, kind="stable")
            self._sorted = (values[order], np.cumsum(weights[order]))
        return self._sorted

    def values(self) -> np.ndarray:
        """Every value, sorted (exact sketches only: what was added, equal values repeated)."""
        if not self.is_exact:
            raise ValueError("the sketch no longer holds every value")
        values, cumulative = self.weighted()
        return np.repeat(values, np.diff(cumulative, prepend=0))

    def rank_error(self) -> float:
        """Proven bound of |CDF_sketch(x) - CDF_data(x)| over all x: 0 while exact."""
        n = self.n
        return self.rank_err / n if n else 0.0

    def w1_error(self) -> float:
        """Proven bound of the Wasserstein-1 distance between the sketch and the data (value units)."""
        n = self.n
        return self.transport / n if n else 0.0

    def quantiles(self, ranks: np.ndarray) -> np.ndarray:
        """Inverse CDF at the given ranks in [0, 1]: the smallest value whose CDF reaches the rank."""
        ranks = np.asarray(ranks, dtype=np.float64)
        if self.empty:
            return np.full(ranks.shape, np.nan)
        values, cumulative = self.weighted()
        index = np.searchsorted(cumulative, ranks * cumulative[-1], side="left")
        return values[np.clip(index, 0, values.size - 1)]

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """P(X <= p) for each point."""
        points = np.asarray(points, dtype=np.float64)
        if self.empty:
            return np.full(points.shape, np.nan)
        values, cumulative = self.weighted()
        index = np.searchsorted(values, points, side="right")
        return np.concatenate(([0], cumulative))[index] / cumulative[-1]

    # -- storage ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-ready form: the levels' items as base64 of little-endian float64, one after another."""
        items = np.concatenate(self.levels) if self.levels else np.zeros(0)
        return {"capacity": self.capacity, "sizes": [int(level.size) for level in self.levels],
                "items": _b64(items.astype("<f8").tobytes()), "rank_err": int(self.rank_err),
                "transport": float(self.transport), "parity": list(self.parity)}

    @classmethod
    def from_dict(cls, d: dict) -> QuantileSketch:
        """Inverse of to_dict; profiles of Sieve 0.11 and earlier (exact values and a KLL) are read too."""
        if "sizes" not in d:
            return _from_kll_dict(d)
        items = np.frombuffer(_unb64(d["items"]), dtype="<f8").astype(np.float64)
        bounds = np.cumsum([0, *d["sizes"]])
        levels = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        return cls(d["capacity"], levels, d["rank_err"], d["transport"], list(d["parity"]))


def _from_kll_dict(d: dict) -> QuantileSketch:
    """A profile stored before 0.12: its exact values kept; its KLL (randomised, stride-fed) read as its quantiles
    at equal rank steps, with the KLL's own 99% rank bound plus the rounding as `rank_err` and that bound times
    the range as `transport`."""
    sketch = QuantileSketch()
    if d.get("exact"):
        sketch.add_sorted([np.frombuffer(_unb64(d["exact"]), dtype="<f8").astype(np.float64)])
    if not d.get("kll"):
        return sketch
    kll = ds.kll_doubles_sketch.deserialize(_unb64(d["kll"]))
    if kll.is_empty():
        return sketch
    n = int(kll.n) * int(d.get("stride", 1))
    h = max(0, int(math.floor(math.log2(max(n / CAPACITY, 1)))))
    count = n >> h
    points = np.asarray(kll.get_quantiles((np.arange(count) + 0.5) / count), dtype=np.float64)
    old = QuantileSketch()
    old._absorb({h: [points]})
    error = ds.kll_doubles_sketch.get_normalized_rank_error(kll.k, False)
    old.rank_err += int(math.ceil(error * n)) + (1 << h)
    old.transport += old.rank_err * float(kll.get_max_value() - kll.get_min_value())
    return sketch.merge(old)


class DistinctCount:
    """Exact distinct values up to a cap; past it, HLL of a hash sample scaled by its rate."""

    def __init__(self, lg_k: int, cap: int, sample_bits: int, exact=(), hll=None):
        self.lg_k = lg_k
        self.cap = cap
        self.sample_bits = sample_bits
        self.exact: set | None = set(exact) if exact is not None else None
        self.hll = hll if hll is not None else ds.hll_sketch(lg_k)

    def _sampled(self, hashes: np.ndarray) -> np.ndarray:
        return hashes < np.uint64(1 << (64 - self.sample_bits))

    def add_numbers(self, values: np.ndarray, exact_values) -> None:
        """Add finite floats; exact_values() lists the chunk's distinct values when asked."""
        picked = np.unique(values[self._sampled(values.view(np.uint64) * _GOLDEN)])
        # The hash sample already estimates the chunk's cardinality: skip the exact pass
        # when it is far past the cap.
        if self.exact is not None and picked.size << self.sample_bits > 4 * self.cap:
            self.exact = None
        self._add_exact(exact_values() if self.exact is not None else None)
        for v in picked.tolist():
            self.hll.update(v)

    def add_strings(self, uniques: list[str]) -> None:
        """Add a chunk's distinct present strings."""
        self._add_exact(uniques if len(uniques) <= self.cap else None)
        if not uniques:
            return
        arr = np.asarray(uniques, dtype=object)
        for v in arr[self._sampled(pd.util.hash_array(arr, categorize=False))].tolist():
            self.hll.update(v)

    def _add_exact(self, uniques) -> None:
        if self.exact is None:
            return
        if uniques is None:
            self.exact = None
            return
        self.exact.update(uniques.tolist() if isinstance(uniques, np.ndarray) else uniques)
        if len(self.exact) > self.cap:
            self.exact = None

    def merge(self, other: DistinctCount) -> DistinctCount:
        """Union of both inputs."""
        union = ds.hll_union(self.lg_k)
        union.update(self.hll)
        union.update(other.hll)
        exact = None
        if self.exact is not None and other.exact is not None:
            exact = self.exact | other.exact
            exact = exact if len(exact) <= self.cap else None
        return DistinctCount(self.lg_k, self.cap, self.sample_bits, exact, union.get_result())

    def estimate(self) -> float:
        """Exact count while under the cap, else the sampled HLL estimate times 2**sample_bits."""
        if self.exact is not None:
            return float(len(self.exact))
        return self.hll.get_estimate() * (1 << self.sample_bits)

    def to_dict(self) -> dict:
        """Plain JSON-ready form (exact values sorted so equal counts serialise equally)."""
        exact = None if self.exact is None else sorted(self.exact)
        return {
            "lg_k": self.lg_k,
            "cap": self.cap,
            "sample_bits": self.sample_bits,
            "exact": exact,
            "hll": _b64(self.hll.serialize_compact()),
        }

    @classmethod
    def from_dict(cls, d: dict) -> DistinctCount:
        """Inverse of to_dict."""
        hll = ds.hll_sketch.deserialize(_unb64(d["hll"]))
        return cls(d["lg_k"], d["cap"], d["sample_bits"], d["exact"], hll)
