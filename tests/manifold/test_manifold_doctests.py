"""Runs the docstring examples of jaxface.manifold."""

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["sphere", "srvf", "resample"])
def test_docstring_examples(name):
    module = importlib.import_module(f"jaxface.manifold.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
