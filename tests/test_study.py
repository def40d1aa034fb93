"""The shared study behind the figure notebooks: presets, masks per method, trained tickets."""

from __future__ import annotations

import pytest
import torch

from lmc_toolkit.pruning import ImpConfig, Mask, imp, train_ticket
from lmc_toolkit.store import Store
from lmc_toolkit.study import Study, StudyConfig, Sweeps, study_config
from lmc_toolkit.study.presets import STUDY_PRESETS


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    store = Store(tmp_path_factory.mktemp("study_store"))
    return Study(study_config("smoke"), store, device="cpu", progress=False)


def test_presets_are_valid_and_overrides_apply():
    assert set(STUDY_PRESETS) == {"smoke", "cpu", "fashion", "paper"}
    c = study_config("smoke", rounds=3, ticket_rounds=[1, 3], data_seeds=[0, 2], ipc=None)
    assert (c.rounds, c.ticket_rounds, c.data_seeds) == (3, (1, 3), (0, 2))
    assert c.ipc == STUDY_PRESETS["smoke"].ipc  # None keeps the preset's value
    assert c.methods == ("dense", "imp", "distilled-random", "random")


def test_bad_settings_name_the_value_and_what_is_allowed():
    with pytest.raises(
        ValueError, match=r"unknown preset 'laptop'.*\['smoke', 'cpu', 'fashion', 'paper'\]"
    ):
        study_config("laptop")
    with pytest.raises(ValueError, match=r"no field 'epochs'"):
        study_config("smoke", epochs=3)
    with pytest.raises(ValueError, match=r"'mtt' is not one of"):
        StudyConfig(synthetic=("mtt",))
    with pytest.raises(ValueError, match=r"ticket round 7 lies outside"):
        StudyConfig(rounds=5, ticket_rounds=(7,))
    with pytest.raises(ValueError, match=r"two distinct data seeds"):
        StudyConfig(data_seeds=(0, 0))


def test_masks_have_the_nominal_sparsity_and_match_an_independent_imp_run(study: Study):
    c = study.config
    masks = study.masks()
    assert list(masks) == list(c.methods)
    assert masks["dense"] == [None]
    prunable = Mask.ones(study.model0).total
    for method in c.methods[1:]:
        for r, m in zip(c.ticket_rounds, masks[method], strict=True):
            # each of r rounds rounds its own count: within r weights of 1 - 0.8^r
            assert abs(m.sparsity - c.sparsity(r)) <= r / prunable + 1e-9, (method, r)
    again = imp(study.model0, study.train_data, ImpConfig(rounds=c.rounds, train=c.train))
    for r, m in zip(c.ticket_rounds, masks["imp"], strict=True):
        assert all(torch.equal(m[k], again.rounds[r].mask[k]) for k in m)


def test_trained_tickets_are_the_stored_ones_and_the_model_is_untouched(study: Study):
    before = {k: v.clone() for k, v in study.model0.state_dict().items()}
    r = study.config.ticket_rounds[-1]
    result = study.trained("imp", r, 1)
    direct = train_ticket(
        study.model0, study.mask("imp", r), study.train_data, study.config.train, 1, progress=False
    )
    assert all(torch.equal(result.state[k], direct.state[k]) for k in direct.state)
    net = study.network("imp", r, 1)
    mask = study.mask("imp", r)
    assert all(bool((dict(net.named_parameters())[k][~mask[k]] == 0).all()) for k in mask)
    assert all(torch.equal(before[k], v) for k, v in study.model0.state_dict().items())


def test_tickets_cover_every_method_and_seed_and_reload(study: Study):
    table = study.tickets()
    c = study.config
    assert set(table.methods) == set(c.methods)
    rows = [e for e in table.entries if e.method == "imp"]
    assert len(rows) == len(c.ticket_rounds) * len(c.data_seeds)
    computed = study.store.computed
    again = study.tickets()
    assert study.store.computed == computed  # everything came from the store
    assert [e.accuracy for e in again.entries] == [e.accuracy for e in table.entries]


def test_a_mask_computes_only_its_own_pruning_run(tmp_path):
    config = study_config("smoke", synthetic=("random",))
    s = Study(config, Store(tmp_path), device="cpu", progress=False)
    s.mask("imp", 1)
    assert set(s._runs) == {("imp", 0)}  # distilled pruning was not run for an IMP mask
    s.mask("random", 1)
    assert set(s._runs) == {("imp", 0)}


def test_a_scheduled_prefetch_leaves_nothing_for_the_tickets_to_train(tmp_path):
    config = study_config("smoke")
    swept = Study(
        config, Store(tmp_path / "a"), device="cpu", progress=False, sweeps=Sweeps("local")
    )
    report = swept.prefetch()
    assert report.ok and len(report.labels) >= len(config.methods)
    before = swept.store.computations()
    table = swept.tickets()  # every ticket is a store hit now
    assert swept.store.computations() == before
    # and the swept tickets are the ones an in-process study trains, bit for bit
    plain = Study(config, Store(tmp_path / "b"), device="cpu", progress=False)
    r = config.ticket_rounds[-1]
    a, b = swept.trained("distilled-random", r, 1), plain.trained("distilled-random", r, 1)
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert [e.accuracy for e in table.entries] == [e.accuracy for e in plain.tickets().entries]


def test_a_bad_scheduler_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="allowed"):
        Study(study_config("smoke"), Store(tmp_path), sweeps=Sweeps("threads:2"))
    assert not any(tmp_path.iterdir())


def test_a_fresh_synthetic_set_is_made_again_without_the_store_and_equals_the_stored_one(tmp_path):
    config = study_config("smoke", synthetic=("dm",))
    store = Store(tmp_path)
    s = Study(config, store, device="cpu", progress=False)
    stored = s.synthetic("dm")
    entries = sorted(p.name for p in tmp_path.rglob("*"))
    fresh = s.synthetic("dm", fresh=True)
    assert sorted(p.name for p in tmp_path.rglob("*")) == entries  # nothing written
    assert torch.equal(fresh.x, stored.x) and torch.equal(fresh.y, stored.y)
