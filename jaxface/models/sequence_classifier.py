"""The expression classifier of Potamias et al. (ECCV 2020, Sec. 5.3): frame codes -> label.

Each frame of a sequence is projected on a PCA basis of the training motions (64 coefficients,
done by the caller); the codes of a fixed number of frames are concatenated and go through three
fully connected layers (ReLU between them) to the class logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

__all__ = ["FrameCodeClassifier"]


class FrameCodeClassifier(nn.Module):
    """Frame codes ``[B, T, K]`` -> class logits ``[B, num_classes]``.

    Attributes:
      num_classes: number of expression labels.
      hidden: widths of the first two dense layers (the third outputs the logits).
    """

    num_classes: int
    hidden: Sequence[int] = (256, 128)

    @nn.compact
    def __call__(self, codes: jax.Array) -> jax.Array:
        """Args: codes ``[B, T, K]``. Returns float32 logits ``[B, num_classes]``."""
        x = codes.reshape(codes.shape[0], -1)
        for i, width in enumerate(self.hidden):
            x = nn.relu(nn.Dense(width, name=f"dense_{i}")(x))
        return nn.Dense(self.num_classes, name="logits")(x)
