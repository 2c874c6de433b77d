"""The ``jaxface`` command line: one entry point, one sub-command per job.

Each sub-command lives in a module of :mod:`jaxface.commands` that exposes
``register(subparsers)`` (adds its parsers and sets ``func``). The command modules import the
library inside their functions, so that ``jaxface --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from jaxface.commands import (
    decoupled,
    express,
    generate,
    mesh_info,
    neutral,
    prepare,
    reconstruct,
    s2d,
    train_bundle,
    view,
)
from jaxface.commands.errors import UserError
from jaxface.commands.parsers import plain

__all__ = ["COMMANDS", "build_parser", "main", "run"]

#: Sub-command name -> the module that registers it.
COMMANDS: dict[str, ModuleType] = {
    "express": express,
    "face3d": decoupled,
    "generate": generate,
    "mesh-info": mesh_info,
    "neutral": neutral,
    "prepare": prepare,
    "reconstruct": reconstruct,
    "animate": s2d,
    "transfer": s2d,
    "neutralize": s2d,
    "train-bundle": train_bundle,
    "view": view,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxface`` parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="jaxface", description=plain(__doc__.splitlines()[0]))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(COMMANDS.values()):  # a module may register several commands
        module.register(sub)
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
