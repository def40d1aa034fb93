"""The run store: names, round trips, atomic writes, corrupted files, caching."""

from __future__ import annotations

import dataclasses
import stat
import subprocess
import sys
import textwrap

import pytest
import torch

from lmc_toolkit.store import (
    CorruptFile,
    Store,
    StoreError,
    atomic_torch_save,
    run_name,
    safe_torch_load,
    verify_checksum,
)
from lmc_toolkit.store.files import atomic_write, checksum_path
from lmc_toolkit.store.naming import non_default
from lmc_toolkit.training import TrainConfig, TrainRun


@dataclasses.dataclass(frozen=True)
class Inner:
    lr: float = 0.1
    steps: int = 10


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str = "a"
    inner: Inner = dataclasses.field(default_factory=Inner)
    seeds: tuple[int, ...] = (0, 1)


def test_names_are_stable_across_versions():
    # Regression: these names are on users' disks. Never change them.
    assert run_name(TrainRun()) == "train-mnist-convnet3-6b3fcd981dab"
    assert (
        run_name(TrainRun(data="digits", train=TrainConfig(lr=0.1)))
        == "train-digits-convnet3-8150c8757aee"
    )
    assert run_name(Outer()) == "outer-9463087cb1ba"


def test_adding_a_field_with_a_default_keeps_old_names():
    old = dataclasses.make_dataclass("Cfg", [("a", int, 1), ("b", str, "x")], frozen=True)
    new = dataclasses.make_dataclass(
        "Cfg", [("a", int, 1), ("b", str, "x"), ("c", float, 0.5)], frozen=True
    )
    assert run_name(old()) == run_name(new())
    assert run_name(old(a=2)) == run_name(new(a=2))
    assert run_name(new(c=0.7)) != run_name(new())


def test_only_non_default_fields_count_recursively():
    assert non_default(Outer()) == {}
    assert non_default(Outer(inner=Inner(lr=0.2))) == {"inner": {"lr": 0.2}}
    assert non_default(Outer(seeds=(0, 1, 2))) == {"seeds": [0, 1, 2]}
    assert run_name(Outer(inner=Inner(steps=11))) != run_name(Outer())
    with pytest.raises(TypeError, match="must be a dataclass"):
        run_name({"lr": 0.1})


def test_round_trip_of_tensors_and_json(tmp_path):
    store = Store(tmp_path)
    run = store.run(Outer(name="b"))
    value = {"w": torch.randn(3, 4), "steps": [1, 2, 3], "meta": {"a": 1.5, "s": "x"}}
    run.save("weights", value)
    run.save_json("metrics", {"accuracy": 0.97, "loss": [0.5, 0.2]})
    back = run.load("weights")
    assert (
        torch.equal(back["w"], value["w"])
        and back["steps"] == [1, 2, 3]
        and back["meta"] == value["meta"]
    )
    assert run.load_json("metrics") == {"accuracy": 0.97, "loss": [0.5, 0.2]}
    assert run.keys() == ["metrics", "weights"]
    assert (run.path / "config.json").exists()
    assert store.runs() == [run.path.name]
    with pytest.raises(ValueError, match="a store key must be"):
        run.save("../escape", {})


def test_cached_computes_once(tmp_path):
    store = Store(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3)}

    first = store.cached(Outer(), compute)
    second = store.cached(Outer(), compute)
    assert len(calls) == 1 and store.computed == 1
    assert torch.equal(first["x"], second["x"])
    store.cached(Outer(), compute, recompute=True)
    assert len(calls) == 2


def test_a_crash_mid_write_leaves_no_partial_file(tmp_path, monkeypatch):
    store = Store(tmp_path)
    run = store.run(Outer())
    run.save("result", {"x": torch.zeros(2)})

    def dying_save(obj, f, *args, **kwargs):
        f.write(b"half a tensor")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run.save("result", {"x": torch.ones(2)})
    monkeypatch.undo()
    assert torch.equal(run.load("result")["x"], torch.zeros(2))  # the old file is intact
    assert {p.name for p in run.path.iterdir()} == {"config.json", "result.pt", "result.pt.sha256"}


def test_a_killed_process_leaves_only_a_temporary_file(tmp_path):
    target = tmp_path / "run" / "result.pt"
    code = textwrap.dedent(
        f"""
        import os
        from lmc_toolkit.store.files import atomic_write
        def write(f):
            f.write(b"partial bytes")
            f.flush()
            os._exit(9)  # the process dies mid-write
        atomic_write({str(target)!r}, write)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == 9
    assert not target.exists()
    leftovers = list(target.parent.iterdir())
    assert len(leftovers) == 1 and ".tmp-" in leftovers[0].name
    store = Store(tmp_path)
    # the temporary file is never mistaken for a result
    assert store.run(Outer()).keys() == []


def test_corrupted_and_truncated_files_name_themselves(tmp_path):
    store = Store(tmp_path)
    run = store.run(Outer())
    run.save("result", {"x": torch.randn(100)})
    path = run.path / "result.pt"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CorruptFile, match=r"result\.pt is corrupted: 50 bytes"):
        run.load("result")
    checksum_path(path).unlink()  # without its record the truncation is still caught on load
    with pytest.raises(StoreError, match=r"result\.pt is corrupted, truncated"):
        run.load("result")
    fresh = store.cached(Outer(), lambda: {"x": torch.zeros(1)}, recompute=True)
    assert torch.equal(fresh["x"], torch.zeros(1))
    assert torch.equal(run.load("result")["x"], torch.zeros(1))
    (run.path / "m.json").write_text('{"a": 1')
    with pytest.raises(StoreError, match=r"m\.json is corrupted"):
        run.load_json("m")


def test_an_altered_file_fails_its_checksum(tmp_path):
    path = atomic_torch_save({"x": torch.arange(1000.0)}, tmp_path / "t.pt")
    assert verify_checksum(path)
    data = bytearray(path.read_bytes())
    # flip one byte inside the tensor's storage: same size, still a loadable file
    i = data.index(torch.arange(1000.0).numpy().tobytes()[400:408])
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    assert torch.load(path, weights_only=True)["x"][100] != 100  # torch alone would not notice
    with pytest.raises(CorruptFile, match=rf"{path.name} is corrupted: .* SHA-256"):
        safe_torch_load(path)


def test_cached_recomputes_a_corrupt_file_and_says_which(tmp_path):
    store = Store(tmp_path)
    store.cached(Outer(), lambda: {"x": torch.ones(50)})
    path = store.run(Outer()).path / "result.pt"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.warns(RuntimeWarning, match=rf"{path}.*computing it again"):
        again = store.cached(Outer(), lambda: {"x": torch.full((50,), 2.0)})
    assert torch.equal(again["x"], torch.full((50,), 2.0))
    assert verify_checksum(path) and store.computations() == 2


def test_a_file_without_its_record_loads_unverified(tmp_path):
    path = atomic_torch_save({"x": torch.ones(2)}, tmp_path / "t.pt")
    checksum_path(path).unlink()
    assert not verify_checksum(path)
    assert torch.equal(safe_torch_load(path)["x"], torch.ones(2))


def test_a_failed_compute_leaves_no_folder(tmp_path):
    store = Store(tmp_path)

    def fails():
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):
        store.cached(Outer(), fails)
    assert store.runs() == [] and not store.run(Outer()).path.exists()
    # a run that already had files keeps them
    store.cached(Outer(), lambda: 1, key="other")
    with pytest.raises(RuntimeError):
        store.cached(Outer(), fails)
    assert store.run(Outer()).keys() == ["other"]


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        torch.save({"x": Evil()}, f)
    with pytest.raises(StoreError, match="evil.pt"):
        safe_torch_load(path)


def test_default_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LMC_TOOLKIT_STORE", str(tmp_path / "s"))
    assert Store().root == tmp_path / "s"


def test_atomic_save_creates_folders(tmp_path):
    path = atomic_torch_save({"a": torch.ones(1)}, tmp_path / "x" / "y" / "z.pt")
    assert path.exists()


def test_atomic_writes_get_the_mode_of_any_new_file(tmp_path):
    """Not the private 0600 of the temporary file: a report written here can be served."""
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"x")
    written = atomic_write(tmp_path / "atomic.txt", lambda f: f.write(b"x"))
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


# -- sharing one store between processes -------------------------------------------------------


_LOCK_RACE = """
import dataclasses, sys, time
from lmc_toolkit.store import Store

@dataclasses.dataclass(frozen=True)
class Outer:  # the same name and fields as the test's: the same run
    name: str = "a"

store = Store(sys.argv[1])

def compute():
    time.sleep(0.5)
    return {"who": sys.argv[2]}

print(store.cached(Outer(name="race"), compute)["who"], store.computed)
"""


def test_two_processes_compute_a_run_once(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _LOCK_RACE, str(tmp_path), who],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    lines = [out.split() for out, _ in outs]
    assert lines[0][0] == lines[1][0]  # both got the one result
    assert sorted(int(line[1]) for line in lines) == [0, 1]  # one computed, one loaded
    store = Store(tmp_path)
    assert store.computations() == 1
    run = store.run(Outer(name="race"))
    assert run.keys() == ["result"] and not list(run.path.glob("*.lock"))


def test_a_stale_lock_is_broken(tmp_path):
    import json
    import os
    import time

    from lmc_toolkit.store import RunLock
    from lmc_toolkit.store.locks import host_name as _host

    store = Store(tmp_path, lock_stale=1.0)
    run = store.run(Outer(name="stale"))
    run.path.mkdir(parents=True)
    lock = run.path / "result.lock"
    # a holder that died on this host: broken at once
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)  # fmt: skip
    record = {"host": _host(), "pid": int(dead.stdout), "time": 0, "token": "x"}
    lock.write_text(json.dumps(record))
    assert RunLock(lock, 60.0).stale()
    assert store.cached(Outer(name="stale"), lambda: 1) == 1
    assert not lock.exists() and store.computations() == 1
    # a holder on another machine whose heartbeat stopped: broken after `lock_stale`
    lock.write_text(json.dumps({**record, "host": "elsewhere", "pid": os.getpid()}))
    assert not RunLock(lock, 60.0).stale()
    old = time.time() - 5
    os.utime(lock, (old, old))
    assert RunLock(lock, 1.0).stale()
    assert store.cached(Outer(name="stale"), lambda: 2, recompute=True) == 2
    assert not lock.exists() and store.computations() == 2


def test_a_held_lock_waits_and_its_heartbeat_keeps_it_fresh(tmp_path):
    import os
    import threading
    import time

    from lmc_toolkit.store import RunLock

    path = tmp_path / "x.lock"
    held = RunLock(path, stale_after=0.4)
    held.acquire()
    os.utime(path, (time.time() - 10, time.time() - 10))
    time.sleep(0.3)  # the heartbeat (every 0.1 s) has touched it again
    assert not RunLock(path, 0.4).stale()
    other = RunLock(path, 0.4)
    assert not other.try_acquire()
    with pytest.raises(TimeoutError, match="held by"):
        other.acquire(timeout=0.3)
    threading.Timer(0.2, held.release).start()
    other.acquire(timeout=5)
    other.release()
    assert not path.exists()


def test_locks_counters_and_orphans_are_not_results(tmp_path):
    import os
    import time

    store = Store(tmp_path)
    run = store.run(Outer(name="o"))
    assert store.cached(Outer(name="o"), lambda: torch.ones(2)).sum() == 2
    (run.path / "result.lock").write_text("{}")
    orphan = run.path / "result.pt.tmp-abc123"
    orphan.write_bytes(b"partial")
    record = run.path / "other.pt.sha256"  # a checksum record whose file was never written
    record.write_text("sha256 00 1\n")
    assert run.keys() == ["result"]
    assert store.runs() == [run.path.name]  # .computed is not a run
    assert store.computations() == 1 and Store(tmp_path).computations() == 1
    assert store.clean_orphans(older_than=3600) == []
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    os.utime(run.path / "result.lock", (old, old))
    os.utime(record, (old, old))
    os.utime(run.path / "result.pt.sha256", (old, old))  # its file exists: kept
    assert sorted(p.name for p in store.clean_orphans(older_than=3600)) == [
        "other.pt.sha256",
        "result.lock",
        "result.pt.tmp-abc123",
    ]
    assert store.cached(Outer(name="o"), lambda: torch.zeros(2)).sum() == 2  # a store hit
    assert store.computations() == 1
