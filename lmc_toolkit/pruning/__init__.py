"""Masks and pruning: `Mask`, magnitude and random pruning, mask comparisons, `imp` with
rewinding (distilled pruning is `imp` with a synthetic pruning set), and tickets."""

from lmc_toolkit.pruning.compare import hamming, iou, random_iou
from lmc_toolkit.pruning.imp_config import ImpConfig
from lmc_toolkit.pruning.imp_result import ImpResult, ImpRound
from lmc_toolkit.pruning.imp_rounds import combined, distilled_pruning, imp
from lmc_toolkit.pruning.mask import LayerSparsity, Mask
from lmc_toolkit.pruning.prune import SCOPES, magnitude, random
from lmc_toolkit.pruning.stored import StoredNetwork, stored_networks
from lmc_toolkit.pruning.ticket_table import TicketTable
from lmc_toolkit.pruning.tickets import evaluate_tickets, train_ticket

__all__ = [
    "SCOPES",
    "ImpConfig",
    "ImpResult",
    "ImpRound",
    "LayerSparsity",
    "Mask",
    "StoredNetwork",
    "TicketTable",
    "combined",
    "distilled_pruning",
    "evaluate_tickets",
    "hamming",
    "imp",
    "iou",
    "magnitude",
    "random",
    "random_iou",
    "stored_networks",
    "train_ticket",
]
