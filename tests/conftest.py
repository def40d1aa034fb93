"""Shared fixtures: the small real datasets and tiny models the tests run on."""

from __future__ import annotations

import numpy as np
import pytest

from lmc_toolkit import data as D


@pytest.fixture(scope="session")
def digits_train() -> D.Dataset:
    return D.load("digits", "train")


@pytest.fixture(scope="session")
def digits_test() -> D.Dataset:
    return D.load("digits", "test")


@pytest.fixture(scope="session")
def digits_small(digits_train: D.Dataset) -> D.Dataset:
    """300 digits: enough for a few training steps in milliseconds."""
    return digits_train[:300]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
