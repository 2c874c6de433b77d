"""The one way a command module adds its parser: help line, description and epilog from its
module docstring (first paragraph: description; the rest: epilog, printed as written)."""

from __future__ import annotations

import argparse
import re

__all__ = ["add_parser", "plain"]

_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|obj|ref):`~?([^`]+)`")


def plain(text: str) -> str:
    """Docstring text as a terminal shows it: reST roles and double backquotes removed, a
    literal-block ``::`` read as one colon.

    Example:
      >>> plain("``jaxface view`` (:mod:`jaxface.viz.viewer`). Examples::")
      'jaxface view (jaxface.viz.viewer). Examples:'
    """
    text = _ROLE.sub(r"\1", text).replace("``", "")
    return re.sub(r"::$", ":", text, flags=re.MULTILINE)


def add_parser(subparsers: argparse._SubParsersAction, name: str, help: str,
               doc: str | None) -> argparse.ArgumentParser:
    """Adds sub-command ``name`` documented by a module docstring.

    Args:
      subparsers: the ``jaxface`` sub-parsers.
      name: the sub-command.
      help: its one-line summary in ``jaxface --help``.
      doc: the command module's docstring.

    Example:
      >>> sub = argparse.ArgumentParser(prog="jaxface").add_subparsers()
      >>> add_parser(sub, "demo", "a demo", "Does things.\\n\\nExamples: ...").description
      'Does things.'
    """
    paragraphs = plain(doc or "").split("\n\n")
    return subparsers.add_parser(
        name, help=help, description=paragraphs[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(paragraphs[1:]),
    )
