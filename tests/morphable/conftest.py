"""Fixtures of the morphable-model tests."""

import numpy as np
import pytest

from tests.morphable.toy import make_toy_model


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def toy():
    return make_toy_model()
