"""Seeded synthetic baselines and batches with documented drifts, for the quality suite and bench."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Drift sizes. Numeric: mean shift in baseline standard deviations (so normed Wasserstein ~ the
# shift). Categorical: largest change of one level's share (L-infinity). Label: change of P(y=1).
SHIFT_SD = {"large": 1.0, "moderate": 0.3, "subtle": 0.02}
PRIOR = {"large": 0.7, "moderate": 0.42, "subtle": 0.31}  # baseline P(y=1) is 0.3
CONTROLS = ["num_ctrl_0", "num_ctrl_1", "num_ctrl_2", "cat_ctrl_0", "cat_ctrl_1"]


def _levels(prefix: str, k: int) -> np.ndarray:
    return np.array([f"{prefix}{i}" for i in range(k)], dtype=object)


def _draw(rng, levels: np.ndarray, probs, n: int) -> pd.Series:
    probs = np.asarray(probs, dtype=np.float64)
    return pd.Series(levels[rng.choice(len(levels), size=n, p=probs / probs.sum())], dtype="str")


def _zipf(k: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, k + 1)
    return weights / weights.sum()


def _controls(rng, n: int) -> dict[str, object]:
    """Features no scenario touches: a report must never flag them."""
    return {
        "num_ctrl_0": rng.normal(5.0, 2.0, n),
        "num_ctrl_1": rng.exponential(1.0, n),
        "num_ctrl_2": rng.uniform(-1.0, 1.0, n),
        "cat_ctrl_0": _draw(rng, _levels("z", 20), _zipf(20), n),
        "cat_ctrl_1": _draw(rng, _levels("t", 3), [0.5, 0.3, 0.2], n),
    }


def _bernoulli(rng, logit: np.ndarray) -> np.ndarray:
    return (rng.random(logit.size) < 1 / (1 + np.exp(-logit))).astype(np.int64)


def covariate_pair(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """num_/cat_{large,moderate,subtle} move; y depends on controls only, so P(y|x) holds."""
    frames = []
    for drifted, rng in ((False, np.random.default_rng(seed)), (True, np.random.default_rng(seed + 1))):
        df = pd.DataFrame(_controls(rng, n))
        s = SHIFT_SD if drifted else dict.fromkeys(SHIFT_SD, 0.0)
        df["num_large"] = rng.normal(0, 1, n) + s["large"]
        # lognormal(0, 0.5) has std 0.604; gamma(2) has std sqrt(2).
        df["num_moderate"] = rng.lognormal(0, 0.5, n) + s["moderate"] * 0.604
        df["num_subtle"] = rng.gamma(2.0, 1.0, n) + s["subtle"] * np.sqrt(2)
        big = [0.1, 0.15, 0.15, 0.3, 0.3] if drifted else [0.4, 0.3, 0.15, 0.1, 0.05]
        df["cat_large"] = _draw(rng, _levels("a", 5), big, n)
        mid = [0.25] + [0.75 / 9] * 9 if drifted else [0.1] * 10
        df["cat_moderate"] = _draw(rng, _levels("b", 10), mid, n)
        small = [0.49, 0.31, 0.2] if drifted else [0.5, 0.3, 0.2]
        df["cat_subtle"] = _draw(rng, _levels("c", 3), small, n)
        effect = df["cat_ctrl_1"].map({"t0": 0.8, "t1": -0.4, "t2": -1.0}).to_numpy(np.float64)
        df["y"] = _bernoulli(rng, 0.6 * (df["num_ctrl_0"].to_numpy() - 5) + effect)
        frames.append(df)
    return frames[0], frames[1]


def concept_pair(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features hold; P(y|x) flips for num_large, cat_large (large), num_moderate (moderate)
    and num_subtle (subtle, 0.1 -> -0.1). Symmetric features keep P(y) at 0.5."""
    frames = []
    for sign, rng in ((1.0, np.random.default_rng(seed)), (-1.0, np.random.default_rng(seed + 1))):
        df = pd.DataFrame(_controls(rng, n))
        for name in ("num_large", "num_moderate", "num_subtle"):
            df[name] = rng.normal(0, 1, n)
        df["cat_large"] = _draw(rng, _levels("a", 4), [0.25] * 4, n)
        effect = df["cat_large"].map({"a0": 1.5, "a1": 0.5, "a2": -0.5, "a3": -1.5})
        logit = sign * (
            2.0 * df["num_large"] + 1.0 * df["num_moderate"] + 0.1 * df["num_subtle"] + effect
        )
        df["y"] = _bernoulli(rng, logit.to_numpy(np.float64))
        frames.append(df)
    return frames[0], frames[1]


def prior_pair(n: int, seed: int, size: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """P(y=1) goes from 0.3 to PRIOR[size]; P(x|y) holds for num_informative and cat_informative."""
    frames = []
    for p1, rng in ((0.3, np.random.default_rng(seed)), (PRIOR[size], np.random.default_rng(seed + 1))):
        df = pd.DataFrame(_controls(rng, n))
        y = (rng.random(n) < p1).astype(np.int64)
        df["num_informative"] = rng.normal(1.5 * y, 1.0)
        levels = _levels("i", 3)
        given0 = _draw(rng, levels, [0.6, 0.3, 0.1], n)
        given1 = _draw(rng, levels, [0.1, 0.3, 0.6], n)
        df["cat_informative"] = given0.where(y == 0, given1)
        df["y"] = y
        frames.append(df)
    return frames[0], frames[1]


def dataset_pair(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both at once: num_large moves by 1 sd (y ignores it) and P(y | num_concept) flips."""
    frames = []
    for drifted, rng in ((False, np.random.default_rng(seed)), (True, np.random.default_rng(seed + 1))):
        df = pd.DataFrame(_controls(rng, n))
        df["num_large"] = rng.normal(1.0 if drifted else 0.0, 1.0, n)
        df["num_concept"] = rng.normal(0, 1, n)
        df["y"] = _bernoulli(rng, (-2.0 if drifted else 2.0) * df["num_concept"].to_numpy())
        frames.append(df)
    return frames[0], frames[1]


# Bench shapes: ten numeric columns of varied shape, ten string columns with 3 to 50 levels.
_CAT_LEVELS = [3, 4, 5, 7, 10, 12, 20, 25, 40, 50]


def bench_frame(n: int, seed: int, *, drift: bool = False) -> pd.DataFrame:
    """The bench's 20-feature frame with a binary label; drift moves two numbers and one category."""
    rng = np.random.default_rng(seed)
    shift = 0.5 if drift else 0.0
    cols: dict[str, object] = {
        "n_normal": rng.normal(shift, 1, n),
        "n_lognormal": rng.lognormal(0, 1, n),
        "n_exponential": rng.exponential(1.0 + shift, n),
        "n_uniform": rng.uniform(0, 1, n),
        "n_student": rng.standard_t(3, n),
        "n_bimodal": np.where(rng.random(n) < 0.5, rng.normal(-2, 1, n), rng.normal(2, 1, n)),
        "n_integer": rng.poisson(4, n).astype(np.float64),
        "n_gamma": rng.gamma(0.5, 2.0, n),
        "n_beta": rng.beta(2, 5, n),
        "n_with_nan": np.where(rng.random(n) < 0.05, np.nan, rng.normal(10, 3, n)),
    }
    for i, k in enumerate(_CAT_LEVELS):
        probs = _zipf(k)
        if drift and i == 0:
            probs = probs[::-1]
        cols[f"c_{k}_levels"] = _draw(rng, _levels(f"v{i}_", k), probs, n)
    df = pd.DataFrame(cols)
    logit = 0.8 * cols["n_normal"] - 0.5 * (cols["n_uniform"] - 0.5) * 4
    df["label"] = np.where(_bernoulli(rng, logit) == 1, "yes", "no")
    return df


# Calibration (issue 12): undrifted laws of every shape the checks meet, and two subtle shifts.
_ZIPF25 = _zipf(25)
# The moved 25-level law: the top share loses 0.036 (L-infinity 0.036), the others gain in proportion (< 0.007 each).
ZIPF25_TOP_MOVE = 0.036
_ZIPF25_MOVED = np.concatenate([[_ZIPF25[0] - ZIPF25_TOP_MOVE],
                                _ZIPF25[1:] * (1 - _ZIPF25[0] + ZIPF25_TOP_MOVE) / (1 - _ZIPF25[0])])
# Poisson(4) -> Poisson(4.17): W1 is the mean's move, the std is 2, so the normed Wasserstein distance is 0.085.
COUNT_MEAN, COUNT_MOVE = 4.0, 0.17


def _categories(levels: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, levels)


def calibration_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """One column per law (continuous, heavy-tailed, counts with ties, few values, rare outliers, boolean, 3, 25
    and 1,000 levels, unique ids, 10% missing) and a label that depends on two of them; two draws of it are two
    samples of one law, so every anomaly between them is a false alarm."""
    normal = rng.normal(0, 1, n)
    three = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    df = pd.DataFrame({
        "normal": normal,
        "lognormal": rng.lognormal(0, 1, n),
        "exponential": rng.exponential(1.0, n),
        "uniform": rng.uniform(0, 1, n),
        "poisson": rng.poisson(3, n),
        "bimodal": np.where(rng.random(n) < 0.5, rng.normal(-2, 1, n), rng.normal(2, 1, n)),
        "int_0_4": rng.integers(0, 5, n),
        "rare_outliers": np.where(rng.random(n) < 0.005, rng.normal(50, 10, n), 0.0),
        "boolean": rng.random(n) < 0.3,
        "cat_3": _categories(_levels("a", 3), three),
        "zipf_25": _categories(_levels("z", 25), rng.choice(25, n, p=_ZIPF25)),
        "levels_1000": _categories(_levels("v", 1000), rng.integers(0, 1000, n)),
        "ids": pd.Series(rng.integers(0, 2**62, n)).map("id{:x}".format),
        "missing_10pct": np.where(rng.random(n) < 0.1, np.nan, rng.normal(10, 3, n)),
    })
    logit = 0.8 * normal + np.array([0.5, -0.3, -1.0])[three]
    df["label"] = np.where(_bernoulli(rng, logit) == 1, "yes", "no")
    return df


def subtle_shift_frame(rng: np.random.Generator, n: int, moved: bool) -> pd.DataFrame:
    """Issue 12's two subtle shifts, moved in the batch only (`moved`), each beside an undrifted twin: a Poisson
    count by 0.085 std of Wasserstein, a 25-level Zipf categorical whose top share moves by 0.036."""
    return pd.DataFrame({
        "count_moved": rng.poisson(COUNT_MEAN + (COUNT_MOVE if moved else 0.0), n),
        "count_control": rng.poisson(COUNT_MEAN, n),
        "zipf_moved": _categories(_levels("z", 25), rng.choice(25, n, p=_ZIPF25_MOVED if moved else _ZIPF25)),
        "zipf_control": _categories(_levels("z", 25), rng.choice(25, n, p=_ZIPF25)),
    })
