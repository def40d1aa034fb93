"""Names for store keys: fingerprints of datasets and model states, and a model's identity.

Runs that depend on data or on a network's initialization (IMP rounds, trained tickets) name
them by content: a dataset by a hash of its tensors, a model by its builder spec plus a hash of
its state, so two calls with equal inputs find the same stored result and different inputs
never collide.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.inputs import leaves
from lmc_toolkit.models import ModelSpec


def data_fingerprint(data: Dataset) -> str:
    """A 16-hex hash of a dataset's images, labels and class names: equal data, equal
    fingerprint (it names the data in store keys)."""
    h = hashlib.sha256()
    for t in (*leaves(data.x).values(), data.y):
        t = t.detach().cpu().contiguous()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    h.update(json.dumps(list(data.classes)).encode())
    return h.hexdigest()[:16]


def tensors_fingerprint(tensors: Mapping[str, Any] | None) -> str:
    """A short hash of names, shapes, dtypes and values: equal tensors, equal fingerprints."""
    if tensors is None:
        return ""
    h = hashlib.sha256()
    flat: dict[str, Any] = {}
    for k, v in tensors.items():  # dict inputs (`data.inputs`) count by their leaves
        flat.update(leaves(v, k) if isinstance(v, Mapping) else {k: v})
    for k in sorted(flat):
        v = torch.as_tensor(flat[k]).detach().cpu().contiguous()
        h.update(f"{k}|{tuple(v.shape)}|{v.dtype}|".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()[:16]


def state_hash(model: nn.Module | Mapping[str, Tensor]) -> str:
    """A 16-hex hash of a model's full state (parameters and buffers), in key order."""
    state = model.state_dict() if isinstance(model, nn.Module) else model
    h = hashlib.sha256()
    for k, v in state.items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class NetworkKey:
    """The fields naming a network in store keys (`model_identity` gives them): its builder name
    and options, its init seed and a hash of its initial weights. Run keys that start from a
    network (IMP runs, trained tickets) extend it."""

    model: str = ""
    model_options: tuple[tuple[str, Any], ...] = ()
    init_seed: int | None = None
    init_hash: str = ""


def model_identity(model: nn.Module) -> dict[str, Any]:
    """The fields naming a model in store keys: its builder name and options, init seed and a
    hash of its weights."""
    spec = getattr(model, "spec", None)
    if isinstance(spec, ModelSpec):
        name, options, seed = spec.name, spec.options, spec.init_seed
    else:
        name, options, seed = type(model).__name__, (), None
    return {
        "model": name,
        "model_options": tuple(options),
        "init_seed": seed,
        "init_hash": state_hash(model),
    }


def with_init_seed(model: nn.Module, init_seed: int | None) -> nn.Module:
    """`model` itself, or (with `init_seed`) the same architecture rebuilt from that seed."""
    if init_seed is None:
        return model
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise ValueError(
            "init_seed needs a model made by lmc_toolkit.build (it has no .spec); pass "
            "init_seed=None to use the model's own weights"
        )
    device = next((p.device for p in model.parameters()), None)
    return replace(spec, init_seed=int(init_seed)).build(device)
