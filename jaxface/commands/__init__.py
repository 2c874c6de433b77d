"""The ``jaxface`` sub-commands: argument parsing and printing around the library.

Each module exposes ``register(subparsers)`` (adds its parser and sets ``func``) and is listed
in :data:`jaxface.cli.COMMANDS`. Only this package knows about flags; the library raises
``ValueError`` / ``OSError`` subclasses, which :func:`jaxface.cli.main` prints as one line.
"""

from jaxface.commands.errors import UserError

__all__ = ["UserError"]
