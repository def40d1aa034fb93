"""One evaluator of many parameter points: loss and accuracy of θ_p = base + Σ_k c_pk·d_k.

Interpolation curves, lines and planes are all sets of points in a low-dimensional affine
subspace of weight space, so they share this one evaluator. Speed comes from removing the
per-point overhead and work whose result is never needed:

- one private copy of the model whose parameters are views into a single flat vector, so a
  point is written with one `addmv` (no state-dict copies, no Python loop over parameters);
- inference mode and cache-sized data chunks on the CPU (about 100 images);
- a convnet's first block (conv → norm → activation → 2×2 pooling) runs as one fused kernel
  from the conv's input windows, its normalization statistics taken from per-image moments of
  those windows, so its large output is never written (`fuse_stem`, see `landscape.evaluator.stem`);
- otherwise, when compiling, the first layer's output is linear in the coordinates,
  W(c)·x = W0·x + Σ c_k·D_k·x, so it is computed K+1 times per data chunk instead of once per
  point (`reuse_first_layer`);
- `torch.compile` of the rest of the network where the grid is large enough to pay for it;
- on a GPU, blocks of points evaluated together with `functional_call` + `vmap`, the block size
  taken from a memory budget, for networks without convolutions (vmapped convolutions become
  grouped ones, which measured slower than a loop on an H200);
- opt-in, `precision="bfloat16"`: convolutions and products in bfloat16 where the hardware runs
  it natively (`landscape.evaluator.precision`), the loss still accumulated in float32.

At float32 every path gives the same numbers to float tolerance. The caller's model is never changed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lmc_toolkit.data.dataset import Dataset, check_batch_size
from lmc_toolkit.data.entrance import DataLike, as_data, as_dataset
from lmc_toolkit.data.inputs import describe, is_dict, move, take
from lmc_toolkit.data.stream import Stream
from lmc_toolkit.landscape.evaluator.auto import auto_method, compile_pays
from lmc_toolkit.landscape.evaluator.parts import (
    FlatView,
    activation_bytes,
    first_layer_split,
)
from lmc_toolkit.landscape.evaluator.paths import (
    Compiler,
    Job,
    loss_scores,
    run_first_layer,
    run_loop,
    run_stem,
    run_stream,
    run_vmap,
    scores,
)
from lmc_toolkit.landscape.evaluator.points import PointMetrics, check_points
from lmc_toolkit.landscape.evaluator.precision import (
    Precision,
    check_precision,
    forward_precision,
    head_in_float32,
)
from lmc_toolkit.landscape.evaluator.stem import Stem, find_stem
from lmc_toolkit.training.batchnorm import (
    BNMode,
    BNPolicy,
    as_policy,
    calibration_batches,
    has_running_stats,
    recalibrate_,
)
from lmc_toolkit.training.losses import LossFn, LossName, check_loss, loss_name
from lmc_toolkit.training.probe import check_model_input

EvaluatorMethod = Literal["auto", "loop", "vmap"]
METHODS: tuple[EvaluatorMethod, ...] = get_args(EvaluatorMethod)
#: The vmap path's memory budget on the CPU (on a GPU: half the free memory).
CPU_MEMORY_BUDGET = 512 * 2**20


def _checked_input(
    model: nn.Module, data: DataLike, method: str, loss: LossName | LossFn
) -> Dataset | Stream:
    """The evaluation data (a loader read once), checked against the model, loss and method."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    data = as_data(data, "evaluation data")
    check_loss(loss, data.regression, "evaluation data", "the landscape evaluator")
    check_model_input(model, data, "evaluation data")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "vmap" and (
        isinstance(data, Stream) or loss != "cross_entropy" or is_dict(data.x)
    ):
        raise ValueError(
            f"method='vmap' scores cross-entropy on one input tensor; loss="
            f"{loss_name(loss)!r} on inputs {_inputs(data)} takes method='loop' or 'auto'"
        )
    return data


class Evaluator:
    """Loss and accuracy of many parameter points of one architecture on one dataset.

    Args:
        model: Fixes the architecture, the device and the default buffers (copied once, never
            changed).
        data: What every point is scored on, in chunks of `batch_size`.
        bn: The BatchNorm policy (a name or a `BNPolicy`).
        bn_data: The fixed batches of `"recalibrate"` (default: `data`).
        batch_size: Images per chunk (default: 100 on the CPU, 1000 on a GPU).
        method: `"loop"` (one point at a time), `"vmap"` (blocks of points at once, the block
            size from `memory_budget`) or `"auto"` (vmap on a GPU for networks without
            convolutions, else the loop).
        compile: True, False or `"auto"` (compile the loop path when the work is large enough to
            pay for compiling).
        reuse_first_layer: Share the first layer's output between points: True, False or
            `"auto"` (only when compiling, where it measured faster; `benchmarks/README.md`).
        fuse_stem: Run a convnet's first block as one fused kernel where the architecture allows
            (`landscape.evaluator.stem`): True, False or `"auto"` (only when compiling).
        memory_budget: Bytes a vmapped block of points may take.
        precision: `"float32"` or `"bfloat16"` (`landscape.evaluator.precision`: refused where
            the device has no native bfloat16).
        progress: Show a progress bar.
        loss: `"cross_entropy"`, `"mse"` or a callable `loss(out, y)`.
    """

    def __init__(
        self,
        model: nn.Module,
        data: DataLike,
        *,
        bn: BNMode | BNPolicy = "eval",
        bn_data: DataLike | None = None,
        batch_size: int | None = None,
        method: EvaluatorMethod = "auto",
        compile: bool | str = "auto",
        reuse_first_layer: bool | str = "auto",
        fuse_stem: bool | str = "auto",
        memory_budget: int | None = None,
        precision: Precision = "float32",
        progress: bool = True,
        loss: LossName | LossFn = "cross_entropy",
    ):
        data = _checked_input(model, data, method, loss)
        self.loss = loss
        # built once, so compiled steps see the same function on every call
        self.score = scores if loss == "cross_entropy" else partial(loss_scores, loss)
        for name, switch in (
            ("compile", compile),
            ("fuse_stem", fuse_stem),
            ("reuse_first_layer", reuse_first_layer),
        ):
            if switch not in (True, False, "auto"):
                raise ValueError(f"{name} must be True, False or 'auto', got {switch!r}")
        if batch_size is not None:
            check_batch_size(batch_size)
        self.policy = as_policy(bn)
        self.net = copy.deepcopy(model).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.device = next((p.device for p in self.net.parameters()), torch.device("cpu"))
        self.precision = check_precision(precision, self.device)
        self.data = data if isinstance(data, Stream) else data.to(self.device)
        self.batch_size = batch_size or (100 if self.device.type == "cpu" else 1000)
        self.method = method if method != "auto" else self._auto_method()
        if self.precision != "float32":
            head_in_float32(self.net)
        self.compile = compile
        self.reuse_first_layer = reuse_first_layer
        self.memory_budget = memory_budget
        self.progress = progress
        self.running_stats = has_running_stats(self.net)
        self.params = FlatView(dict(self.net.named_parameters()))
        float_buffers = {k: b for k, b in self.net.named_buffers() if b.is_floating_point()}
        self.buffers = FlatView(float_buffers)
        self.default_buffers = self.buffers.flat.clone()
        self.calibration: list[Tensor] = []
        if self.running_stats and self.policy.mode == "recalibrate":
            self.calibration = self._calibration(model, data, bn_data)
        self.fuse_stem = fuse_stem
        self._fused_paths(data)
        self.compiler = Compiler()
        self._expected = 0

    def _fused_paths(self, data: Dataset | Stream) -> None:
        """The first-layer split and the fused stem where they apply: they rewrite a forward
        over one input tensor held in chunks."""
        tensor_input = not isinstance(data, Stream) and not is_dict(data.x)
        reuse, fuse = self.reuse_first_layer, self.fuse_stem
        self.split = first_layer_split(self.net) if reuse and tensor_input else None
        self.stem: Stem | None = find_stem(self.net) if fuse and tensor_input else None
        shape = data.in_shape
        self.stem_elements = (
            self.stem.conv_elements(shape) if self.stem and isinstance(shape, tuple) else 0
        )

    def _calibration(
        self, model: nn.Module, data: Dataset | Stream, bn_data: DataLike | None
    ) -> list[Tensor]:
        """The fixed batches "recalibrate" re-estimates BatchNorm's statistics on, on the
        device: from `bn_data`, else from `data` (which must then be held, not streamed)."""
        if isinstance(data, Stream) and bn_data is None:
            raise ValueError(
                "bn='recalibrate' draws its batches at random, which a Stream cannot "
                "give: pass bn_data= (a Dataset, e.g. a few thousand training examples) "
                "or use bn='eval'"
            )
        source = as_dataset(bn_data if bn_data is not None else data, "bn_data")
        check_model_input(model, source, "bn_data")
        return [move(x, self.device) for x in calibration_batches(source, self.policy)]

    def _auto_method(self) -> str:
        tensor_data = isinstance(self.data, Dataset) and not is_dict(self.data.x)
        return auto_method(self.net, self.device, self.loss == "cross_entropy" and tensor_data)

    def expect(self, n_points: int) -> None:
        """Announce how many points later calls will score in all (to decide on compiling)."""
        self._expected = int(n_points)

    # -- the public call -------------------------------------------------------------------
    def __call__(
        self,
        base: Mapping[str, Tensor],
        directions: Sequence[Mapping[str, Tensor]],
        coords: Any,
        *,
        buffers: Mapping[str, Tensor] | None = None,
        buffer_directions: Sequence[Mapping[str, Tensor]] | None = None,
        per_image: bool = False,
    ) -> PointMetrics:
        """Score the points base + Σ_k coords[p, k]·directions[k].

        `base` and `directions` are parameter dicts of the model's architecture; `buffers` are
        the base point's buffers (default: the model's own). `buffer_directions` (policy
        `"interpolate"`) move the float buffers along with the weights. With `per_image`, the
        result also says which images each point gets right (the evidence behind a barrier's
        test-set error: `connectivity.intervals`).
        """
        coords = self._check(base, directions, coords, buffer_directions)
        start = time.perf_counter()
        base_vec = self.params.pack(base)
        dirs = (
            torch.stack([self.params.pack(d) for d in directions])
            if directions
            else base_vec.new_zeros(0, base_vec.numel())
        )
        coords = coords.to(device=self.device, dtype=base_vec.dtype)
        buffer_rows = self._buffer_rows(base_vec, dirs, coords, buffers, buffer_directions)
        n_points = coords.shape[0]
        compiled = self._want_compile(n_points)
        job = self._job(base_vec, dirs, coords, buffer_rows, per_image)
        try:
            with forward_precision(self.precision, self.device):
                path = self._run(job, base, directions, compiled)
        finally:
            job.bar.close()
        n = len(self.data)
        details: dict[str, Any] = {
            "method": path,
            "compiled": bool(compiled and not self.compiler.failed and path != "vmap"),
            "batch_size": self.batch_size,
            "precision": self.precision,
            "loss": loss_name(self.loss),
            "bn": self.policy.to_dict(),
            "running_stats": self.running_stats,
            "seconds": time.perf_counter() - start,
            "device": str(self.device),
        }
        return PointMetrics(
            loss=(job.loss / n).cpu().numpy(),
            accuracy=(job.correct.double() / n).cpu().numpy()
            if not self.data.regression
            else np.full(n_points, np.nan),
            n=n,
            details=details,
            correct=None if job.images is None else job.images.cpu().numpy(),
        )

    def _job(
        self, base: Tensor, dirs: Tensor, coords: Tensor, buffer_rows: Any, per_image: bool
    ) -> Job:
        """One evaluation's work and its running totals (per point; per image where asked)."""
        streamed = isinstance(self.data, Stream)
        chunks = [] if streamed else self._chunks()
        n_points, n = coords.shape[0], len(self.data)
        per_point = math.ceil(n / self.batch_size) if streamed else len(chunks)
        return Job(
            self.params,
            self.buffers,
            base,
            dirs,
            coords,
            buffer_rows,
            chunks,
            loss=torch.zeros(n_points, dtype=torch.float64, device=self.device),
            correct=torch.zeros(n_points, dtype=torch.long, device=self.device),
            bar=tqdm(
                total=n_points * per_point,
                desc="evaluate",
                unit="eval",
                disable=not self.progress,
                leave=False,
            ),
            images=(
                torch.zeros(n_points, n, dtype=torch.bool, device=self.device)
                if per_image
                else None
            ),
            score=self.score,
        )

    def _run(
        self,
        job: Job,
        base: Mapping[str, Tensor],
        directions: Sequence[Mapping[str, Tensor]],
        compiled: bool,
    ) -> str:
        """Score the job's points on the path this evaluator takes; returns the path's name."""
        if isinstance(self.data, Stream):
            run_stream(job, self.net, self.data.batches(self.device, self.batch_size))
            return "stream"
        if self.method == "vmap":
            self.last_block = self.points_per_block(job.chunks[0][0])
            run_vmap(job, self.net, self.last_block)
            return "vmap"
        if self.stem is not None and (compiled or self.fuse_stem is True):
            run_stem(job, self.stem, self.compiler, compiled)
            return "loop+stem"
        if self.split is not None and (compiled or self.reuse_first_layer is True):
            run_first_layer(job, self.net, self.split, base, directions, self.compiler, compiled)
            return "loop+first-layer"
        run_loop(job, self.net)
        return "loop"

    def _chunks(self) -> list[tuple[Any, Tensor]]:
        """The data in chunks of `batch_size` (views of the tensors held on the device)."""
        data, bs = self.data, self.batch_size
        if isinstance(data, Stream):
            raise RuntimeError("a Stream is read batch by batch (run_stream), never in chunks")
        return [
            (take(data.x, slice(i, i + bs)), data.y[i : i + bs]) for i in range(0, len(data), bs)
        ]

    # -- checks ----------------------------------------------------------------------------
    def _check(
        self,
        base: Mapping[str, Tensor],
        directions: Sequence[Mapping[str, Tensor]],
        coords: Any,
        buffer_directions: Sequence[Mapping[str, Tensor]] | None,
    ) -> Tensor:
        coords = check_points(self.net, base, directions, coords)
        needs_ends = self.running_stats and self.policy.mode == "interpolate"
        if needs_ends and (buffer_directions is None or len(buffer_directions) != len(directions)):
            raise ValueError(
                "the BatchNorm policy 'interpolate' is for interpolation only: it needs "
                "the running statistics of both ends; use bn='recalibrate' or 'eval' here"
            )
        return coords

    def _want_compile(self, n_points: int) -> bool:
        if isinstance(self.data, Stream):
            return False  # compiled steps are built for chunks held in memory
        if self.compile is False or self.method == "vmap" or self.compiler.failed:
            return False
        if self.compile is True:
            return True
        work = max(n_points, self._expected) * len(self.data)
        return compile_pays(work, self.device, self.stem_elements if self.stem else None)

    # -- buffers per point -----------------------------------------------------------------
    def _buffer_rows(
        self,
        base_vec: Tensor,
        dirs: Tensor,
        coords: Tensor,
        buffers: Mapping[str, Tensor] | None,
        buffer_directions: Sequence[Mapping[str, Tensor]] | None,
    ) -> Tensor | None:
        """The float buffers of every point as a (P, nb) matrix, or None when they are fixed."""
        fixed = self.default_buffers if buffers is None else self.buffers.pack(buffers)
        self.buffers.write(fixed)
        if not self.running_stats or self.policy.mode == "eval":
            return None
        if self.policy.mode == "interpolate":
            assert buffer_directions is not None
            bdirs = torch.stack([self.buffers.pack(d) for d in buffer_directions])
            rows = fixed + coords.to(fixed.dtype) @ bdirs
            for name, view in zip(self.buffers.names, self.buffers.views(rows), strict=True):
                if name.endswith("running_var"):
                    view.clamp_(min=0)
            return rows
        rows = fixed.new_empty(coords.shape[0], fixed.numel())
        for p in range(coords.shape[0]):
            self.params.write(torch.addmv(base_vec, dirs.T, coords[p]))
            recalibrate_(self.net, self.calibration)
            rows[p] = self.buffers.flat
        self.buffers.write(fixed)
        return rows

    def points_per_block(self, chunk: Tensor) -> int:
        """How many points the vmap path evaluates together within the memory budget."""
        budget = self.memory_budget
        if budget is None:
            if self.device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(self.device)
                budget = free // 2
            else:
                budget = CPU_MEMORY_BUDGET
        per_point = 2 * activation_bytes(self.net, chunk) + 3 * self.params.flat.numel() * 4
        return max(1, int(budget // max(per_point, 1)))


def _inputs(data: Dataset | Stream) -> str:
    return f"of shape {data.in_shape}" if isinstance(data, Stream) else describe(data.x)


def evaluate_points(
    model: nn.Module,
    data: Dataset,
    base: Mapping[str, Tensor],
    directions: Sequence[Mapping[str, Tensor]],
    coords: Any,
    *,
    buffers: Mapping[str, Tensor] | None = None,
    buffer_directions: Sequence[Mapping[str, Tensor]] | None = None,
    **options: Any,
) -> PointMetrics:
    """Score base + Σ_k coords[p, k]·directions[k] for every row p; see `Evaluator`."""
    return Evaluator(model, data, **options)(
        base, directions, coords, buffers=buffers, buffer_directions=buffer_directions
    )
