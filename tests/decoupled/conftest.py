"""Shared fixtures of the decoupled face GAN tests: the test config on the session's tiny set and
its labelled meshes."""

import pytest

from jaxface.configs import decoupled


@pytest.fixture
def config(tiny_faces4d):
    """The test configuration, reading the session's tiny dataset."""
    data_dir, _ = tiny_faces4d
    c = decoupled.get_config("test")
    c.data_dir = data_dir
    return c


@pytest.fixture(scope="session")
def tiny_faces(tiny_faces4d):
    """The test configuration's labelled meshes of the tiny set (loaded once)."""
    from jaxface.decoupled.data import load_faces

    c = decoupled.get_config("test")
    c.data_dir = tiny_faces4d[0]
    return load_faces(c)
