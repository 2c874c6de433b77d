"""Training losses and evaluation distances."""

from jaxface.losses.s2d import landmark_distance_weights, s2d_loss
from jaxface.losses.sequences import masked_sequence_l1
from jaxface.losses.wgan import (
    frechet_distance,
    frechet_distance_from_stats,
    gradient_penalty,
    tangent_l1,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

__all__ = [
    "frechet_distance",
    "frechet_distance_from_stats",
    "gradient_penalty",
    "landmark_distance_weights",
    "masked_sequence_l1",
    "s2d_loss",
    "tangent_l1",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
]
