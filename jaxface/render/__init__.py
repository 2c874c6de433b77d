"""A differentiable mesh rasteriser and shader in JAX: hard z-buffer visibility, barycentrics
recomputed differentiably from the projected vertices, an orthographic camera and Lambertian
shading, batched under ``jit``/``vmap``.
"""
