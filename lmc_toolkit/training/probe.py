"""A model checked against its data when a function is called, not deep inside the first
product: registry models by their recorded input shape, any other model by one forward pass
on two examples, whose failure names the layer that raised and the shapes it got."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lmc_toolkit.data.dataset import Dataset
from lmc_toolkit.data.inputs import Inputs, count, describe, move, take
from lmc_toolkit.data.stream import Stream
from lmc_toolkit.models import ModelSpec, check_input


def check_model_input(model: nn.Module, data: Dataset | Stream, what: str = "data") -> None:
    """Raise a clear error, before any work, when `model` cannot take `data`'s inputs or
    give outputs its targets can be scored against."""
    spec = getattr(model, "spec", None)
    if isinstance(spec, ModelSpec):
        if isinstance(data.in_shape, dict):
            raise TypeError(
                f"the {spec.name} model takes one input tensor; {what} holds a dict of "
                f"inputs {data.in_shape}"
            )
        check_input(model, data.in_shape, what)
        return
    if isinstance(data, Stream):
        data = data.head()  # one batch read, not a pass
    x, y = take(data.x, slice(0, 2)), data.y[:2]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    out = _forward(model, move(x, device), what)
    if not isinstance(out, Tensor):
        raise TypeError(
            f"the model's forward on {what} returned {type(out).__name__}; the toolkit scores "
            f"a tensor of outputs (N×classes logits or N×… regression values)"
        )
    if len(out) != count(x):
        raise ValueError(
            f"the model turned {count(x)} inputs of {what} ({describe(x)}) into "
            f"{len(out)} outputs (shape {tuple(out.shape)}): a missing flatten or a reshape "
            f"that merges the batch?"
        )
    if data.regression:
        if out.numel() != y.numel():
            raise ValueError(
                f"the model's outputs {tuple(out.shape)} do not match {what}'s regression "
                f"targets {tuple(y.shape)}"
            )
    elif out.dim() != 2 or out.shape[1] < data.num_classes:
        raise ValueError(
            f"the model's outputs on {what} have shape {tuple(out.shape)}; class labels need "
            f"N×classes logits with at least {data.num_classes} classes"
        )


def _forward(model: nn.Module, x: Inputs, what: str) -> Any:
    """`model(x)` in eval mode, no gradient, the model left as it was; an error re-raised with
    the innermost layer that was running and the shape of its input."""
    running: list[tuple[str, nn.Module, tuple[Any, ...]]] = []

    def enter(name: str):
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            running.append((name, module, args))

        return hook

    def leave(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if running and running[-1][1] is module:
            running.pop()

    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        if not running:
            raise type(exc)(f"the model fails on {what}'s inputs {describe(x)}: {exc}") from exc
        name, module, args = running[-1]
        shapes = [tuple(a.shape) for a in args if isinstance(a, Tensor)]
        raise type(exc)(
            f"the model fails on {what} at layer {name!r} ({type(module).__name__}), given "
            f"input of shape {shapes[0] if len(shapes) == 1 else shapes} (the data's inputs "
            f"are {describe(x)}): {exc}"
        ) from exc
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
