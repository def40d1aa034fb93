"""The evaluator's ways of scoring points, each adding a call's losses and correct counts to its `Job`.

- `run_loop`: one point at a time, every chunk through the whole network;
- `run_stream`: chunk by chunk as a `Stream` delivers them, every point on each;
- `run_first_layer`: per chunk the first layer's K+1 outputs once, then every point's rest;
- `run_stem`: per chunk a convnet's first block from the conv's input windows (`stem`), fused;
  on the CPU compiled over groups of chunks whose windows are computed once (`run_stem_cpu`);
- `run_vmap`: blocks of points at once through `functional_call` + `vmap`.

`Compiler` keeps the compiled steps of one evaluator and falls back to eager evaluation, with
one warning, when compiling fails.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.data.inputs import count
from lmc_toolkit.landscape.evaluator.parts import FlatView, layer_output, vmap_scores
from lmc_toolkit.landscape.evaluator.precision import full_precision
from lmc_toolkit.landscape.evaluator.stem import Stem, Windows
from lmc_toolkit.training.losses import LossFn, batch_scores

#: Bytes of conv input windows the CPU's fused first block keeps for all points at once.
STEM_WINDOW_BYTES = 256 * 2**20

Chunks = list[tuple[Tensor, Tensor]]


def scores(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Summed cross-entropy (float64) of one chunk, and which of its images are right
    (bfloat16 logits scored in float32, float64 ones as they are)."""
    loss = F.cross_entropy(_scored(logits), y, reduction="sum").double()
    return loss, logits.argmax(-1) == y


def _scored(logits: Tensor) -> Tensor:
    return logits if logits.dtype == torch.float64 else logits.float()


def loss_scores(loss: str | LossFn, logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """`scores` for another loss (`training.losses`): its summed loss and the right images
    (bfloat16 outputs scored in float32, float64 ones as they are)."""
    return batch_scores(loss, _scored(logits), y)


class Compiler:
    """`torch.compile`d steps kept by key, and the eager fallback when compiling fails."""

    def __init__(self) -> None:
        self.steps: dict[str, Callable[..., Any]] = {}
        self.failed = False

    def step(self, fn: Callable[..., Any], key: str) -> Callable[..., Any]:
        if key not in self.steps:
            self.steps[key] = torch.compile(fn, dynamic=False)
        return self.steps[key]

    def run(self, run: Callable[..., Any], eager: Callable[..., Any], *args: Any) -> Any:
        """Run the compiled step; if compilation fails, warn once and continue eagerly."""
        if run is eager or self.failed:
            return eager(*args)
        try:
            return run(*args)
        except Exception as exc:  # a missing or broken compiler must not stop the analysis
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}); evaluating without it",
                RuntimeWarning,
                stacklevel=3,
            )
            self.failed = True
            return eager(*args)


@dataclass
class Job:
    """One call's points θ_p = base + Σ_k coords[p, k]·dirs[k], its data chunks and its sums."""

    params: FlatView
    buffers: FlatView
    base_vec: Tensor
    dirs: Tensor
    coords: Tensor
    buffer_rows: Tensor | None
    chunks: Chunks
    loss: Tensor
    correct: Tensor
    bar: tqdm
    #: (P, n) which images each point gets right, when the caller asked for them
    images: Tensor | None = None
    #: one chunk's summed loss and right images from its outputs (cross-entropy by default)
    score: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] = scores
    #: per point, how many of its images are scored so far (every path walks the chunks in order)
    cursor: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.cursor = [0] * self.coords.shape[0]

    @property
    def points(self) -> int:
        return self.coords.shape[0]

    def write(self, p: int) -> None:
        """Seat point p (and its buffers, when they move) in the evaluator's network."""
        torch.addmv(self.base_vec, self.dirs.T, self.coords[p], out=self.params.flat)
        if self.buffer_rows is not None:
            self.buffers.write(self.buffer_rows[p])

    def add(self, p: int, part: tuple[Tensor, Tensor]) -> None:
        """Add one chunk's summed loss and right/wrong images (a bool vector) to point p."""
        self.add_block(p, part[0], part[1][None])

    def add_block(self, start: int, loss: Tensor, right: Tensor) -> None:
        """Add one chunk's summed losses (B,) and right images (B, chunk) to points start.. ."""
        stop = start + right.shape[0]
        self.loss[start:stop] += loss
        self.correct[start:stop] += right.sum(-1)
        if self.images is not None:
            at = self.cursor[start]
            self.images[start:stop, at : at + right.shape[1]] = right
            for p in range(start, stop):
                self.cursor[p] = at + right.shape[1]

    def full_chunk(self) -> int:
        """The size of a full chunk: a shorter last chunk runs eagerly, not compiled."""
        return count(self.chunks[0][0])


def run_loop(job: Job, net: nn.Module) -> None:
    """One point at a time: write it, then score every chunk."""
    with torch.inference_mode():
        for p in range(job.points):
            job.write(p)
            for x, y in job.chunks:
                job.add(p, job.score(net(x), y))
            job.bar.update(len(job.chunks))


def run_stream(job: Job, net: nn.Module, chunks: Iterator[tuple[Any, Tensor]]) -> None:
    """Chunk by chunk as a `Stream` delivers them (read once per call): every point on each."""
    with torch.inference_mode():
        for x, y in chunks:
            for p in range(job.points):
                job.write(p)
                job.add(p, job.score(net(x), y))
            job.bar.update(job.points)


def run_first_layer(
    job: Job,
    net: nn.Module,
    split: tuple[nn.Module, nn.Module, nn.Module],
    base: Mapping[str, Tensor],
    directions: Sequence[Mapping[str, Tensor]],
    compiler: Compiler,
    compiled: bool,
) -> None:
    """Chunk by chunk: the first layer's K+1 outputs once, then every point's rest."""
    prefix, layer, rest = split
    score = job.score  # bound once: the compiled step then guards on this function, not the job
    names = {id(t): k for k, t in net.named_parameters()}
    w_name = names[id(layer.weight)]
    b_name = names[id(layer.bias)] if layer.bias is not None else None
    dtype, device = job.base_vec.dtype, job.base_vec.device

    def weights(point: Mapping[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        w = point[w_name].to(device, dtype)
        b = point[b_name].to(device, dtype) if b_name is not None else None
        return w, b

    firsts = [weights(base)] + [weights(d) for d in directions]
    ones = torch.ones(job.points, 1, dtype=dtype, device=device)
    mix = torch.cat([ones, job.coords], dim=1)  # (P, K+1): the base has coefficient 1

    def step(outs: Tensor, m: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        # one matrix-vector product over the stacked outputs: measured faster on the CPU
        # than an unrolled weighted sum fused into the next layer; in float32 also under
        # bfloat16, since it stands for the first layer's own float32 output at this point
        with full_precision(device):
            h = torch.tensordot(m, outs, dims=1)
        return score(rest(h), y)

    fast = compiler.step(step, "reuse") if compiled else step
    full = job.full_chunk()
    with torch.no_grad():
        for x, y in job.chunks:
            with full_precision(device):  # once per chunk: exact at no cost per point
                z = prefix(x)
                outs = torch.stack([layer_output(layer, z, w, b) for w, b in firsts])
            run = fast if x.shape[0] == full else step  # a short last chunk runs eagerly
            for p in range(job.points):
                job.write(p)
                job.add(p, compiler.run(run, step, outs, mix[p], y))
            job.bar.update(job.points)


def run_stem(job: Job, stem: Stem, compiler: Compiler, compiled: bool) -> None:
    """Chunk by chunk: the conv's input windows once, then every point through the fused
    first block and the rest of the network (compiled on the CPU: `run_stem_cpu`)."""
    if compiled and job.base_vec.device.type == "cpu":
        run_stem_cpu(job, stem, compiler)
        return
    score = job.score

    def eager(phases: Tensor, mean: Tensor, cov: Tensor, y: Tensor):
        return score(stem.rest(stem.forward(Windows(phases, mean, cov))), y)

    def fused(phases: Tensor, mean: Tensor, cov: Tensor, y: Tensor):
        # on a GPU the per-channel coefficients join the compiled graph (fewer launches)
        return score(stem.rest(stem.forward(Windows(phases, mean, cov), unrolled=True)), y)

    fast = compiler.step(fused, "stem") if compiled else eager
    full = job.full_chunk()
    with torch.no_grad():
        for x, y in job.chunks:
            win = stem.windows(x)
            run = fast if x.shape[0] == full else eager  # a short last chunk runs eagerly
            for p in range(job.points):
                job.write(p)
                job.add(p, compiler.run(run, eager, win.phases, win.mean, win.cov, y))
            job.bar.update(job.points)


def run_stem_cpu(job: Job, stem: Stem, compiler: Compiler) -> None:
    """The compiled fused block on the CPU, point by point over groups of chunks whose
    windows are computed once: per point one parameter write and one computation of the
    block's coefficients for the whole group (eagerly: fused into the block's kernel they
    were recomputed for every vector of pixels, which measured slower)."""
    score = job.score

    def eager(phases: Tensor, weights: Tensor, offsets: Tensor, y: Tensor):
        return score(stem.rest(stem.block(phases, weights, offsets)), y)

    def block_and_rest(phases: Tensor, weights: Tensor, offsets: Tensor, y: Tensor):
        # channels-last suits the CPU convolutions after the block
        h = stem.block_unrolled(phases, weights, offsets)
        return score(stem.rest(h.contiguous(memory_format=torch.channels_last)), y)

    step = compiler.step(block_and_rest, "stem")
    full = job.full_chunk()
    with torch.no_grad():
        for part, wins in window_groups(stem, job.chunks, STEM_WINDOW_BYTES):
            mean = torch.cat([w.mean for w in wins])
            cov = torch.cat([w.cov for w in wins])
            sizes = [x.shape[0] for x, _ in part]
            for p in range(job.points):
                job.write(p)
                weights, offsets = stem.coefficients(mean, cov)
                # taps outermost: the kernel runs channels innermost (channels-last output)
                # and so reads each tap's weights contiguously instead of gathering them
                # (measured 9% faster per point)
                taps_first = weights.transpose(1, 2).contiguous()
                for (x, y), win, w, o in zip(
                    part, wins, taps_first.split(sizes), offsets.split(sizes), strict=True
                ):
                    run = step if x.shape[0] == full else eager  # a short chunk: eagerly
                    job.add(p, compiler.run(run, eager, win.phases, w.transpose(1, 2), o, y))
                job.bar.update(len(part))


def run_vmap(job: Job, net: nn.Module, block: int) -> None:
    """Blocks of `block` points at once with `functional_call` + `vmap`."""
    with torch.inference_mode():
        for start in range(0, job.points, block):
            c = job.coords[start : start + block]
            thetas = torch.addmm(job.base_vec.expand(c.shape[0], -1), c, job.dirs)
            rows = None if job.buffer_rows is None else job.buffer_rows[start : start + block]
            for x, y in job.chunks:
                part_loss, part_right = vmap_scores(
                    net, job.params, job.buffers, thetas, rows, x, y
                )
                job.add_block(start, part_loss, part_right)
                job.bar.update(c.shape[0])


def window_groups(
    stem: Stem, chunks: Chunks, budget: int
) -> Iterator[tuple[Chunks, list[Windows]]]:
    """Consecutive chunks with their windows, grouped so that a group's windows stay within
    `budget` bytes (at least one chunk per group)."""
    part: Chunks = []
    wins: list[Windows] = []
    used = 0
    for x, y in chunks:
        win = stem.windows(x)
        size = win.phases.numel() * win.phases.element_size()
        if part and used + size > budget:
            yield part, wins
            part, wins, used = [], [], 0
        part.append((x, y))
        wins.append(win)
        used += size
    if part:
        yield part, wins
