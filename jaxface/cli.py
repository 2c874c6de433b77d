"""The ``jaxface`` command line: one entry point, one sub-command per job.

Each sub-command lives in ``jaxface.commands.<name>`` and exposes ``register(subparsers)``
(adds its parser and sets ``func``). Sub-command modules are imported lazily so that
``jaxface --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command name -> module under jaxface.commands.
COMMANDS: dict[str, str] = {
    "generate": "generate",
    "mesh-info": "mesh_info",
    "prepare": "prepare",
    "animate": "s2d",
    "transfer": "s2d",
    "neutralize": "s2d",
}


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxface", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):  # a module may register several commands
        importlib.import_module(f"jaxface.commands.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, OSError, ValueError) as err:  # bad input: one line, no traceback
        print(f"jaxface {args.command}: error: {err}", file=sys.stderr)
        return 2


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
