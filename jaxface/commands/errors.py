"""The error a command raises for bad arguments."""

__all__ = ["UserError"]


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""
