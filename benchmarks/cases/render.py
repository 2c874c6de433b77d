"""The JAX renderer (:mod:`jaxface.render`): visibility, forward and forward+backward.

SMIRK's setting: 224x224 images, batch 16, the official camera, lights and grey albedo, on the
face template at 468 vertices / 852 triangles (``face0``) and 6990 / 13,632 (``face2``, the
size of a FLAME head: 5023 / 9976); quick runs take ``face0`` only. Each mesh of the batch is
the template with a little noise, scaled so the face fills about 80% of the image height. Three
jitted runs, interleaved:

* ``visible``: ``visible_faces`` (the z-buffer; no gradient);
* ``forward``: ``render`` (projection, visibility, barycentrics, shading);
* ``forward_backward``: the gradient of ``sum(image * g)`` for a fixed random ``g`` with
  respect to the vertices and the cameras.

Records give ms per image (``ms_per_image``), the work of the visibility loop (candidate pixels
in the triangles' boxes, tiles, loop steps) and the covered fraction of the image.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import JaxStep, interleave, memory_fields, output_and_grads, timing_fields
from benchmarks.fixtures import mesh_for

NAME = "render"

BATCH = 16
IMAGE_SIZE = 224


def _inputs(name: str, batch: int, seed: int = 0):
    """Template meshes with noise and cameras framing them; ``(vertices, faces, cams)``."""
    v, f = mesh_for(name)
    rng = np.random.default_rng(seed)
    vertices = v[None] + rng.normal(0.0, 1e-3, (batch, *v.shape)).astype(np.float32)
    height = float(v[:, 1].max() - v[:, 1].min())
    cams = np.tile([[1.6 / height, 0.0, -float(v[:, 1].mean())]], (batch, 1)).astype(np.float32)
    return jnp.asarray(vertices), f, jnp.asarray(cams)


def loop_work(vertices, faces, cams, image_size: int = IMAGE_SIZE) -> dict[str, float]:
    """Work of the visibility loop for these inputs: box pixels, tiles, steps per sweep."""
    from jaxface.render import DEFAULT_CHUNK_SIZE, project_orthographic
    from jaxface.render.rasterizer import _TILE, _triangle_table

    screen = project_orthographic(vertices, cams)
    _, tiles = jax.jit(lambda s: _triangle_table(s, faces, image_size, image_size))(screen)
    n_tiles = int(np.asarray(tiles, np.int64).sum())
    per_step = DEFAULT_CHUNK_SIZE // (_TILE[0] * _TILE[1])
    return {"tiles": n_tiles, "candidates": n_tiles * _TILE[0] * _TILE[1],
            "steps_per_sweep_min": max(-(-n_tiles // per_step), -(-tiles.shape[0] // per_step))}


def run(ctx) -> None:
    """Times the three runs per mesh; records ms per image and the loop's work."""
    from jaxface.render import render, visible_faces
    from jaxface.render.camera import project_orthographic

    meshes = ["face0"] if ctx.quick else ["face0", "face2"]
    rounds = ctx.rounds(7, 3)
    for name in meshes:
        vertices, faces, cams = _inputs(name, BATCH)
        g = jnp.asarray(np.random.default_rng(1).normal(
            size=(BATCH, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32))

        def visible(v, c):
            return visible_faces(project_orthographic(v, c), faces, IMAGE_SIZE)

        def forward(v, c):
            return render(v, faces, c, IMAGE_SIZE).image

        def forward_backward(v, c, g):
            return output_and_grads(forward, g, v, c)

        jitted = {"visible": (jax.jit(visible), (vertices, cams)),
                  "forward": (jax.jit(forward), (vertices, cams)),
                  "forward_backward": (jax.jit(forward_backward), (vertices, cams, g))}
        runners = {mode: JaxStep(mode, lambda f=f, a=a: f(*a), f, ctx.counter)
                   for mode, (f, a) in jitted.items()}
        timings = interleave(runners, rounds=rounds, warmup=1, counter=ctx.counter)
        covered = float(np.mean(np.asarray(jitted["visible"][0](vertices, cams)) >= 0))
        shape = {"mesh": name, "vertices": int(vertices.shape[1]), "faces": int(faces.shape[0]),
                 "batch": BATCH, "image_size": IMAGE_SIZE, "covered_fraction": covered,
                 **loop_work(vertices, faces, cams)}
        for mode, t in timings.items():
            f, args = jitted[mode]
            ctx.recorder.add(case=NAME, kind="timing", variant=mode, backend="jax",
                             dtype="float32", **shape, ms_per_image=1e3 * t.median_s / BATCH,
                             **timing_fields(t, batch=BATCH),
                             **runners[mode].fields(strict=True), **memory_fields(f, *args))
        ctx.log(f"    {name} ({shape['vertices']} vertices, {shape['faces']} faces): "
                + ", ".join(f"{mode} {1e3 * t.median_s / BATCH:.2f} ms/image"
                            for mode, t in timings.items()))
