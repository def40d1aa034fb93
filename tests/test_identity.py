"""Store-key fingerprints of tensors: scalar buffers (BatchNorm's step counter) included."""

from __future__ import annotations

import torch
from torch import nn

from lmc_toolkit.training.identity import tensors_fingerprint


def test_fingerprints_cover_scalar_tensors_and_tell_values_apart():
    bn = nn.BatchNorm2d(3)
    state = dict(bn.state_dict())
    assert state["num_batches_tracked"].dim() == 0  # the 0-d long that broke F3 on a ResNet
    before = tensors_fingerprint(state)
    state["num_batches_tracked"] = torch.tensor(7)
    assert tensors_fingerprint(state) != before
    # a tensor's bytes, not its view: a 1-d copy of the same values hashes as before
    w = torch.arange(6.0).reshape(2, 3)
    assert tensors_fingerprint({"w": w}) == tensors_fingerprint({"w": w.t().contiguous().t()})
    assert tensors_fingerprint({"w": w}) != tensors_fingerprint({"w": w.reshape(3, 2)})
