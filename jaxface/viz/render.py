"""A small numpy triangle rasteriser for mesh previews and error heat maps.

The renderer is deliberately simple: an orthographic camera with a uniform scale (a weak-perspective
camera), a z-buffer, per-pixel interpolated vertex normals with Lambert shading, and per-vertex
colours or scalar fields mapped through a matplotlib colour map. Everything is vectorised numpy, so
a 7k-vertex face renders at 256x256 in a fraction of a second on one CPU core.

World convention: x right, y up, z toward the viewer (the camera looks down -z). Images are
``uint8 [H, W, 3]`` arrays with row 0 at the top.

Example:
  >>> import numpy as np
  >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
  >>> f = np.array([[0, 1, 2]], np.int32)
  >>> render_mesh(v, f, image_size=32).shape
  (32, 32, 3)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

__all__ = [
    "Camera",
    "add_colorbar",
    "add_title",
    "contact_sheet",
    "draw_points",
    "face_buffer",
    "fit_camera",
    "project_points",
    "render_mesh",
    "save_png",
    "vertex_normals",
]

_DEFAULT_MESH_COLOR = (0.80, 0.80, 0.82)
_BACKFACE_COLOR = (0.45, 0.20, 0.20)
_BACKGROUND = (255, 255, 255)


@dataclasses.dataclass(frozen=True)
class Camera:
    """An orthographic (weak-perspective) camera.

    A world point ``p`` maps to view coordinates ``q = rotation @ (p - center)``; its pixel
    coordinates are ``col = W/2 + scale * q_x`` and ``row = H/2 - scale * q_y`` and its depth is
    ``-q_z`` (smaller is closer to the viewer).

    Attributes:
      rotation: ``float64 [3, 3]`` world-to-view rotation.
      center: ``float64 [3]`` world point mapped to the image centre.
      scale: pixels per world unit.
      image_size: ``(height, width)`` in pixels.
    """

    rotation: np.ndarray
    center: np.ndarray
    scale: float
    image_size: tuple[int, int]


def _rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """World-to-view rotation: yaw about +y (positive turns the face to its left), then pitch."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    r_yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    r_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    return r_pitch @ r_yaw


def _image_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int | np.integer):
        return int(image_size), int(image_size)
    h, w = image_size
    return int(h), int(w)


def fit_camera(
    vertices: np.ndarray,
    image_size: int | tuple[int, int] = 256,
    *,
    yaw: float = 0.0,
    pitch: float = 0.0,
    margin: float = 0.06,
    rotation: np.ndarray | None = None,
) -> Camera:
    """Builds a camera that frames ``vertices`` seen from the given direction.

    Use one camera for all frames of a sequence (or all panels of a figure) so they share a scale.

    Args:
      vertices: ``float [..., N, 3]`` points to frame; leading axes (e.g. frames) are pooled.
      image_size: output size, an int for square images or ``(height, width)``.
      yaw: rotation about the vertical axis in degrees (positive shows the face's left side).
      pitch: rotation about the horizontal axis in degrees (positive tilts the top away).
      margin: fraction of the image kept free around the bounding box on each side.
      rotation: ``float [3, 3]`` world-to-view rotation (rows: the view's right, up and
        toward-the-viewer directions in world coordinates); replaces ``yaw`` and ``pitch``.

    Returns:
      A :class:`Camera`.
    """
    size = _image_size(image_size)
    pts = np.asarray(vertices, np.float64).reshape(-1, 3)
    rot = _rotation(yaw, pitch) if rotation is None else np.asarray(rotation, np.float64)
    q = pts @ rot.T
    lo, hi = q.min(axis=0), q.max(axis=0)
    center_view = 0.5 * (lo + hi)
    extent = np.maximum(hi - lo, 1e-12)
    h, w = size
    scale = min((1.0 - 2 * margin) * w / extent[0], (1.0 - 2 * margin) * h / extent[1])
    center = rot.T @ center_view
    return Camera(rotation=rot, center=center, scale=float(scale), image_size=size)


def project_points(points: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Projects world points to pixel coordinates.

    Args:
      points: ``float [..., 3]`` world points.
      camera: the :class:`Camera`.

    Returns:
      ``(pixels, depth)``: ``float64 [..., 2]`` as ``(col, row)`` and ``float64 [...]`` depth
      (smaller is closer).
    """
    p = np.asarray(points, np.float64)
    q = (p - camera.center) @ camera.rotation.T
    h, w = camera.image_size
    col = 0.5 * w + camera.scale * q[..., 0]
    row = 0.5 * h - camera.scale * q[..., 1]
    return np.stack([col, row], axis=-1), -q[..., 2]


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
      vertices: ``float [N, 3]``.
      faces: ``int [F, 3]`` counter-clockwise triangles.

    Returns:
      ``float64 [N, 3]`` unit normals (zero for isolated vertices).
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    norm = np.linalg.norm(vn, axis=-1, keepdims=True)
    return vn / np.maximum(norm, 1e-20)


def _scalar_range(
    scalars: np.ndarray, vmin: float | None, vmax: float | None
) -> tuple[np.ndarray, float, float]:
    """Scalars normalised to [0, 1] with the (possibly automatic) range."""
    s = np.asarray(scalars, np.float64)
    lo = float(np.nanmin(s)) if vmin is None else float(vmin)
    hi = float(np.nanmax(s)) if vmax is None else float(vmax)
    return np.clip((s - lo) / max(hi - lo, 1e-20), 0.0, 1.0), lo, hi


def _colormap(t: np.ndarray, cmap: str) -> np.ndarray:
    import matplotlib

    return np.asarray(matplotlib.colormaps[cmap](t))[..., :3]


def _rasterise(
    screen: np.ndarray, depth: np.ndarray, faces: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffered coverage: for every covered pixel, the nearest triangle and barycentrics.

    Returns:
      ``(pixel_index [P], face_index [P], bary [P, 3])`` for the P covered pixels (row-major
      flat pixel indices).
    """
    h, w = size
    tri = screen[faces]  # [F, 3, 2] pixel-centre coordinates (col, row)
    x0 = np.floor(tri[..., 0].min(axis=1) - 0.5).astype(np.int64) + 1
    x1 = np.floor(tri[..., 0].max(axis=1) - 0.5).astype(np.int64)
    y0 = np.floor(tri[..., 1].min(axis=1) - 0.5).astype(np.int64) + 1
    y1 = np.floor(tri[..., 1].max(axis=1) - 0.5).astype(np.int64)
    x0, y0 = np.maximum(x0, 0), np.maximum(y0, 0)
    x1, y1 = np.minimum(x1, w - 1), np.minimum(y1, h - 1)
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    valid = (bw > 0) & (bh > 0)
    # Signed area (twice) of each triangle in pixel space.
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    valid &= np.abs(area) > 1e-12
    idx = np.nonzero(valid)[0]
    order = idx[np.argsort(bw[idx] * bh[idx], kind="stable")]

    pix_all, face_all, bary_all, z_all = [], [], [], []
    start = 0
    cells = bw * bh
    budget = 1_000_000  # candidate pixels per chunk (bounds the temporary memory)
    while start < len(order):
        # Triangles are sorted by box size, so the last one of a chunk sets its padded grid size.
        stop = start + 1
        while stop < len(order):
            nxt = min(len(order), stop + (stop - start))
            if int(cells[order[nxt - 1]]) * (nxt - start) > budget:
                break
            stop = nxt
        chunk = order[start:stop]
        start = stop
        gw, gh = int(bw[chunk].max()), int(bh[chunk].max())
        ox, oy = np.meshgrid(np.arange(gw), np.arange(gh))
        px = x0[chunk, None] + ox.reshape(1, -1)  # [C, gw*gh]
        py = y0[chunk, None] + oy.reshape(1, -1)
        inside_box = (px <= x1[chunk, None]) & (py <= y1[chunk, None])
        cx, cy = px + 0.5, py + 0.5
        t = tri[chunk]
        a = area[chunk, None]
        w0 = ((t[:, 1, None, 0] - cx) * (t[:, 2, None, 1] - cy)
              - (t[:, 1, None, 1] - cy) * (t[:, 2, None, 0] - cx)) / a
        w1 = ((t[:, 2, None, 0] - cx) * (t[:, 0, None, 1] - cy)
              - (t[:, 2, None, 1] - cy) * (t[:, 0, None, 0] - cx)) / a
        w2 = 1.0 - w0 - w1
        eps = -1e-9
        inside = inside_box & (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        ci, pi = np.nonzero(inside)
        if ci.size == 0:
            continue
        fidx = chunk[ci]
        b = np.stack([w0[ci, pi], w1[ci, pi], w2[ci, pi]], axis=-1)
        z = np.einsum("pk,pk->p", b, depth[faces[fidx]])
        pix_all.append(py[ci, pi] * w + px[ci, pi])
        face_all.append(fidx)
        bary_all.append(b)
        z_all.append(z)
    if not pix_all:
        empty = np.zeros((0,), np.int64)
        return empty, empty, np.zeros((0, 3))
    pix = np.concatenate(pix_all)
    fid = np.concatenate(face_all)
    bary = np.concatenate(bary_all)
    z = np.concatenate(z_all)
    order = np.lexsort((z, pix))
    pix, fid, bary = pix[order], fid[order], bary[order]
    first = np.ones(pix.shape, bool)
    first[1:] = pix[1:] != pix[:-1]
    return pix[first], fid[first], bary[first]


def face_buffer(
    vertices: np.ndarray, faces: np.ndarray, camera: Camera
) -> tuple[np.ndarray, np.ndarray]:
    """Which triangle each pixel sees, and where: the z-buffer of :func:`render_mesh`.

    The camera is orthographic, so a pixel's barycentric coordinates in screen space are those
    of the 3D point it sees: ``vertices[faces[face]]`` weighted by them is that point.

    Args:
      vertices: ``float [N, 3]``.
      faces: ``int [F, 3]``.
      camera: the :class:`Camera`.

    Returns:
      ``(face int64 [H, W], barycentric float64 [H, W, 3])``: the nearest triangle at each
      pixel centre (``-1`` where no triangle is) and the pixel centre's barycentric
      coordinates in it.

    Example:
      >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
      >>> face, _ = face_buffer(v, np.array([[0, 1, 2]]), fit_camera(v, 16))
      >>> int((face == 0).sum()) > 0, int(face.min())
      (True, -1)
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    h, w = camera.image_size
    screen, depth = project_points(v, camera)
    pix, fid, bary = _rasterise(screen, depth, f, (h, w))
    face = np.full(h * w, -1, np.int64)
    weights = np.zeros((h * w, 3))
    face[pix] = fid
    weights[pix] = bary
    return face.reshape(h, w), weights.reshape(h, w, 3)


def render_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    camera: Camera | None = None,
    image_size: int | tuple[int, int] = 256,
    yaw: float = 0.0,
    pitch: float = 0.0,
    colors: np.ndarray | None = None,
    scalars: np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "jet",
    colorbar: bool = False,
    colorbar_label: str = "",
    light: Sequence[float] = (0.3, 0.4, 1.0),
    ambient: float = 0.25,
    background: Sequence[int] = _BACKGROUND,
) -> np.ndarray:
    """Renders a triangle mesh with Lambert shading.

    Args:
      vertices: ``float [N, 3]`` positions.
      faces: ``int [F, 3]`` counter-clockwise (outward-facing) triangles.
      camera: a camera from :func:`fit_camera`; by default the mesh is framed from
        ``yaw``/``pitch``.
      image_size: ``int`` or ``(height, width)`` used when ``camera`` is None.
      yaw: view yaw in degrees when ``camera`` is None.
      pitch: view pitch in degrees when ``camera`` is None.
      colors: optional ``float [N, 3]`` per-vertex RGB in [0, 1] (or ``uint8``).
      scalars: optional ``float [N]`` per-vertex values mapped through ``cmap`` (e.g. errors); takes
        precedence over ``colors``.
      vmin: lower end of the colour scale (default: min of ``scalars``).
      vmax: upper end of the colour scale (default: max of ``scalars``).
      cmap: matplotlib colour-map name for ``scalars``.
      colorbar: append a labelled colour bar on the right (only with ``scalars``).
      colorbar_label: text written above the colour bar (e.g. ``"mm"``).
      light: direction towards the light in view coordinates.
      ambient: ambient light fraction in [0, 1].
      background: RGB background colour.

    Returns:
      ``uint8 [H, W, 3]`` image (wider than ``image_size`` when ``colorbar`` is set).
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    if v.ndim != 2 or v.shape[-1] != 3:
        raise ValueError(f"vertices must be [N, 3], got {v.shape}")
    if f.ndim != 2 or f.shape[-1] != 3:
        raise ValueError(f"faces must be [F, 3], got {f.shape}")
    if camera is None:
        camera = fit_camera(v, image_size, yaw=yaw, pitch=pitch)
    h, w = camera.image_size

    lo = hi = 0.0
    unit = None
    if scalars is not None:
        # Scalars are interpolated per pixel and mapped afterwards, so a triangle spanning a wide
        # range shows the intermediate colours of the map.
        unit, lo, hi = _scalar_range(np.asarray(scalars).reshape(-1), vmin, vmax)
        if unit.shape[0] != v.shape[0]:
            raise ValueError(f"scalars must have {v.shape[0]} values, got {unit.shape[0]}")
        base = None
    elif colors is not None:
        base = np.asarray(colors, np.float64)
        if np.asarray(colors).dtype == np.uint8:
            base = base / 255.0
        base = np.broadcast_to(base, v.shape)
    else:
        base = np.broadcast_to(np.asarray(_DEFAULT_MESH_COLOR), v.shape)

    screen, depth = project_points(v, camera)
    normals_view = vertex_normals(v, f) @ camera.rotation.T
    pix, fid, bary = _rasterise(screen, depth, f, (h, w))

    image = np.empty((h * w, 3), np.float64)
    image[:] = np.asarray(background, np.float64) / 255.0
    if pix.size:
        tri_v = f[fid]
        n = np.einsum("pk,pkc->pc", bary, normals_view[tri_v])
        n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-20)
        if unit is not None:
            col = _colormap(np.einsum("pk,pk->p", bary, unit[tri_v]), cmap)
        else:
            col = np.einsum("pk,pkc->pc", bary, base[tri_v])
        # Triangles seen from behind (clockwise on screen; e.g. the inside of an open mouth).
        s = screen[f[fid]]
        e1, e2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
        back = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) > 0  # screen rows point down
        n[back] = -n[back]
        if scalars is None:
            col[back] = _BACKFACE_COLOR
        ldir = np.asarray(light, np.float64)
        ldir = ldir / np.linalg.norm(ldir)
        lambert = np.clip(n @ ldir, 0.0, 1.0)
        shade = ambient + (1.0 - ambient) * lambert
        image[pix] = np.clip(col * shade[:, None], 0.0, 1.0)
    out = (image.reshape(h, w, 3) * 255.0 + 0.5).astype(np.uint8)
    if colorbar and scalars is not None:
        out = add_colorbar(out, lo, hi, cmap=cmap, label=colorbar_label)
    return out


def add_colorbar(
    image: np.ndarray,
    vmin: float,
    vmax: float,
    *,
    cmap: str = "jet",
    label: str = "",
    width: int = 64,
    ticks: int = 5,
) -> np.ndarray:
    """Appends a vertical colour bar with tick labels to the right of an image.

    Args:
      image: ``uint8 [H, W, 3]``.
      vmin: value at the bottom of the bar.
      vmax: value at the top of the bar.
      cmap: matplotlib colour-map name.
      label: text above the bar.
      width: width in pixels of the added strip.
      ticks: number of tick labels.

    Returns:
      ``uint8 [H, W + width, 3]``.
    """
    from PIL import Image, ImageDraw

    h = image.shape[0]
    strip = np.full((h, width, 3), 255, np.uint8)
    top, bottom = max(int(0.1 * h), 12), h - max(int(0.06 * h), 6)
    bar_w = max(width // 5, 6)
    t = np.linspace(1.0, 0.0, bottom - top)
    rgb = (_colormap(t, cmap) * 255).astype(np.uint8)
    strip[top:bottom, 4 : 4 + bar_w] = rgb[:, None, :]
    pil = Image.fromarray(strip)
    draw = ImageDraw.Draw(pil)
    for k in range(ticks):
        frac = k / max(ticks - 1, 1)
        y = bottom - 1 - frac * (bottom - top - 1)
        value = vmin + frac * (vmax - vmin)
        draw.line([(4 + bar_w, y), (7 + bar_w, y)], fill=(0, 0, 0))
        draw.text((9 + bar_w, y - 5), f"{value:.3g}", fill=(0, 0, 0))
    if label:
        draw.text((2, max(top - 12, 0)), label, fill=(0, 0, 0))
    return np.concatenate([np.asarray(image, np.uint8), np.asarray(pil)], axis=1)


def draw_points(
    image: np.ndarray,
    pixels: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    color: Sequence[int] = (220, 30, 30),
    radius: int = 2,
) -> np.ndarray:
    """Draws markers (and optional text labels) at pixel positions.

    Args:
      image: ``uint8 [H, W, 3]``.
      pixels: ``float [P, 2]`` positions as ``(col, row)`` (from :func:`project_points`).
      labels: optional P strings written next to the markers.
      color: RGB marker colour.
      radius: marker radius in pixels.

    Returns:
      ``uint8 [H, W, 3]`` copy with the markers drawn.
    """
    from PIL import Image, ImageDraw

    pil = Image.fromarray(np.asarray(image, np.uint8).copy())
    draw = ImageDraw.Draw(pil)
    for k, (x, y) in enumerate(np.asarray(pixels, np.float64)):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=tuple(color))
        if labels is not None:
            draw.text((x + radius + 1, y - radius - 4), str(labels[k]), fill=(0, 0, 160))
    return np.asarray(pil)


def add_title(image: np.ndarray, title: str, *, height: int = 16) -> np.ndarray:
    """Adds a white strip with a text line above an image.

    Args:
      image: ``uint8 [H, W, 3]``.
      title: the text.
      height: strip height in pixels.

    Returns:
      ``uint8 [H + height, W, 3]``.
    """
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (image.shape[1], height), (255, 255, 255))
    ImageDraw.Draw(strip).text((3, 2), title, fill=(0, 0, 0))
    return np.concatenate([np.asarray(strip), np.asarray(image, np.uint8)], axis=0)


def contact_sheet(
    images: Sequence[np.ndarray],
    cols: int,
    *,
    labels: Sequence[str] | None = None,
    pad: int = 4,
    background: Sequence[int] = _BACKGROUND,
) -> np.ndarray:
    """Tiles images into a grid, optionally with a caption above each tile.

    Args:
      images: sequence of ``uint8 [H_i, W_i, 3]`` images (tiles are padded to the largest).
      cols: number of columns.
      labels: optional caption per image.
      pad: spacing in pixels between tiles.
      background: RGB fill colour.

    Returns:
      ``uint8 [rows * (H + pad) + pad, cols * (W + pad) + pad, 3]`` with ``H, W`` the largest tile
      size (captions included).
    """
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    tiles = [np.asarray(im, np.uint8) for im in images]
    if labels is not None:
        if len(labels) != len(tiles):
            raise ValueError(f"got {len(labels)} labels for {len(tiles)} images")
        tiles = [add_title(t, lab) for t, lab in zip(tiles, labels, strict=True)]
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    cols = max(1, min(int(cols), len(tiles)))
    rows = -(-len(tiles) // cols)
    sheet = np.empty((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), np.uint8)
    sheet[:] = np.asarray(background, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        sheet[y : y + t.shape[0], x : x + t.shape[1]] = t
    return sheet


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Writes a ``uint8 [H, W, 3]`` (or ``[H, W]``) image as PNG, creating parent folders.

    Args:
      path: destination file.
      image: the image.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"save_png expects uint8, got {arr.dtype}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(arr).save(os.fspath(path))
