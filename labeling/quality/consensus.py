"""Consensus labels: majority vote with a stated tie rule, and Dawid-Skene's EM over rater confusions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .matrix import LabelMatrix, item_votes, rater_label_incidence

TIE_RULES = ("none", "first", "random")


@dataclass
class MajorityResult:
    """Per item: the winning class (-1: no label, or a tie under tie="none"), its vote share,
    whether the top count was shared, and the vote counts (n_items x K)."""

    labels: np.ndarray
    share: np.ndarray
    tie: np.ndarray
    votes: np.ndarray


def majority_vote(m: LabelMatrix, *, tie: str = "none", rng=None) -> MajorityResult:
    """The class with the most labels per item.

    tie="none": a tied item gets -1 (tie=True says why); "first": the tied class that comes
    first in `m.classes`; "random": a uniform choice among the tied classes from `rng` (a
    numpy Generator or a seed). `share` is top votes / all votes (NaN for an unlabelled item).
    """
    if tie not in TIE_RULES:
        raise ValueError(f"tie must be one of {TIE_RULES}, not {tie!r}")
    votes = item_votes(m)
    total = votes.sum(axis=1)
    top = votes.max(axis=1, initial=0)
    is_top = (votes == top[:, None]) & (top[:, None] > 0)
    tied = is_top.sum(axis=1) > 1
    if tie == "random":
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        # A random key per class, -1 off the top: argmax is then uniform among the tied classes.
        keys = np.where(is_top, rng.random(votes.shape), -1.0)
        labels = keys.argmax(axis=1) if m.n_classes else np.zeros(m.n_items, dtype=np.int64)
    else:
        labels = is_top.argmax(axis=1) if m.n_classes else np.zeros(m.n_items, dtype=np.int64)
        if tie == "none":
            labels = np.where(tied, -1, labels)
    labels = np.where(total > 0, labels, -1).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, top / total, np.nan)
    return MajorityResult(labels=labels, share=share, tie=tied, votes=votes)


@dataclass
class DawidSkeneResult:
    """Dawid-Skene's fit: labels = argmax of the posteriors (first class on a tie); confusion
    [r, true, given] rows sum to 1; log_likelihood is log P(observed labels) at the fit."""

    labels: np.ndarray
    posteriors: np.ndarray
    confusion: np.ndarray
    priors: np.ndarray
    iterations: int
    converged: bool
    log_likelihood: float

    @property
    def confidence(self) -> np.ndarray:
        """The posterior probability of each item's chosen label."""
        return self.posteriors.max(axis=1)


def _clamp(posteriors: np.ndarray, gold_items: np.ndarray, gold_classes: np.ndarray) -> None:
    """Set the gold items' columns of class-major posteriors (K x n_items) to one-hot."""
    posteriors[:, gold_items] = 0.0
    posteriors[gold_classes, gold_items] = 1.0


def _gold_arrays(gold, m: LabelMatrix) -> tuple[np.ndarray, np.ndarray]:
    if not gold:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    items = np.fromiter(gold.keys(), dtype=np.int64, count=len(gold))
    classes = np.fromiter(gold.values(), dtype=np.int64, count=len(gold))
    if ((items < 0) | (items >= m.n_items)).any() or ((classes < 0) | (classes >= m.n_classes)).any():
        raise ValueError("gold maps item indices to class indices of the matrix")
    return items, classes


def dawid_skene(m: LabelMatrix, *, tol: float = 1e-6, max_iter: int = 100, gold=None, init="majority",
                smoothing: float = 0.01) -> DawidSkeneResult:
    """Dawid and Skene (1979): each rater r has a confusion matrix pi_r[true, given]; EM finds
    them, the class priors and each item's posterior over its true class.

    Start: the posteriors are the items' vote shares (init="majority"), or an n_items x K array.
    M-step: priors and confusion rows from the posteriors, each with `smoothing` added as a
    pseudo-count per cell. E-step, in log space: log p(true=k | labels) = log prior_k +
    sum over the item's labels of log pi_r[k, given] - normaliser. `gold` ({item index: class
    index}) clamps those items' posteriors to one-hot after every E-step. Stops when no
    posterior moved by more than `tol` between two E-steps (converged=True), or at `max_iter`.
    An item with no label keeps the priors as its posteriors.
    Both steps are whole-array operations (a sparse product, K bincounts), no loop over labels.
    """
    if smoothing < 0 or tol < 0 or max_iter < 0:
        raise ValueError("smoothing, tol and max_iter cannot be negative")
    k = m.n_classes
    gold_items, gold_classes = _gold_arrays(gold, m)
    if k == 0:  # no label at all: nothing to estimate
        return DawidSkeneResult(labels=np.full(m.n_items, -1, dtype=np.int64), posteriors=np.zeros((m.n_items, 0)),
                                confusion=np.zeros((m.n_raters, 0, 0)), priors=np.zeros(0), iterations=0,
                                converged=True, log_likelihood=0.0)
    # Labels in item order: the posteriors per label are then each item's, repeated per label.
    order = np.argsort(m.items, kind="stable")
    per_item = np.bincount(m.items, minlength=m.n_items)
    cells = (m.raters[order].astype(np.intp) * k + m.labels[order])
    incidence = rater_label_incidence(m)
    if isinstance(init, str):
        if init != "majority":
            raise ValueError(f"init must be 'majority' or an array, not {init!r}")
        votes = item_votes(m).T.astype(np.float64)
        total = votes.sum(axis=0)
        posteriors = np.divide(votes, total, out=np.full_like(votes, 1.0 / k), where=total > 0)
    else:
        posteriors = np.array(init, dtype=np.float64)
        if posteriors.shape != (m.n_items, k):
            raise ValueError(f"init must have shape {(m.n_items, k)}, not {posteriors.shape}")
        posteriors = np.ascontiguousarray(posteriors.T)
    _clamp(posteriors, gold_items, gold_classes)

    converged, iterations, log_likelihood = False, 0, float("nan")
    priors = confusion = None
    for iterations in range(1, max_iter + 1):
        priors, confusion = _m_step(posteriors, per_item, cells, m.n_raters, smoothing)
        joint = _log_joint(incidence, priors, confusion)
        # Normalise from the column maximum so exp never underflows a whole item to 0.
        top = joint.max(axis=0)
        new = np.subtract(joint, top)
        np.exp(new, out=new)
        total = new.sum(axis=0)
        new /= total
        _clamp(new, gold_items, gold_classes)
        change = float(np.abs(new - posteriors).max()) if new.size else 0.0
        posteriors = new
        converged = change < tol
        if converged or iterations == max_iter:
            # Only the last one is reported, and log is dear on large sets: compute it once.
            # A gold item's truth is known: its term is log P(labels, true=gold), not the marginal.
            marginal = top + np.log(total)
            marginal[gold_items] = joint[gold_classes, gold_items]
            log_likelihood = float(marginal.sum())
            break
    if priors is None:  # max_iter = 0: report the parameters of the starting posteriors
        priors, confusion = _m_step(posteriors, per_item, cells, m.n_raters, smoothing)
    return DawidSkeneResult(labels=posteriors.argmax(axis=0),
                            posteriors=np.ascontiguousarray(posteriors.T), confusion=confusion, priors=priors,
                            iterations=iterations, converged=converged, log_likelihood=log_likelihood)


def _m_step(posteriors: np.ndarray, per_item: np.ndarray, cells: np.ndarray, n_raters: int, smoothing: float):
    """Priors (K) and confusion (n_raters x K true x K given) from class-major posteriors.

    counts[r, k, l] = sum of P(item's truth = k) over the labels where rater r gave l: one
    bincount per true class over the (rater, given) cells, each a scatter into a small array.
    """
    k = posteriors.shape[0]
    priors = posteriors.sum(axis=1) + smoothing
    priors /= priors.sum()
    counts = np.stack([np.bincount(cells, weights=np.repeat(posteriors[true], per_item), minlength=n_raters * k)
                       for true in range(k)], axis=1)
    # Rows (rater * K + given) x columns true, to [rater, true, given].
    counts = counts.reshape(n_raters, k, k).transpose(0, 2, 1) + smoothing
    rows = counts.sum(axis=2, keepdims=True)
    confusion = np.divide(counts, rows, out=np.full_like(counts, 1.0 / k), where=rows > 0)
    return priors, confusion


def _log_joint(incidence, priors: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """log P(true = k, item's labels), class-major (K x n_items)."""
    k = len(priors)
    # Zero probabilities only arise with smoothing=0: floor them so one label cannot make -inf.
    log_confusion = np.log(np.maximum(confusion, 1e-300)).transpose(0, 2, 1).reshape(-1, k)
    joint = np.ascontiguousarray(np.asarray(incidence @ log_confusion).T)
    joint += np.log(np.maximum(priors, 1e-300))[:, None]
    return joint


def rater_accuracy(result: DawidSkeneResult, m: LabelMatrix) -> np.ndarray:
    """Per rater, the expected share of their labels that are right under the model.

    The mean over the rater's labels of the posterior that the item's true class is the class
    given. With smoothing 0 it equals sum_k w_rk pi_r[k, k], the diagonal of the rater's
    confusion weighted by the posterior class mix w_r of the items they labelled. NaN for a
    rater with no label.
    """
    right = result.posteriors[m.items, m.labels]
    sums = np.bincount(m.raters, weights=right, minlength=m.n_raters)
    counts = np.bincount(m.raters, minlength=m.n_raters)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)
