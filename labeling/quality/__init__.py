"""Label quality maths (agreement, consensus, bias): numpy and scipy only, never Django."""

from .agreement import (
    PairKappa,
    cohen_kappa_pairs,
    fleiss_kappa,
    krippendorff_alpha,
    krippendorff_alpha_bootstrap,
    multilabel_alpha,
    observed_agreement,
)
from .bias import BiasTest, agreement_with, confused_pairs, label_distribution_bias
from .consensus import DawidSkeneResult, MajorityResult, dawid_skene, majority_vote, rater_accuracy
from .matrix import LabelMatrix, encode, item_votes

__all__ = [
    "BiasTest",
    "DawidSkeneResult",
    "LabelMatrix",
    "MajorityResult",
    "PairKappa",
    "agreement_with",
    "cohen_kappa_pairs",
    "confused_pairs",
    "dawid_skene",
    "encode",
    "fleiss_kappa",
    "item_votes",
    "krippendorff_alpha",
    "krippendorff_alpha_bootstrap",
    "label_distribution_bias",
    "majority_vote",
    "multilabel_alpha",
    "observed_agreement",
    "rater_accuracy",
]
