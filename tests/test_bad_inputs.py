"""Bad input is refused before any work: through the command line and through the library.

Each case asserts that the call fails (a non-zero exit, or the expected exception type), that
the message names the bad value, that it fails in under 2 s (so before any training, loading or
evaluation), and that the run store is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import lmc_toolkit as L
from lmc_toolkit.cli.main import main
from lmc_toolkit.data.sources import check_root
from lmc_toolkit.hessian import Hessian, density, top_eigenvalues, trace
from lmc_toolkit.study.figures.parameters import check_parameters
from lmc_toolkit.study.figures.pipeline import NOTEBOOKS, run_figures
from lmc_toolkit.sweep.schedulers import scheduler_kind

SECONDS = 2.0

#: (command line, texts the message must contain: the option and the bad value)
CLI_CASES: list[tuple[str, tuple[str, ...]]] = [
    ("landscape --grid 0", ("--grid", "'0'")),
    ("landscape --grid 1", ("--grid", "'1'")),
    ("landscape --grid 2.5", ("--grid", "'2.5'")),
    ("landscape --span 0", ("--span", "'0'")),
    ("landscape --span nan", ("--span", "'nan'")),
    ("landscape --span -1", ("--span", "'-1'")),
    ("landscape --images -3", ("--images", "'-3'")),
    ("landscape --precision fp16", ("--precision", "'fp16'")),
    ("landscape --kind cube", ("--kind", "'cube'")),
    ("hessian --k -1", ("--k", "'-1'")),
    ("hessian --probes -2", ("--probes", "'-2'")),
    ("hessian --images 0", ("--images", "'0'")),
    ("hessian --slq-steps 0", ("--slq-steps", "'0'")),
    ("hessian --runs x", ("--runs", "'x'")),
    ("hessian --which XX", ("--which", "'XX'")),
    ("hessian --select (", ("--select", "'('")),
    ("train --device nope", ("--device", "'nope'")),
    ("train --device cuda:99", ("--device", "'cuda:99'")),
    ("imp --rounds 0", ("--rounds", "'0'")),
    ("imp --rounds -1", ("--rounds", "'-1'")),
    ("imp --rounds 1.5", ("--rounds", "'1.5'")),
    ("imp --rate 0", ("--rate", "'0'")),
    ("imp --rate 1.5", ("--rate", "'1.5'")),
    ("imp --rate inf", ("--rate", "'inf'")),
    ("imp --scope everywhere", ("--scope", "'everywhere'")),
    ("imp --rewind sometimes", ("rewind", "'sometimes'")),
    ("imp --prune-data /no/such/set.pt", ("--prune-data", "/no/such/set.pt")),
    ("tickets --data-seeds -1", ("--data-seeds", "'-1'")),
    ("instability --k -5", ("--k", "'-5'")),
    ("instability --pairs 0", ("--pairs", "'0'")),
    ("instability --alphas 1", ("--alphas", "'1'")),
    ("instability --bn maybe", ("--bn", "'maybe'")),
    ("train --epochs -1", ("--epochs", "'-1'")),
    ("train --epochs inf", ("--epochs", "'inf'")),
    ("train --lr 0", ("--lr", "'0'")),
    ("train --lr nan", ("--lr", "'nan'")),
    ("train --batch-size 0", ("--batch-size", "'0'")),
    ("train --weight-decay -0.1", ("--weight-decay", "'-0.1'")),
    ("train --milestones 2 -1", ("--milestones", "'-1'")),
    ("train --init-seed -1", ("--init-seed", "'-1'")),
    ("train --steps 0", ("--steps", "'0'")),
    ("train --data nope", ("--data", "'nope'")),
    ("train --model nope", ("--model", "'nope'")),
    ("train --optimizer lbfgs", ("--optimizer", "'lbfgs'")),
    ("train --option width", ("--option", "'width'")),
    ("reproduce --preset nope", ("--preset", "'nope'")),
    ("reproduce --only F99", ("F99",)),
    ("reproduce --scheduler threads:2", ("threads:2",)),
    ("reproduce --scheduler cluster:0", ("cluster:0",)),
    ("reproduce --preset paper --data-root /no/such/folder", ("/no/such/folder",)),
    ("distill --ipc 0", ("--ipc", "'0'")),
    ("distill --factor 0", ("--factor", "'0'")),
    ("distill --method magic", ("--method", "'magic'")),
    ("distill --lr -1", ("--lr", "'-1'")),
    ("align --method rotate", ("--method", "'rotate'")),
    ("align --init-seed 3 --init-seed-b 3", ("--init-seed-b", "3")),
    ("align --alphas 1", ("--alphas", "'1'")),
]


@pytest.fixture(autouse=True, scope="module")
def imported():
    """Import what the refusals may touch first: the clock measures work, not imports."""
    import papermill  # noqa: F401
    import torchvision.datasets  # noqa: F401


def files_of(root: Path) -> list[tuple[str, int]]:
    """Every file under `root` with its size: the store's visible state."""
    if not root.exists():
        return []
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """A store with one saved run in it (so "unchanged" is not trivially an empty folder)."""
    root = tmp_path / "store"
    monkeypatch.setenv("LMC_TOOLKIT_STORE", str(root))
    L.Store(root).run(L.TrainConfig(lr=0.5)).save("result", {"x": torch.ones(3)})
    return root


@pytest.mark.parametrize("line,named", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_the_command_line_refuses_at_once(line, named, store, tmp_path, capsys):
    before = files_of(store)
    argv = [*line.split(), "--store", str(store)]
    if line.startswith("reproduce"):
        argv += ["--out", str(tmp_path / "reports")]
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: exit status 2
        code = exc.code
    seconds = time.perf_counter() - start
    message = capsys.readouterr().err
    assert code not in (0, None), message
    for text in named:
        assert text in message, f"{text!r} not in {message!r}"
    assert seconds < SECONDS
    assert files_of(store) == before
    assert not (tmp_path / "reports").exists()


def tiny_model(width: int = 4) -> torch.nn.Module:
    return L.build("convnet3", 10, (1, 8, 8), init_seed=0, width=width)


def tiny_data() -> L.Dataset:
    gen = torch.Generator().manual_seed(0)
    return L.Dataset(
        x=torch.randn(20, 1, 8, 8, generator=gen),
        y=torch.arange(20) % 10,
        classes=tuple(str(i) for i in range(10)),
        name="tiny",
    )


def nan_model() -> torch.nn.Module:
    model = tiny_model()
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    return model


def wrong_shape_mask() -> dict[str, torch.Tensor]:
    mask = {k: torch.ones_like(v, dtype=torch.bool) for k, v in tiny_model().named_parameters()}
    first = next(iter(mask))
    mask[first] = torch.ones(3, dtype=torch.bool)
    return mask


def float_mask() -> dict[str, torch.Tensor]:
    return {k: torch.ones_like(v) * 0.5 for k, v in tiny_model().named_parameters()}


def _plane(x) -> Callable[[], object]:
    model = tiny_model()
    state = dict(model.named_parameters())
    return lambda: L.plane(state, state, state, tiny_data(), x=x, y=(-1, 1, 3), model=model)


#: (what, call, expected exception type, texts the message must contain)
LIBRARY_CASES: list[tuple[str, Callable[[], object], type, tuple[str, ...]]] = [
    ("plane grid of 0 points", _plane((-1, 1, 0)), ValueError, ("n = 0",)),
    ("plane grid not finite", _plane([0.0, float("inf")]), ValueError, ("inf",)),
    (
        "interpolation with 1 alpha",
        lambda: L.interpolate(tiny_model(), tiny_model(), tiny_data(), alphas=1, progress=False),
        ValueError,
        ("1",),
    ),
    (
        "interpolation between different architectures",
        lambda: L.interpolate(tiny_model(4), tiny_model(8), tiny_data(), progress=False),
        ValueError,
        ("shape",),
    ),
    (
        "interpolation from non-finite weights",
        lambda: L.interpolate(nan_model(), tiny_model(), tiny_data(), progress=False),
        ValueError,
        ("NaN or inf",),
    ),
    (
        "top-0 eigenvalues",
        lambda: top_eigenvalues(Hessian(tiny_model(), tiny_data()), k=0),
        ValueError,
        ("k", "0"),
    ),
    (
        "trace from 0 probes",
        lambda: trace(Hessian(tiny_model(), tiny_data()), probes=0),
        ValueError,
        ("probes", "0"),
    ),
    (
        "density from 0 runs",
        lambda: density(Hessian(tiny_model(), tiny_data()), runs=0),
        ValueError,
        ("runs", "0"),
    ),
    ("pruning rate 1", lambda: L.ImpConfig(rate=1.0), ValueError, ("rate", "1.0")),
    ("pruning rounds -1", lambda: L.ImpConfig(rounds=-1), ValueError, ("rounds", "-1")),
    ("rewind to 'later'", lambda: L.ImpConfig(rewind="later"), ValueError, ("'later'",)),
    ("epochs inf", lambda: L.TrainConfig(epochs=float("inf")), ValueError, ("inf",)),
    ("weight decay nan", lambda: L.TrainConfig(weight_decay=float("nan")), ValueError, ("nan",)),
    ("milestone -1", lambda: L.TrainConfig(milestones=(-1,)), ValueError, ("-1",)),
    (
        "mask of the wrong shape",
        lambda: L.train(tiny_model(), tiny_data(), L.TrainConfig(steps=1), mask=wrong_shape_mask()),
        ValueError,
        ("shape",),
    ),
    (
        "mask of floats",
        lambda: L.train(tiny_model(), tiny_data(), L.TrainConfig(steps=1), mask=float_mask()),
        ValueError,
        ("torch.float32", "0.5"),
    ),
    ("unknown dataset", lambda: L.load("nope"), ValueError, ("'nope'",)),
    ("unknown model", lambda: L.build("nope", 10, (1, 8, 8)), ValueError, ("'nope'",)),
    (
        "a run key that does not exist",
        lambda: L.Store().run(L.TrainConfig(lr=0.5)).load("no-such-key"),
        FileNotFoundError,
        ("no-such-key",),
    ),
    (
        "a data root without CIFAR-10's files",
        lambda: check_root("cifar10", "/no/such/root"),
        FileNotFoundError,
        ("/no/such/root",),
    ),
    (
        "CIFAR-10 loaded from a root without its files",
        lambda: L.load("cifar10", root="/no/such/root"),
        FileNotFoundError,
        ("/no/such/root",),
    ),
    (
        "a scheduler that does not parse",
        lambda: scheduler_kind("pigeon:3"),
        ValueError,
        ("pigeon",),
    ),
    (
        "a notebook parameter out of range",
        lambda: check_parameters(NOTEBOOKS / "F4_landscape.ipynb", {"resolution": 1}),
        ValueError,
        ("resolution=1",),
    ),
    (
        "a notebook parameter of the wrong type",
        lambda: check_parameters(NOTEBOOKS / "F2_interpolation.ipynb", {"alphas": "eleven"}),
        ValueError,
        ("'eleven'",),
    ),
    (
        "one copy in a pairwise figure",
        lambda: check_parameters(NOTEBOOKS / "F8_pairwise.ipynb", {"seeds": [0]}),
        ValueError,
        ("seeds=[0]",),
    ),
    (
        "a notebook parameter that does not exist",
        lambda: check_parameters(NOTEBOOKS / "F1_accuracy.ipynb", {"speed": 3}),
        ValueError,
        ("'speed'",),
    ),
    (
        "the paper preset without its data",
        lambda: run_figures("paper", "F1", out="/no/such/reports", progress=False),
        ValueError,
        ("root",),
    ),
]


@pytest.mark.parametrize("what,call,error,named", LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_the_library_refuses_at_once(what, call, error, named, store):
    before = files_of(store)
    start = time.perf_counter()
    with pytest.raises(error) as caught:
        call()
    seconds = time.perf_counter() - start
    for text in named:
        assert text in str(caught.value), f"{text!r} not in {str(caught.value)!r}"
    assert seconds < SECONDS
    assert files_of(store) == before


def test_the_table_is_large_enough():
    assert len(CLI_CASES) + len(LIBRARY_CASES) >= 40
