"""What the subcommands read from outside the store: named data under `--data-root`, and
networks from `--checkpoint` files (a state dict, or a whole saved model) instead of training."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from lmc_toolkit.cli.arguments import existing_file, existing_folder


def add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-root",
        type=existing_folder,
        default=None,
        help="folder of the torchvision files or ImageNet class folders (cifar10, cifar100, "
        "mnist-full, imagenet10/100; mnist, digits and fashion-mnist need none)",
    )


def add_checkpoints(p: argparse.ArgumentParser, count: str) -> None:
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        type=existing_file,
        metavar="FILE",
        help=f"use {count} instead of training: a state dict (of --model with its --option, "
        "for --data's shapes) or, with --trust-checkpoint, a whole saved model",
    )
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow a checkpoint that is a whole pickled model (runs the file's code: only "
        "for files you made or trust)",
    )


def read_data(name: str, split: str, root: str | None) -> Any:
    """Dataset `name`'s `split` under `root`, in memory (`data.sources.load_in_memory`)."""
    from lmc_toolkit.data.sources import load_in_memory

    return load_in_memory(name, split, root)


def read_checkpoint(path: str, args: argparse.Namespace, data: Any, device: Any = None):
    """The network in checkpoint `path`, on `device`: a state dict loaded into `--model`
    (built with `--option` for `data`'s input shape and classes), or a whole saved model when
    `--trust-checkpoint` allows unpickling it."""
    import pickle

    import torch
    from torch import nn

    from lmc_toolkit.models import build

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not args.trust_checkpoint:
            raise ValueError(
                f"--checkpoint {path} holds pickled objects (a whole saved model?), which "
                f"run code when loaded: pass --trust-checkpoint if you made or trust it, or "
                f"save its state_dict() instead"
            ) from exc
        payload = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(payload, nn.Module):
        return payload.to(device or "cpu").eval()
    state = _state_dict_of(payload, path)
    model = build(
        args.model,
        data.num_classes,
        data.image_shape,
        0,
        device or "cpu",
        **dict(args.option),
    )
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} (the model's: {tuple(v.shape)})"
        for k, v in own.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or extra or wrong:
        raise ValueError(
            f"--checkpoint {path} does not fit --model {args.model} "
            f"{dict(args.option) or ''} for {data.name}: "
            + "; ".join(
                part
                for part in (
                    f"missing {missing[:4]}" if missing else "",
                    f"unexpected {extra[:4]}" if extra else "",
                    f"shapes differ: {wrong[:3]}" if wrong else "",
                )
                if part
            )
            + " (pick the --model and --option it was trained with)"
        )
    model.load_state_dict(state)
    return model.eval()


def _state_dict_of(payload: Any, path: str) -> Mapping[str, Any]:
    """The tensors of a checkpoint: a plain state dict, or one under a usual key ("state",
    the toolkit's; "state_dict", Lightning's; "model", "model_state_dict")."""
    import torch

    if isinstance(payload, Mapping):
        for key in ("state", "state_dict", "model_state_dict", "model"):
            inner = payload.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                return inner
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            return payload
    raise ValueError(
        f"--checkpoint {path} is neither a state dict (name -> tensor) nor a saved model; "
        f"got {type(payload).__name__}"
        + (f" with keys {sorted(payload)[:6]}" if isinstance(payload, Mapping) else "")
    )
