"""Neural-network layers on fixed mesh topologies: functional ops and thin Flax linen modules.

Topology (spiral indices, pooling arrays, geometry-image maps) is passed in as numpy constants,
never as parameters.
"""

from jaxface.nn.geometry_mapping import GeometryMapping, geometry_image
from jaxface.nn.pooling import Downsample, Upsample, downsample, upsample
from jaxface.nn.spiral_conv import (
    SPIRAL_IMPLS,
    SpiralConv,
    inverse_spiral_indices,
    resolve_spiral_impl,
    select_spiral_impl,
    spiral_conv,
    upsampled_spiral_table,
)

__all__ = [
    "SPIRAL_IMPLS",
    "Downsample",
    "GeometryMapping",
    "SpiralConv",
    "Upsample",
    "downsample",
    "geometry_image",
    "inverse_spiral_indices",
    "resolve_spiral_impl",
    "select_spiral_impl",
    "spiral_conv",
    "upsample",
    "upsampled_spiral_table",
]
