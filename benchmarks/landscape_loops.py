"""The baselines of `benchmarks/landscape.py`: what a user would write instead of the toolkit.

- `naive_loop`: write each point's weights into the model, then score the data in chunks
  (the chunk size is the user's one real choice; every size of `CHUNKS` is timed);
- `loss_landscapes_plane`: loss-landscapes' `random_plane` with a metric that scores its data
  in chunks (`ChunkedLoss`, a `Metric` subclass: the extension point its API offers);
- `conv_floor`: the floor under any such loop, the time of the network's convolutions alone
  on their real inputs, at the fastest chunk size and memory layout.

`interleave` times several ways round-robin, so that a change of machine load hits all alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

CHUNKS = (100, 250, 500, 1000)


class _Stop(Exception):
    """Raised by the recording metric to end loss-landscapes' walk after enough points."""


def naive_loop(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    base: Sequence[torch.Tensor],
    dirs: Sequence[Sequence[torch.Tensor]],
    coords: Sequence[Sequence[float]],
    chunk: int,
    autocast: bool = False,
) -> dict[str, Any]:
    """Per point: θ = base + Σ c_k·dirs[k] written parameter by parameter, then the data in
    chunks of `chunk` (bfloat16 autocast with `autocast`). Returns mean losses, accuracies and
    every image's predicted class."""
    params = list(model.parameters())
    losses, accuracy, predictions = [], [], []
    start = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        for c in coords:
            for i, p in enumerate(params):
                p.copy_(base[i] + sum(float(ck) * d[i] for ck, d in zip(c, dirs, strict=True)))
            total, guesses = 0.0, []
            for s in range(0, len(x), chunk):
                logits = model(x[s : s + chunk]).float()
                total += float(F.cross_entropy(logits, y[s : s + chunk], reduction="sum"))
                guesses.append(logits.argmax(-1))
            guess = torch.cat(guesses)
            losses.append(total / len(x))
            accuracy.append(float((guess == y).double().mean()))
            predictions.append(guess)
    for p, b in zip(params, base, strict=True):
        p.data.copy_(b)
    seconds = time.perf_counter() - start
    return {
        "losses": np.array(losses),
        "accuracy": np.array(accuracy),
        "predictions": torch.stack(predictions),
        "per_point": seconds / len(coords),
    }


def chunked_loss(x: torch.Tensor, y: torch.Tensor, chunk: int):
    """A loss-landscapes `Metric`: the mean cross-entropy over `x` scored `chunk` at a time."""
    from loss_landscapes.metrics import Metric

    class ChunkedLoss(Metric):
        def __call__(self, model_wrapper) -> float:
            total = 0.0
            for s in range(0, len(x), chunk):
                out = model_wrapper.forward(x[s : s + chunk])
                total += float(F.cross_entropy(out, y[s : s + chunk], reduction="sum"))
            return total / len(x)

    return ChunkedLoss()


def loss_landscapes_plane(model, x, y, steps: int, limit: int, seed: int, chunk: int):
    """Run `random_plane` (one chunked loss per point) for its first `limit` points,
    recording each point's weights and value."""
    import loss_landscapes
    from loss_landscapes.metrics import Metric

    inner = chunked_loss(x, y, chunk)
    seen: list[tuple[torch.Tensor, float]] = []

    class Recording(Metric):
        def __call__(self, wrapper):
            if len(seen) >= limit:
                raise _Stop
            value = inner(wrapper)
            flat = torch.cat([p.detach().reshape(-1) for p in wrapper.get_module_parameters()])
            seen.append((flat.clone(), value))
            return value

    torch.manual_seed(seed)  # loss-landscapes draws its directions from the global RNG
    start = time.perf_counter()
    try:
        with torch.no_grad():
            loss_landscapes.random_plane(
                model, Recording(), distance=1, steps=steps, normalization="filter",
                deepcopy_model=True,
            )  # fmt: skip
    except _Stop:
        pass
    seconds = time.perf_counter() - start
    return {"points": seen, "per_point": seconds / len(seen)}


def walk_coords(steps: int, count: int) -> list[tuple[int, int]]:
    """(column i, row offset) of loss-landscapes' first `count` evaluations: even columns go
    up through offsets 1..steps, odd ones down through steps-1..0."""
    out = []
    for i in range(steps):
        offsets = range(1, steps + 1) if i % 2 == 0 else range(steps - 1, -1, -1)
        out += [(i, o) for o in offsets]
    return out[:count]


def conv_inputs(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[torch.nn.Conv2d, Any]]:
    """Every convolution of `model` with the input it receives on `x`."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    seen: list[torch.Tensor] = []
    hooks = [c.register_forward_hook(lambda m, i, o: seen.append(i[0].detach())) for c in convs]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return list(zip(convs, seen, strict=True))


def conv_floor(
    pairs: Sequence[tuple[torch.nn.Conv2d, torch.Tensor]],
    chunk: int,
    channels_last: bool,
    points: int,
    skip_first: bool = False,
) -> float:
    """Seconds per point of the convolutions alone (float32) on their recorded inputs, in chunks
    of `chunk`; `skip_first` leaves out the first one (the toolkit never runs it as such)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    work = []
    for conv, z in pairs[1:] if skip_first else pairs:
        w = conv.weight.detach().contiguous(memory_format=layout)
        chunks = [
            z[s : s + chunk].contiguous(memory_format=layout) for s in range(0, len(z), chunk)
        ]
        work.append((conv, w, chunks))
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(points):
            for conv, w, chunks in work:
                for part in chunks:
                    F.conv2d(part, w, conv.bias, conv.stride, conv.padding, conv.dilation)
    return (time.perf_counter() - start) / points


def interleave(ways: dict[str, Callable[[], float]], rounds: int) -> dict[str, dict[str, Any]]:
    """Each way's seconds per point over `rounds` round-robin runs: median and all samples."""
    samples: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(rounds):
        for name, way in ways.items():
            samples[name].append(way())
        print(
            f"round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in samples.items()),
            flush=True,
        )
    return {k: {"median": statistics.median(v), "samples": v} for k, v in samples.items()}
