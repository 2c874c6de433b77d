"""Shared fixtures of the Motion3DGAN tests: the tiny procedural set's motions and configs."""

import pytest

from jaxface.configs import motion3dgan


@pytest.fixture(scope="session")
def tiny_motions(tiny_faces4d):
    """``(dataset_path, all motions, train, test)`` of the tiny procedural set (first-sample
    split)."""
    from jaxface.motion3dgan.data import load_motions, split_motions

    _, path = tiny_faces4d
    motions = load_motions(path, min_frames=motion3dgan.get_config("test").min_frames)
    train, test = split_motions(motions, "first_sample")
    return path, motions, train, test


@pytest.fixture
def config(tiny_faces4d):
    """The test configuration, reading the session's tiny dataset."""
    data_dir, _ = tiny_faces4d
    c = motion3dgan.get_config("test")
    c.data_dir = data_dir
    return c
