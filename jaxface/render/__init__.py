"""A differentiable mesh rasteriser and shader in JAX: hard z-buffer visibility, barycentrics
recomputed differentiably from the projected vertices, an orthographic camera and Lambertian
shading, batched under ``jit``/``vmap``.

It reproduces SMIRK's pytorch3d renderer (``rasterize_meshes`` with one face per pixel, blur 0,
no perspective correction, five directional lights, grey albedo); see ``docs/render.md``.
Submodules:

* :mod:`jaxface.render.camera`: ``project_orthographic`` (``cam = (s, tx, ty)``), the screen
  space and pixel grid;
* :mod:`jaxface.render.rasterizer`: ``visible_faces`` (the z-buffer, no gradient),
  ``fragments_at`` (differentiable barycentrics), ``rasterize``, ``interpolate``;
* :mod:`jaxface.render.shading`: ``vertex_normals``, ``lambertian``, ``shade_lambertian``;
* :mod:`jaxface.render.triangles`: ``front_facing``, ``face_normals_screen``,
  ``projected_area`` for sampling points on the visible surface;
* :mod:`jaxface.render.renderer`: ``render`` (all of it in one call).
"""

from jaxface.render.camera import (
    DEPTH_OFFSET,
    image_shape,
    pixel_centers,
    project_orthographic,
    screen_to_pixel,
)
from jaxface.render.rasterizer import (
    DEFAULT_CHUNK_SIZE,
    MIN_FACE_AREA,
    Fragments,
    fragments_at,
    interpolate,
    rasterize,
    visible_faces,
)
from jaxface.render.renderer import Rendered, render
from jaxface.render.shading import (
    ALBEDO,
    LIGHT_INTENSITY,
    OFFICIAL_LIGHTS,
    lambertian,
    shade_lambertian,
    vertex_normals,
)
from jaxface.render.triangles import (
    FRONT_FACING_THRESHOLD,
    face_normals_screen,
    front_facing,
    projected_area,
)

__all__ = [
    "ALBEDO",
    "DEFAULT_CHUNK_SIZE",
    "DEPTH_OFFSET",
    "FRONT_FACING_THRESHOLD",
    "LIGHT_INTENSITY",
    "MIN_FACE_AREA",
    "OFFICIAL_LIGHTS",
    "Fragments",
    "Rendered",
    "face_normals_screen",
    "fragments_at",
    "front_facing",
    "image_shape",
    "interpolate",
    "lambertian",
    "pixel_centers",
    "project_orthographic",
    "projected_area",
    "rasterize",
    "render",
    "screen_to_pixel",
    "shade_lambertian",
    "vertex_normals",
    "visible_faces",
]
