"""Which axes of a network's weights share one permutation of hidden units, found by tracing.

Permuting the output units of a layer, and the matching input units of every layer that reads
them, leaves the function unchanged. `permutation_spec(model)` traces the model (torch.fx, with
shapes from one forward pass of zeros) and follows each hidden representation from the layer
that makes it to every layer that reads it:

- a Conv2d or Linear starts a new group: its weight's output axis and its bias;
- a norm layer (BatchNorm, per-channel or whole-layer GroupNorm) joins its input's group with
  its affine parameters and running statistics;
- ReLU, pooling and dropout pass the group through; a flatten turns each channel into a block
  of H·W consecutive features, so the next Linear's input axis is permuted in blocks;
- an addition (a residual connection) joins the groups of its two inputs into one;
- the input and the output (logits) are never permuted, nor is anything joined to them.

Anything else that could mix channels raises a `ValueError` naming the module or function.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from lmc_toolkit.models import ModelSpec

#: Modules that pass their input's channel group through unchanged.
_PASS_MODULES = (
    nn.ReLU, nn.LeakyReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout,
    nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
)  # fmt: skip
_PASS_FUNCTIONS = {torch.relu, F.relu, torch.tanh, torch.sigmoid, F.gelu, F.dropout}
_PASS_METHODS = {"relu", "tanh", "sigmoid", "contiguous"}
_ADD = {operator.add, torch.add, operator.iadd}


@dataclass(frozen=True)
class Axis:
    """One axis of one state entry: `dim` of `name`, where each unit spans `block` consecutive
    entries (H·W after a flatten, else 1)."""

    name: str
    dim: int
    block: int = 1


@dataclass(frozen=True)
class Group:
    """Axes that one permutation of `size` units acts on together; named after the layer
    that makes the units. `tap` names the traced node whose output holds the units as channels
    (the last one, before any flatten): where activation matching reads them."""

    name: str
    size: int
    axes: tuple[Axis, ...]
    tap: str = ""


@dataclass(frozen=True)
class PermutationSpec:
    """Every permutable group of a network (`permutation_spec`)."""

    model: str
    groups: tuple[Group, ...]

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    def group(self, name: str) -> Group:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"no permutation group {name!r}; groups: {', '.join(self.names)}")


def permutation_spec(
    model: nn.Module, in_shape: tuple[int, ...] | None = None, example: Tensor | None = None
) -> PermutationSpec:
    """The permutation groups of `model`, found by tracing it (see the module docstring).

    Args:
        model: The network (any `nn.Module` torch.fx can trace).
        in_shape: The shape of one input, to trace with zeros in the model's dtype (models made
            by `lmc_toolkit.build` carry it in `model.spec`).
        example: A batch of real inputs to trace with instead (token ids: any dtype).

    Returns:
        A `PermutationSpec`: each group's units and the weight axes they permute.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"permutation_spec needs an nn.Module, got {type(model).__name__}")
    spec = getattr(model, "spec", None)
    if example is None:
        if in_shape is None:
            if not isinstance(spec, ModelSpec):
                raise ValueError(
                    f"pass in_shape=(C, H, W) or an example batch for {type(model).__name__}: "
                    "it was not made by lmc_toolkit.build, so its input shape is unknown"
                )
            in_shape = spec.in_shape
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        example = torch.zeros(2, *in_shape, dtype=dtype or torch.get_default_dtype())
    net = copy.deepcopy(model).eval().cpu()
    try:
        traced = fx.symbolic_trace(net)
    except Exception as exc:  # fx raises many types for code it cannot follow
        raise ValueError(
            f"cannot trace {type(model).__name__} with torch.fx ({type(exc).__name__}: {exc}); "
            "a model needs a traceable forward for permutation alignment"
        ) from exc
    ShapeProp(traced).propagate(example[:2].detach().cpu())
    name = spec.name if isinstance(spec, ModelSpec) else type(model).__name__
    return _Tracer(traced, name).run()


class _Groups:
    """Union-find over provisional groups, each with its axes, size and creator."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.axes: list[list[Axis]] = []
        self.size: list[int] = []
        self.creator: list[str] = []
        self.fixed: list[bool] = []

    def new(self, creator: str, size: int, fixed: bool = False) -> int:
        self.parent.append(len(self.parent))
        self.axes.append([])
        self.size.append(size)
        self.creator.append(creator)
        self.fixed.append(fixed)
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: int, b: int, where: str) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        if self.size[a] != self.size[b]:
            raise ValueError(f"{where} adds {self.size[a]} and {self.size[b]} channels")
        keep, drop = (a, b) if a < b else (b, a)
        self.parent[drop] = keep
        self.axes[keep] += self.axes[drop]
        self.fixed[keep] = self.fixed[keep] or self.fixed[drop]
        return keep

    def add_axis(self, g: int, axis: Axis) -> None:
        self.axes[self.find(g)].append(axis)


class _Tracer:
    """Walks a traced graph once, giving every tensor node (group, block)."""

    def __init__(self, traced: fx.GraphModule, name: str):
        self.traced = traced
        self.name = name
        self.modules = dict(traced.named_modules())
        self.groups = _Groups()
        self.at: dict[fx.Node, tuple[int, int]] = {}

    def run(self) -> PermutationSpec:
        for node in self.traced.graph.nodes:
            self.visit(node)
        roots = sorted({self.groups.find(g) for g in range(len(self.groups.parent))})
        out = []
        for r in roots:
            if self.groups.fixed[r] or not self.groups.axes[r]:
                continue
            axes = tuple(sorted(set(self.groups.axes[r]), key=lambda a: (a.name, a.dim)))
            taps = [
                n.name
                for n, (g, block) in self.at.items()
                if self.groups.find(g) == r and block == 1
            ]
            out.append(Group(self.groups.creator[r], self.groups.size[r], axes, taps[-1]))
        return PermutationSpec(self.name, tuple(out))

    def visit(self, node: fx.Node) -> None:
        if node.op == "placeholder":
            channels = _shape(node)[1]
            self.at[node] = (self.groups.new("input", channels, fixed=True), 1)
        elif node.op == "output":
            for arg in _tensor_args(node.args[0]):
                self.groups.fixed[self.groups.find(self.at[arg][0])] = True
        elif node.op == "call_module":
            self.visit_module(node, self.modules[node.target])
        elif node.op == "call_function" and node.target in _ADD:
            self.visit_add(node)
        elif node.op == "call_function" and node.target in _PASS_FUNCTIONS:
            self.at[node] = self.at[node.args[0]]
        elif node.op == "call_function" and node.target is torch.flatten:
            self.visit_flatten(node)
        elif node.op == "call_method" and node.target in _PASS_METHODS:
            self.at[node] = self.at[node.args[0]]
        elif node.op == "call_method" and node.target in ("flatten", "view", "reshape"):
            self.visit_flatten(node)
        elif node.op == "call_method" and node.target == "size":
            return
        else:
            raise ValueError(
                f"permutation_spec cannot follow {node.op} {node.target!r} (node {node.name}) in "
                f"{self.name}: only conv, linear, norm, activation, pooling, flatten and residual "
                "additions are understood"
            )

    def visit_module(self, node: fx.Node, m: nn.Module) -> None:
        g, block = self.at[node.args[0]]
        where = f"{type(m).__name__} {node.target!r}"
        if isinstance(m, nn.Conv2d | nn.Linear):
            if isinstance(m, nn.Conv2d) and (m.groups != 1 or block != 1):
                raise ValueError(f"{where}: grouped convolutions are not supported")
            self.groups.add_axis(g, Axis(f"{node.target}.weight", 1, block))
            out = self.groups.new(node.target, m.weight.shape[0])
            self.groups.add_axis(out, Axis(f"{node.target}.weight", 0))
            if m.bias is not None:
                self.groups.add_axis(out, Axis(f"{node.target}.bias", 0))
            self.at[node] = (out, 1)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.GroupNorm):
            if isinstance(m, nn.GroupNorm) and m.num_groups not in (1, m.num_channels):
                raise ValueError(
                    f"{where} normalizes channels in groups of "
                    f"{m.num_channels // m.num_groups}: permuting units across its groups "
                    "changes the function"
                )
            for entry in ("weight", "bias", "running_mean", "running_var"):
                if getattr(m, entry, None) is not None:
                    self.groups.add_axis(g, Axis(f"{node.target}.{entry}", 0))
            self.at[node] = (g, block)
        elif isinstance(m, nn.Flatten):
            self.visit_flatten(node)
        elif isinstance(m, _PASS_MODULES):
            self.at[node] = (g, block)
        else:
            raise ValueError(
                f"permutation_spec cannot follow {where} in {self.name}: only conv, linear, "
                "norm, activation, pooling, flatten and residual additions are understood"
            )

    def visit_add(self, node: fx.Node) -> None:
        inputs = list(_tensor_args(node.args))
        if len(inputs) != 2:
            raise ValueError(f"node {node.name}: an addition of a tensor and a constant")
        (ga, ba), (gb, bb) = self.at[inputs[0]], self.at[inputs[1]]
        if ba != bb:
            raise ValueError(f"node {node.name} adds tensors of different layouts")
        self.at[node] = (self.groups.union(ga, gb, f"node {node.name}"), ba)

    def visit_flatten(self, node: fx.Node) -> None:
        g, block = self.at[node.args[0]]
        before, after = _shape(node.args[0]), _shape(node)
        if len(after) != 2 or after[0] != before[0] or math.prod(before) != math.prod(after):
            raise ValueError(f"node {node.name}: only a flatten to (batch, features) is understood")
        self.at[node] = (g, block * math.prod(before[2:]))


def _shape(node: Any) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


def _tensor_args(args: Any) -> Iterator[fx.Node]:
    """The fx nodes among (possibly nested) arguments."""
    if isinstance(args, fx.Node):
        yield args
    elif isinstance(args, list | tuple):
        for a in args:
            yield from _tensor_args(a)
