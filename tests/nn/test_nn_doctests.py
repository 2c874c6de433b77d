"""Runs the docstring examples of jaxface.nn (each public layer carries one)."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["spiral_conv", "pooling", "geometry_mapping"])
def test_docstring_examples(name):
    module = importlib.import_module(f"jaxface.nn.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
