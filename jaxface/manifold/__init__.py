"""SRVF representation of landmark motion and the geometry of its unit hypersphere.

Layout convention: an SRVF is ``[..., T, D]`` (frames x features, ``D = 204`` for 68 3D landmarks
flattened row-major), and its inner product is ``sum(q1 * q2) / T``.
"""

from jaxface.manifold.karcher import karcher_mean, reference_point
from jaxface.manifold.resample import resample_arclength, resample_arclength_np
from jaxface.manifold.sphere import (
    SphereConfig,
    exp_map,
    geodesic_distance,
    geodesic_path,
    inner,
    log_map,
    norm,
    project_to_sphere,
    project_to_tangent,
)
from jaxface.manifold.srvf import srvf, srvf_inverse, time_gradient

__all__ = [
    "SphereConfig",
    "exp_map",
    "geodesic_distance",
    "geodesic_path",
    "inner",
    "karcher_mean",
    "log_map",
    "norm",
    "project_to_sphere",
    "project_to_tangent",
    "reference_point",
    "resample_arclength",
    "resample_arclength_np",
    "srvf",
    "srvf_inverse",
    "time_gradient",
]
