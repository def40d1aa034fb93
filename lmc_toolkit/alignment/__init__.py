"""Permutation alignment of hidden units: which axes share a permutation (`permutation_spec`,
traced from the model), `permute` for weights, buffers and masks, `random_permutation`, and the
two ways of finding the permutation that takes one network onto another: Ainsworth et al.'s
`weight_matching` and `activation_matching`; and REPAIR's renormalization of an interpolated
network (`repair`)."""

from lmc_toolkit.alignment.activation_matching import activation_matching
from lmc_toolkit.alignment.permute import Permutation, permute, random_permutation
from lmc_toolkit.alignment.repair import repair
from lmc_toolkit.alignment.result import Alignment
from lmc_toolkit.alignment.spec import PermutationSpec, permutation_spec
from lmc_toolkit.alignment.weight_matching import weight_matching

__all__ = [
    "Alignment",
    "Permutation",
    "PermutationSpec",
    "activation_matching",
    "permutation_spec",
    "permute",
    "random_permutation",
    "repair",
    "weight_matching",
]
