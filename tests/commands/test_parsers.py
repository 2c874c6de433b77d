"""Every command's help reads as plain text (its docstring's reST markup removed)."""

import argparse

from jaxface.cli import build_parser
from jaxface.commands.parsers import plain


def _all_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _all_parsers(child)


def test_plain_removes_roles_backquotes_and_literal_markers():
    text = "See :func:`~jaxface.generate.generate` and ``--out``. Example::\n\n    jaxface view x"
    assert plain(text) == "See jaxface.generate.generate and --out. Example:\n\n    jaxface view x"
    assert plain("a :: b") == "a :: b"  # only a line-ending marker is a literal block


def test_no_help_text_shows_rest_markup():
    parsers = list(_all_parsers(build_parser()))
    assert len(parsers) > 10  # the top level, every command and the face3d verbs
    for parser in parsers:
        text = parser.format_help()
        for markup in ("``", ":mod:", ":func:", ":class:"):
            assert markup not in text, (parser.prog, markup)
        assert not any(line.rstrip().endswith("::") for line in text.splitlines()), parser.prog
