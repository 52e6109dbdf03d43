"""Loaders of the real crowd label sets under tests/data/crowd/ (sources in its README.md)."""

import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

CROWD = Path(__file__).resolve().parents[2] / "data" / "crowd"
SETS = ("rte", "temp", "wsd", "bluebirds", "dog", "face", "product")
# Sets whose classes are numbers in a meaningful order (word senses 1-3, breeds 0-3 and
# sentiments 0-3 are not truly ordered, but their numeric codes make a fair check of the maths).
NUMERIC_SETS = ("wsd", "dog", "face")


@dataclass(frozen=True)
class CrowdSet:
    """One set as a long frame (item, worker, label) and its gold label per item."""

    name: str
    frame: pd.DataFrame
    gold: dict


@functools.cache
def load(name: str) -> CrowdSet:
    if name in ("rte", "temp", "wsd"):
        raw = pd.read_csv(CROWD / "snow2008" / f"{name}.standardized.tsv", sep="\t")
        frame = raw.rename(columns={"orig_id": "item", "!amt_worker_ids": "worker", "response": "label"})
        gold = raw.groupby("orig_id")["gold"].first().to_dict()
    elif name == "bluebirds":
        labels = yaml.safe_load((CROWD / "bluebirds" / "labels.yaml").read_text())
        frame = pd.DataFrame([(item, worker, value) for worker, answers in labels.items()
                              for item, value in answers.items()], columns=["item", "worker", "label"])
        gold = yaml.safe_load((CROWD / "bluebirds" / "gt.yaml").read_text())
    else:
        folder = CROWD / f"zheng2017_{name}"
        frame = pd.read_csv(folder / "answer.csv").rename(columns={"question": "item", "answer": "label"})
        truth = pd.read_csv(folder / "truth.csv")
        gold = dict(zip(truth["question"], truth["truth"]))
    return CrowdSet(name, frame[["item", "worker", "label"]].reset_index(drop=True), gold)


@pytest.fixture(scope="session")
def crowd():
    """crowd(name) -> CrowdSet, each file read once per session."""
    return load


@pytest.fixture(params=SETS)
def crowd_set(request) -> CrowdSet:
    """Each of the seven sets in turn."""
    return load(request.param)


@pytest.fixture(params=NUMERIC_SETS)
def numeric_set(request) -> CrowdSet:
    """Each set whose classes are numeric codes, in turn."""
    return load(request.param)
