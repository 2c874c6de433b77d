"""Contact sheets of generated faces (rendered with :mod:`jaxface.viz.render`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxface.decoupled.codes import CodeModel
from jaxface.viz.render import contact_sheet, fit_camera, render_mesh

__all__ = ["label_grid", "render_sheet"]


def render_sheet(meshes: np.ndarray, faces: np.ndarray, cols: int, *,
                 labels: Sequence[str] | None = None, size: int = 160,
                 scalars: np.ndarray | None = None, vmax: float | None = None) -> np.ndarray:
    """Renders meshes ``[M, N, 3]`` from one frontal camera into a grid of ``cols`` columns.

    Args:
      meshes: the meshes.
      faces: int ``[F, 3]``.
      cols: columns of the grid.
      labels: a caption per mesh.
      size: tile size in pixels.
      scalars: optional float ``[M, N]`` per-vertex values drawn as colours (``viridis``, from 0
        to ``vmax``, default their maximum) instead of grey shading.
      vmax: top of the colour scale.

    Returns:
      ``uint8 [H, W, 3]``.
    """
    meshes = np.asarray(meshes)
    camera = fit_camera(meshes, int(size))
    if scalars is None:
        images = [render_mesh(m, faces, camera=camera) for m in meshes]
    else:
        top = float(np.max(scalars)) if vmax is None else float(vmax)
        images = [render_mesh(m, faces, camera=camera, scalars=s, vmin=0.0,
                              vmax=max(top, 1e-9), cmap="viridis")
                  for m, s in zip(meshes, scalars, strict=True)]
    return contact_sheet(images, int(cols), labels=labels)


def label_grid(model: CodeModel, identity_codes: np.ndarray, expression_codes: np.ndarray,
               faces: np.ndarray, identity_names: Sequence[str],
               expression_names: Sequence[str], *, identities: int, expressions: int,
               size: int = 160, change: bool = False) -> np.ndarray:
    """The faces of the first ``identities`` identity codes (rows) with the first
    ``expressions`` expression codes (columns), zero noise: a change along a row changes only
    ``z_exp``.

    With ``change``, every face is coloured by how far (mm) each vertex moved from the face of
    its row's first expression code (``viridis``, one scale for the sheet, its top in the
    captions), which shows where changing ``z_exp`` deforms the face.

    Returns:
      The ``uint8`` sheet.
    """
    ni = min(int(identities), identity_codes.shape[0])
    ne = min(int(expressions), expression_codes.shape[0])
    z_id = np.repeat(np.asarray(identity_codes[:ni]), ne, axis=0)
    z_exp = np.tile(np.asarray(expression_codes[:ne]), (ni, 1))
    meshes = model.meshes(z_id, z_exp, np.zeros((ni * ne, model.noise_dim), np.float32))
    labels = [f"{identity_names[i]} / {expression_names[j]}"
              for i in range(ni) for j in range(ne)]
    if not change:
        return render_sheet(meshes, faces, ne, labels=labels, size=size)
    grid = meshes.reshape(ni, ne, *meshes.shape[1:])
    moved = 1e3 * np.linalg.norm(grid - grid[:, :1], axis=-1).reshape(ni * ne, -1)
    top = float(moved.max())
    labels = [f"{label} (0-{top:.1f} mm)" if k % ne == 0 else label
              for k, label in enumerate(labels)]
    return render_sheet(meshes, faces, ne, labels=labels, size=size, scalars=moved, vmax=top)
