"""Hierarchy and spiral build for a template: cold (empty cache) and cached.

For the face template at 1790, 6990 and 27,614 vertices (quick runs: 1790 only), with the
S2D-Dec parameters (four decimation steps by 4, Neural3DMM spirals, rings 2/2/1/1/1, dilations
2/2/1/1/1):

* ``cold``: :func:`jaxface.mesh.load_or_build_topology` into an empty cache folder (QSlim
  decimation, up-sampling weights, spirals, writing the ``.npz``), once;
* ``build_hierarchy`` and ``spirals_for``: the two parts timed on their own (not for the
  largest mesh, to keep the run short);
* ``cached``: the same call again, reading the cache file (median of several calls).
"""

from __future__ import annotations

import os
import tempfile
import time

from benchmarks.common import Timing, device_label, timing_fields
from benchmarks.fixtures import S2D_TOPOLOGY, mesh_for

NAME = "topology"


def run(ctx) -> None:
    """Times cold builds, their parts, and cached loads."""
    from jaxface.mesh import build_hierarchy, load_or_build_topology, spirals_for

    meshes = ["face1"] if ctx.quick else ["face1", "face2", "face3"]
    for name in meshes:
        v, f = mesh_for(name)
        shape = {"mesh": name, "vertices": int(v.shape[0]), "faces": int(f.shape[0])}
        common = {"case": NAME, "kind": "timing", "backend": "numpy", "device": device_label()}
        with tempfile.TemporaryDirectory(dir=ctx.scratch_dir) as cache:
            t0 = time.perf_counter()
            hierarchy, spirals, path = load_or_build_topology(v, f, cache_dir=cache,
                                                              **S2D_TOPOLOGY)
            cold = time.perf_counter() - t0
            extra = {"level_sizes": list(hierarchy.sizes),
                     "spiral_lengths": [int(s.shape[1]) for s in spirals],
                     "cache_file_bytes": os.path.getsize(path)}
            ctx.recorder.add(variant="cold", **common, **shape, **extra,
                             **timing_fields(Timing([cold])))
            if name != "face3":
                t0 = time.perf_counter()
                h = build_hierarchy(v, f, S2D_TOPOLOGY["factors"])
                t_h = time.perf_counter() - t0
                t0 = time.perf_counter()
                spirals_for(h, rings=S2D_TOPOLOGY["rings"], dilations=S2D_TOPOLOGY["dilations"])
                t_s = time.perf_counter() - t0
                ctx.recorder.add(variant="build_hierarchy", **common, **shape,
                                 **timing_fields(Timing([t_h])))
                ctx.recorder.add(variant="spirals_for", **common, **shape,
                                 **timing_fields(Timing([t_s])))
            times = []
            for _ in range(ctx.rounds(7, 3)):
                t0 = time.perf_counter()
                load_or_build_topology(v, f, cache_dir=cache, **S2D_TOPOLOGY)
                times.append(time.perf_counter() - t0)
            rec = ctx.recorder.add(variant="cached", **common, **shape, **extra,
                                   **timing_fields(Timing(times)))
        ctx.log(f"    {name} ({shape['vertices']} vertices): cold {cold:.2f} s, "
                f"cached {1e3 * rec['median_s']:.1f} ms")
