"""Mergeable sketches from Apache DataSketches: KLL quantiles and HLL distinct counts."""

from __future__ import annotations

import base64

import datasketches as ds
import numpy as np
import pandas as pd

# Fibonacci hashing: one wrapping multiply spreads float bit patterns over the top bits.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


# Values kept exactly, sorted, before a KLL sketch takes over: about what a KLL of k=400 holds anyway
# (~1,200 items), so a small batch, a small class or a merge of small chunks costs no more space and
# gets exact quantiles, KS and Wasserstein (and the same bytes every time).
EXACT_CAP = 1024


class QuantileSketch:
    """Quantiles of a numeric column: every value, sorted, up to EXACT_CAP; past it a KLL sketch of every
    stride-th order statistic of each sorted run (weight = stride), plus the values added since in small
    pieces, kept exactly until they pass EXACT_CAP and go to the KLL as one run."""

    def __init__(self, k: int, stride: int, sketch: ds.kll_doubles_sketch | None = None,
                 exact: np.ndarray | None = None):
        self.k = k
        self.stride = stride
        self.sketch = sketch
        self.exact = exact if exact is not None else np.zeros(0)
        self._grid: np.ndarray | None = None

    @property
    def is_exact(self) -> bool:
        """True while every value is kept (no KLL yet)."""
        return self.sketch is None

    def _feed(self, segments: list[np.ndarray]) -> None:
        """The middle item of each block of `stride` of each sorted run stands for the block."""
        first = self.stride // 2
        picks = [seg[first :: self.stride] for seg in segments if seg.size]
        if picks:
            fed = np.concatenate(picks).astype(np.float64, copy=False)
            # KLL fed in ascending order keeps every other item of sorted buffers at each
            # compaction, which is far more accurate than its worst case (Wasserstein of
            # lognormal data: ±0.04 std from unsorted runs, ±0.01 sorted). The picks are an
            # eighth of the data, so this sort is cheap.
            fed.sort()
            if self.sketch is None:
                self.sketch = ds.kll_doubles_sketch(self.k)
            self.sketch.update(fed)

    def _settle(self) -> None:
        """Exact values past the cap go to the KLL as one sorted run (a run's rounding then costs at most
        stride/2 values per EXACT_CAP, instead of per small chunk)."""
        if self.exact.size > EXACT_CAP:
            self._feed([self.exact])
            self.exact = np.zeros(0)

    def add_sorted(self, segments: list[np.ndarray]) -> None:
        """Feed sorted runs: kept exactly while they are small, else strided into the KLL."""
        self._grid = None
        size = sum(seg.size for seg in segments)
        if size <= EXACT_CAP:
            if size:
                self.exact = np.sort(np.concatenate([self.exact, *segments]).astype(np.float64, copy=False))
                self._settle()
            return
        self._feed(segments)

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch of both inputs (exact values joined, KLL merged; does not touch either operand)."""
        sketches = [s for s in (self.sketch, other.sketch) if s is not None]
        merged = None
        if sketches:
            merged = ds.kll_doubles_sketch.deserialize(sketches[0].serialize())
            for extra in sketches[1:]:
                merged.merge(extra)
        exact = np.sort(np.concatenate([self.exact, other.exact]))
        result = QuantileSketch(self.k, self.stride, merged, exact)
        result._settle()
        return result

    @property
    def empty(self) -> bool:
        """True when no value was kept."""
        return self.exact.size == 0 and (self.sketch is None or self.sketch.is_empty())

    def _kll_weight(self) -> float:
        return 0.0 if self.sketch is None else float(self.sketch.n) * self.stride

    def rank_error(self) -> float:
        """The rank error bound: 0 while exact; KLL's normalised bound (99% confidence, single rank)."""
        if self.sketch is None:
            return 0.0
        return ds.kll_doubles_sketch.get_normalized_rank_error(self.k, False)

    def grid_quantiles(self, size: int) -> np.ndarray:
        """Quantiles at the midpoints of `size` equal rank steps, cached (sketches are reused)."""
        cached = self._grid
        if cached is None or cached.size != size:
            cached = self._grid = self.quantiles((np.arange(size) + 0.5) / size)
        return cached

    def quantiles(self, ranks: np.ndarray) -> np.ndarray:
        """Inverse CDF at the given ranks in [0, 1] (exact values: the smallest value whose CDF reaches the rank)."""
        ranks = np.asarray(ranks, dtype=np.float64)
        if self.empty:
            return np.full(ranks.shape, np.nan)
        if self.sketch is None or self.sketch.is_empty():
            values = self.exact
            index = np.ceil(ranks * values.size).astype(np.int64) - 1
            return values[np.clip(index, 0, values.size - 1)]
        if not self.exact.size:
            return np.asarray(self.sketch.get_quantiles(ranks))
        # Both: invert the combined CDF on the KLL's fine quantiles and the exact values.
        candidates = np.unique(np.concatenate([self.sketch.get_quantiles(np.linspace(0, 1, 2049)), self.exact]))
        cdf = self.cdf(candidates)
        return candidates[np.clip(np.searchsorted(cdf, ranks, side="left"), 0, candidates.size - 1)]

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """P(X <= p) for each sorted, distinct point."""
        points = np.asarray(points, dtype=np.float64)
        counted = np.searchsorted(self.exact, points, side="right").astype(np.float64)
        weight = self._kll_weight()
        if weight and not self.sketch.is_empty():
            counted += np.asarray(self.sketch.get_cdf(points, True))[:-1] * weight
        return counted / (weight + self.exact.size)

    def to_dict(self) -> dict:
        """Plain JSON-ready form: the exact values as base64 of little-endian float64, the KLL as base64 of
        its DataSketches serialisation (None while exact)."""
        return {"k": self.k, "stride": self.stride,
                "kll": None if self.sketch is None else _b64(self.sketch.serialize()),
                "exact": _b64(self.exact.astype("<f8").tobytes())}

    @classmethod
    def from_dict(cls, d: dict) -> QuantileSketch:
        """Inverse of to_dict (profiles from before the exact values had a KLL only)."""
        sketch = ds.kll_doubles_sketch.deserialize(_unb64(d["kll"])) if d.get("kll") else None
        exact = np.frombuffer(_unb64(d["exact"]), dtype="<f8").astype(np.float64) if d.get("exact") else None
        if sketch is None and exact is None:
            exact = np.zeros(0)
        return cls(d["k"], d["stride"], sketch, exact)


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
