"""The bfloat16 evaluator against float32 on the same points, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmc_toolkit import models
from lmc_toolkit.connectivity import interpolate
from lmc_toolkit.landscape import (
    PRECISIONS,
    Evaluator,
    PrecisionUnsupported,
    bf16_supported,
    evaluate_points,
    line,
    plane,
)
from lmc_toolkit.landscape.evaluator import precision as precision_module
from lmc_toolkit.landscape.evaluator.points import grid_coords
from lmc_toolkit.landscape.evaluator.precision import BF16_LOSS_RTOL
from lmc_toolkit.training import TrainConfig, train
from lmc_toolkit.training import params as P

needs_bf16 = pytest.mark.skipif(
    not bf16_supported(torch.device("cpu")), reason="this CPU has no native bfloat16"
)
COORDS = grid_coords(np.linspace(-0.5, 1.5, 5), [-1.0, 0.0, 1.0])


@pytest.fixture(scope="module")
def trained(digits_train):
    """For each model: the template, two trained solutions and a second direction."""
    out = {}
    for name, options in (("lenet", {}), ("convnet3", {"width": 8})):
        template = models.build(name, 10, digits_train.in_shape, init_seed=0, **options)
        config = TrainConfig(steps=100, batch_size=64, lr=0.05)
        ends = [
            train(template, digits_train, config, data_seed=s, progress=False).state for s in (0, 1)
        ]
        own = dict(template.named_parameters())
        a, b = ({k: v for k, v in e.items() if k in own} for e in ends)
        g = torch.Generator().manual_seed(3)
        d2 = {
            k: 0.3 * v.norm() / v.numel() ** 0.5 * torch.randn(v.shape, generator=g)
            for k, v in a.items()
        }
        out[name] = (template, a, [P.sub(b, a), d2])
    return out


def _relative_error(reference: np.ndarray, other: np.ndarray) -> float:
    return float((np.abs(other - reference) / np.abs(reference)).max())


@needs_bf16
@pytest.mark.parametrize("name", ["lenet", "convnet3"])
@pytest.mark.parametrize(
    "kw",
    [
        {"reuse_first_layer": False, "fuse_stem": False, "compile": False},
        {"fuse_stem": False, "compile": False, "reuse_first_layer": True},
        {"fuse_stem": True, "compile": False},
        {"method": "vmap"},
    ],
)
def test_bfloat16_matches_float32_within_the_documented_bound(trained, digits_test, name, kw):
    model, base, dirs = trained[name]
    ref = evaluate_points(model, digits_test, base, dirs, COORDS, progress=False, **kw)
    low = evaluate_points(
        model, digits_test, base, dirs, COORDS, progress=False, precision="bfloat16", **kw
    )
    assert ref.details["precision"] == "float32" and low.details["precision"] == "bfloat16"
    assert low.details["method"] == ref.details["method"]
    assert _relative_error(ref.loss, low.loss) <= BF16_LOSS_RTOL
    assert not np.array_equal(ref.loss, low.loss)  # bfloat16 really ran: no silent float32


@needs_bf16
def test_compiled_bfloat16_stem_matches_float32(trained, digits_test):
    model, base, dirs = trained["convnet3"]
    kw = {"compile": True, "batch_size": 120}
    ref = evaluate_points(model, digits_test, base, dirs, COORDS, progress=False, **kw)
    low = evaluate_points(
        model, digits_test, base, dirs, COORDS, progress=False, precision="bfloat16", **kw
    )
    assert low.details["method"] == "loop+stem" and low.details["compiled"]
    assert _relative_error(ref.loss, low.loss) <= BF16_LOSS_RTOL
    assert not np.array_equal(ref.loss, low.loss)


@needs_bf16
def test_slices_record_their_precision(trained, digits_test):
    model, base, dirs = trained["lenet"]
    b = P.add(base, dirs[0])
    opts = {"model": model, "bn": "eval", "progress": False, "compile": False}
    surface = plane(base, *dirs, digits_test, (-1, 1, 3), (-1, 1, 2), precision="bfloat16", **opts)
    curve = line(base, dirs[1], digits_test, n=3, precision="bfloat16", **opts)
    interp = interpolate(base, b, digits_test, alphas=3, precision="bfloat16", **opts)
    default = line(base, dirs[1], digits_test, n=3, **opts)
    assert surface.precision == curve.precision == interp.precision == "bfloat16"
    assert surface.meta["evaluator"]["precision"] == "bfloat16"
    assert default.precision == "float32"
    ends = interpolate(base, b, digits_test, alphas=3, **opts)
    assert _relative_error(ends.loss, interp.loss) <= BF16_LOSS_RTOL


@needs_bf16
def test_a_surface_never_mixes_precisions(trained, digits_test, tmp_path):
    model, base, dirs = trained["lenet"]
    path = tmp_path / "plane.pt"
    opts = {"model": model, "bn": "eval", "progress": False, "compile": False, "path": path}
    half = plane(base, *dirs, digits_test, (-1, 1, 3), (-1, 1, 3), max_points=4, **opts)
    assert half.missing == 5 and half.precision == "float32"
    with pytest.raises(ValueError, match="'float32', not 'bfloat16'"):
        plane(base, *dirs, digits_test, (-1, 1, 3), (-1, 1, 3), precision="bfloat16", **opts)
    assert plane(base, *dirs, digits_test, (-1, 1, 3), (-1, 1, 3), **opts).complete


def test_unknown_precision_is_refused_before_any_work(trained, digits_test, tmp_path):
    model, base, dirs = trained["lenet"]
    path = tmp_path / "plane.pt"
    with pytest.raises(ValueError, match=r"precision must be one of .*'float16'"):
        plane(base, *dirs, digits_test, model=model, path=path, precision="float16")
    assert not path.exists()
    with pytest.raises(ValueError, match="'bf16'"):
        Evaluator(model, digits_test, precision="bf16")
    assert PRECISIONS == ("float32", "bfloat16")


def test_bfloat16_without_native_support_is_an_error_not_a_fallback(
    trained, digits_test, monkeypatch
):
    model, base, dirs = trained["lenet"]
    monkeypatch.setattr(precision_module, "bf16_supported", lambda device: False)
    with pytest.raises(PrecisionUnsupported, match="precision='bfloat16' needs a CPU with"):
        evaluate_points(model, digits_test, base, dirs, COORDS[:1], precision="bfloat16")
    with pytest.raises(PrecisionUnsupported, match="use precision='float32'"):
        line(base, dirs[0], digits_test, n=3, model=model, bn="eval", precision="bfloat16")
    result = evaluate_points(model, digits_test, base, dirs, COORDS[:1], progress=False)
    assert result.details["precision"] == "float32"


@needs_bf16
def test_the_callers_model_is_not_changed(trained, digits_test):
    model = trained["lenet"][0]
    head = [m for m in model.modules() if type(m) is torch.nn.Linear][-1]
    Evaluator(model, digits_test, precision="bfloat16", progress=False)
    assert "forward" not in vars(head)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        assert model(digits_test.x[:2]).dtype == torch.bfloat16
