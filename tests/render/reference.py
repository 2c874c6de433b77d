"""An independent numpy reference of the renderer (float64, a plain loop over triangles).

Written from the renderer's specification, not from its code: pixel centres on pytorch3d's grid
(computed here with pytorch3d's own formula and its x/y flips), edge functions, a strict z-test
in face order (so the smallest index wins an exact tie), per-vertex normals by ``np.add.at``,
and the official five-light Lambertian shading.
"""

from __future__ import annotations

import dataclasses

import numpy as np

LIGHT_POSITIONS = np.array([[-1, 1, 1], [1, 1, 1], [-1, -1, 1], [1, -1, 1], [0, 0, 1]], float)
INTENSITY = 1.7
ALBEDO = 180.0 / 255.0


def pytorch3d_pixel_ndc(i: int, size: int, other: int) -> float:
    """pytorch3d's ``PixToNonSquareNdc(i, S1, S2)``: NDC of pixel index ``i`` along a side."""
    ndc_range = 2.0 * (size / other if size > other else 1.0)
    offset = ndc_range / 2.0
    return -offset + (ndc_range * i + offset) / size


def pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Screen ``(x, y)`` of pixel centres ``[H, W]``: pytorch3d samples pixel ``(yi, xi)`` at
    NDC ``(PixToNdc(W-1-xi), PixToNdc(H-1-yi))``, +x left and +y up; screen space is its
    negation."""
    xs = np.array([-pytorch3d_pixel_ndc(w - 1 - j, w, h) for j in range(w)])
    ys = np.array([-pytorch3d_pixel_ndc(h - 1 - i, h, w) for i in range(h)])
    return np.meshgrid(xs, ys)


@dataclasses.dataclass
class Raster:
    """Reference rasterisation of one mesh.

    Attributes:
      pix_to_face: ``[H, W]`` int, -1 background.
      bary: ``[H, W, 3]`` barycentrics (0 on background).
      zbuf: ``[H, W]`` depth (-1 on background).
      ambiguous: ``[H, W]`` bool: a pixel centre within ``tol`` (barycentric units) of an edge of
        a triangle that covers or nearly covers it, or two covering triangles within ``tol`` in
        depth: where float32 rounding may legitimately decide differently.
      conditioning: ``[H, W]`` ``L max(L, 1) / |2 area|`` of the visible triangle (``L`` its
        longest edge): float32 barycentrics of a sliver are off by up to a few float32 epsilons
        times this.
    """

    pix_to_face: np.ndarray
    bary: np.ndarray
    zbuf: np.ndarray
    ambiguous: np.ndarray
    conditioning: np.ndarray

    def bary_tolerance(self, atol: float = 1e-5) -> np.ndarray:
        """``[H, W]`` tolerance of float32 barycentrics: ``atol`` plus 16 float32 epsilons
        times the conditioning."""
        return atol + 16 * np.finfo(np.float32).eps * self.conditioning


def rasterize(screen: np.ndarray, faces: np.ndarray, h: int, w: int, tol: float = 1e-5) -> Raster:
    """Rasterises one mesh given in screen space (x right, y down, depth; see
    ``jaxface.render.camera``).

    Args:
      screen: ``[V, 3]`` screen vertices.
      faces: ``[F, 3]`` triangles.
      h: image height.
      w: image width.
      tol: ambiguity margin (barycentric units; depth units for depth ties).
    """
    screen = np.asarray(screen, np.float64)
    px, py = pixel_grid(h, w)
    zbuf = np.full((h, w), np.inf)
    second = np.full((h, w), np.inf)
    p2f = np.full((h, w), -1, np.int64)
    bary = np.zeros((h, w, 3))
    cond = np.zeros((h, w))
    ambiguous = np.zeros((h, w), bool)
    for f, (a, b, c) in enumerate(np.asarray(faces)):
        (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = screen[a], screen[b], screen[c]
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        if not np.isfinite(area) or abs(area) <= 1e-8:
            continue
        longest = max(np.hypot(x1 - x0, y1 - y0), np.hypot(x2 - x1, y2 - y1),
                      np.hypot(x0 - x2, y0 - y2))
        l0 = ((x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)) / area
        l1 = ((x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)) / area
        l2 = 1.0 - l0 - l1
        z = l0 * z0 + l1 * z1 + l2 * z2
        lo = np.minimum(np.minimum(l0, l1), l2)
        ambiguous |= (np.abs(lo) < tol) & (z >= 0)
        inside = (lo >= 0) & (z >= 0)
        nearer = inside & (z < zbuf)
        second = np.where(nearer, zbuf, np.where(inside, np.minimum(second, z), second))
        zbuf = np.where(nearer, z, zbuf)
        p2f = np.where(nearer, f, p2f)
        cond = np.where(nearer, longest * max(longest, 1.0) / abs(area), cond)
        bary = np.where(nearer[..., None], np.stack([l0, l1, l2], -1), bary)
    ambiguous |= (p2f >= 0) & (second < zbuf + tol)
    return Raster(p2f, bary, np.where(p2f >= 0, zbuf, -1.0), ambiguous, cond)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit area-weighted vertex normals (norm floored at 1e-6, as pytorch's normalize)."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces)
    n = np.zeros_like(v)
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    for k in range(3):
        np.add.at(n, f[:, k], face_n)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-6)


def shade(raster: Raster, vertices: np.ndarray, faces: np.ndarray,
          colors: np.ndarray | None = None) -> np.ndarray:
    """The official shading of a reference rasterisation: ``[H, W, 3]``."""
    normals = vertex_normals(vertices, faces)
    f = np.maximum(raster.pix_to_face, 0)
    tri = np.asarray(faces)[f]  # [H, W, 3]
    n = np.einsum("hwk,hwkc->hwc", raster.bary, normals[tri])
    lights = LIGHT_POSITIONS / np.linalg.norm(LIGHT_POSITIONS, axis=1, keepdims=True)
    shading = INTENSITY * np.clip(n @ lights.T, 0.0, 1.0).mean(-1)
    if colors is None:
        albedo = np.where(raster.pix_to_face[..., None] >= 0, ALBEDO, 0.0) * np.ones(3)
    else:
        albedo = np.einsum("hwk,hwkc->hwc", raster.bary, np.asarray(colors, float)[tri])
    return albedo * shading[..., None]


def project(vertices: np.ndarray, cam) -> np.ndarray:
    """SMIRK's projection: ``s (x + t)`` on x and y, ``s z`` on z; y and z negated, z + 10."""
    v = np.asarray(vertices, np.float64)
    s, tx, ty = (float(c) for c in cam)
    return np.stack([s * (v[:, 0] + tx), -s * (v[:, 1] + ty), 10.0 - s * v[:, 2]], axis=-1)
