"""Orbax checkpoints with automatic resume from a work directory.

Checkpoints are written by orbax into a temporary folder and renamed when complete, so a run
killed at any moment (even with SIGKILL) leaves either a whole checkpoint or none. Restoring
always passes the abstract state so pytree structure (tuples in optax states) is kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxface.files import write_json

__all__ = ["CheckpointError", "Checkpoints", "write_config"]


class CheckpointError(OSError):
    """A checkpoint could not be read (corrupt, truncated or from another model)."""


class Checkpoints:
    """Saves and restores a training state in ``<workdir>/checkpoints``.

    Args:
      workdir: the run's work directory (made absolute; orbax needs absolute paths).
      save_every: save when ``step % save_every == 0`` (and always when ``force=True``).
      max_to_keep: how many checkpoints to keep.
      async_save: write in a background thread (the training loop keeps going).
    """

    def __init__(self, workdir: str, *, save_every: int = 1000, max_to_keep: int = 3,
                 async_save: bool = True):
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self.save_every = max(1, int(save_every))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            create=True,
            cleanup_tmp_directories=True,
            enable_async_checkpointing=async_save,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    @property
    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def restore_or(self, state: Any) -> tuple[Any, int]:
        """Returns ``(restored_state, step)`` from the latest checkpoint, or ``(state, 0)``.

        Args:
          state: a state of the right structure (concrete or abstract); its shardings are kept.

        Raises:
          CheckpointError: the latest checkpoint exists but cannot be read into ``state``.
        """
        step = self._manager.latest_step()
        if step is None:
            return state, 0
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        try:
            restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        except Exception as err:  # orbax raises many types for bad files
            raise CheckpointError(
                f"cannot restore checkpoint {os.path.join(self.directory, str(step))}: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''} "
                "(the checkpoint is corrupt or was written by a different model/config; "
                "delete it or use another work directory)"
            ) from err
        return restored, int(step)

    def save(self, step: int, state: Any, *, force: bool = False) -> bool:
        """Saves ``state`` at ``step`` when due (or when ``force``); returns whether it saved."""
        if not force and step % self.save_every:
            return False
        if self._manager.latest_step() == step:
            return False
        return bool(self._manager.save(step, args=ocp.args.StandardSave(state), force=True))

    def wait(self) -> None:
        """Blocks until background writes are finished."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self.wait()
        self._manager.close()


def write_config(workdir: str, config: Mapping[str, Any]) -> str:
    """Writes ``config.json`` next to the checkpoints (atomically); returns its path."""
    return write_json(os.path.join(os.path.abspath(workdir), "config.json"), dict(config))
