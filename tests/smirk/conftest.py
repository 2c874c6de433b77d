"""Shared fixtures of the image-to-3D tests: the open model, small."""

import pytest

from jaxface.morphable.open_model import load_open_model


@pytest.fixture(scope="session")
def small_model():
    """The open morphable model with 8 identity and 12 expression components."""
    return load_open_model().truncated(8, 12)
