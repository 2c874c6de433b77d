r"""How much of a mesh survives down- then up-sampling: jaxface's hierarchies beside CoMA's.

S2D-Dec and Neural3DMM decode through a CoMA-style hierarchy: the decoder produces a coarse mesh
and each up-sampling step ``U_i`` interpolates the next finer one. How well ``U_i`` can
interpolate is bounded by the error of ``x -> U_i D_i x`` on the shapes the model outputs. For
a template and decimation factors (the paper's ``(4, 4, 4, 4)``) this reports, in mm:

* per **step** ``i`` alone: ``x_{i-1} -> U_i D_i x_{i-1}`` on level ``i-1`` (``x_{i-1}`` is
  the shape selected down to that level);
* per **level** ``i``: ``x -> U_1 ... U_i D_i ... D_1 x`` on the full mesh,

as the mean and the maximum over vertices, on the template and on real-ish shapes of its
topology, for every hierarchy:

* ``coma``: CoMA's algorithm as its code does it (:mod:`experiments.s2d.coma_sampling`);
* ``qslim`` and ``surface_distance``: :func:`jaxface.mesh.build_hierarchy`'s methods;
* ``published``: a ``downsampling_matrices.pkl`` given with ``--published`` (its level 0 is
  the template; CoMA's reference and jaxface's methods are built on that template too, with
  the file's level sizes).

Templates (``--meshes``):

* ``face1``, ``face2``: the face template at 1790 and 6990 vertices
  (:func:`jaxface.data.template.load_face_template`, an open mask with four boundary loops);
  shapes: six expressions of the ARKit basis at the frames of the captured performance where
  jawOpen, mouthSmile_L, mouthPucker, browInnerUp, eyeBlink_L and mouthLeft peak, and the
  neutral faces of four procedural subjects (:class:`jaxface.data.procedural.ProceduralFaces`).
* ``head5023``: a FLAME-size stand-in with FLAME's layout (FLAME itself is licence-gated):
  an ellipsoidal head with a nose and an open neck (4039 vertices) and two closed eyeballs of
  492 vertices, 5023 in all, so the levels have FLAME's sizes 5023/1256/314/79/20
  (:func:`head_with_eyes`); shapes: six smooth deformations (Gaussian bumps of 3-8 mm over
  2-4 cm on the face, eyeballs moved rigidly by up to 1 mm).

Run from the repository root (30 s on two CPU cores shared with other jobs, a minute when
they are busy)::

    python -m experiments.s2d.hierarchy_quality --out experiments/s2d/results
    python -m experiments.s2d.hierarchy_quality --published downsampling_matrices.pkl \
        --meshes= --out /tmp/published

It writes ``hierarchy_quality.md`` and ``hierarchy_quality.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from experiments.s2d.coma_sampling import coma_hierarchy, coma_up_sampling
from jaxface.data.expression_basis import load_expression_basis
from jaxface.data.procedural import ProceduralConfig, ProceduralFaces
from jaxface.data.template import load_face_template
from jaxface.files import write_atomic, write_json
from jaxface.machine import load_text, run_record
from jaxface.mesh import build_hierarchy
from jaxface.mesh.primitives import icosphere
from jaxface.mesh.published import load_published_hierarchy

__all__ = [
    "MESHES",
    "Sampling",
    "head_with_eyes",
    "main",
    "measure",
    "sampling_of",
    "template_and_shapes",
]

#: Templates measured by default.
MESHES = ("face1", "face2", "head5023")
#: The ARKit shapes whose peak frames of the captured performance are used as expressions.
PEAK_SHAPES = ("jawOpen", "mouthSmile_L", "mouthPucker", "browInnerUp", "eyeBlink_L",
               "mouthLeft")
#: jaxface's decimation methods that are compared with CoMA's.
OURS = ("qslim", "surface_distance")


class Sampling:
    """Down- and up-sampling arrays of one hierarchy, as gathers.

    Attributes:
      sizes: vertex count per level.
      down: per step ``i = 1..K``, int ``[n_i]`` kept level ``i-1`` vertices.
      up_indices: per step, int ``[n_{i-1}, 3]``.
      up_weights: per step, float ``[n_{i-1}, 3]``.
    """

    def __init__(self, down: Sequence[np.ndarray], up_indices: Sequence[np.ndarray],
                 up_weights: Sequence[np.ndarray]):
        self.down = [np.asarray(d, np.int64) for d in down]
        self.up_indices = [np.asarray(i, np.int64) for i in up_indices]
        self.up_weights = [np.asarray(w, np.float64) for w in up_weights]
        self.sizes = tuple([self.up_indices[0].shape[0]] + [d.shape[0] for d in self.down])

    def up(self, i: int, x: np.ndarray) -> np.ndarray:
        """``U_i x``: level ``i`` values ``[n_i, 3]`` to level ``i-1`` ``[n_{i-1}, 3]``."""
        return (x[self.up_indices[i - 1]] * self.up_weights[i - 1][..., None]).sum(axis=1)

    def weight_report(self) -> list[dict[str, float]]:
        """Per step: row-sum range of ``U``, rows whose sum is not 1, negative weights."""
        out = []
        for w in self.up_weights:
            sums = w.sum(axis=1)
            out.append({"row_sum_min": float(sums.min()), "row_sum_max": float(sums.max()),
                        "rows_not_summing_to_1": int((np.abs(sums - 1) > 1e-5).sum()),
                        "negative_weights": int((w < 0).sum())})
        return out


def sampling_of(hierarchy) -> Sampling:
    """The :class:`Sampling` of a :class:`jaxface.mesh.MeshHierarchy` or a CoMA reference."""
    if hasattr(hierarchy, "levels"):
        k = hierarchy.num_levels
        return Sampling([hierarchy.down_indices(i) for i in range(1, k)],
                        [hierarchy.up_indices(i) for i in range(1, k)],
                        [hierarchy.up_weights(i) for i in range(1, k)])
    return Sampling(hierarchy.down_indices, hierarchy.up_indices, hierarchy.up_weights)


def measure(sampling: Sampling, shape: np.ndarray) -> dict[str, list[dict[str, float]]]:
    """Errors of one shape through a hierarchy, in mm.

    Args:
      sampling: the hierarchy's arrays.
      shape: float ``[n_0, 3]`` vertices in metres.

    Returns:
      ``{"steps": [...], "levels": [...]}``, one ``{"mean", "max"}`` per step / level.
    """
    x = [np.asarray(shape, np.float64)]
    for d in sampling.down:
        x.append(x[-1][d])

    def error(a, b):
        dist = 1000.0 * np.linalg.norm(a - b, axis=1)
        return {"mean": float(dist.mean()), "max": float(dist.max())}

    steps = [error(sampling.up(i, x[i]), x[i - 1]) for i in range(1, len(x))]
    levels = []
    for i in range(1, len(x)):
        y = x[i]
        for j in range(i, 0, -1):
            y = sampling.up(j, y)
        levels.append(error(y, x[0]))
    return {"steps": steps, "levels": levels}


def _pool(per_shape: list[dict]) -> dict[str, list[dict[str, float]]]:
    """Mean of the per-shape means and maximum of the maxima."""
    out = {}
    for key in ("steps", "levels"):
        out[key] = [{"mean": float(np.mean([s[key][i]["mean"] for s in per_shape])),
                     "max": float(np.max([s[key][i]["max"] for s in per_shape]))}
                    for i in range(len(per_shape[0][key]))]
    return out


# ---------------------------------------------------------------------------------------
# Templates and shapes.


def _geodesic_sphere(frequency: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere: each icosahedron face cut into ``frequency**2`` triangles (outward)."""
    base_v, base_f = icosphere(0)
    base_v = base_v.astype(np.float64)
    points, triangles = [], []
    for a, b, c in base_f:
        index = {}
        for i in range(frequency + 1):
            for j in range(frequency + 1 - i):
                index[i, j] = len(points)
                points.append((i * base_v[a] + j * base_v[b] + (frequency - i - j) * base_v[c])
                              / frequency)
        for i in range(frequency):
            for j in range(frequency - i):
                triangles.append((index[i, j], index[i + 1, j], index[i, j + 1]))
                if i + j + 1 < frequency:
                    triangles.append((index[i + 1, j], index[i + 1, j + 1], index[i, j + 1]))
    points = np.asarray(points)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    _, first, inverse = np.unique(np.round(points * 1e9).astype(np.int64), axis=0,
                                  return_index=True, return_inverse=True)
    vertices = points[first]
    faces = inverse.ravel()[np.asarray(triangles)]
    normal = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]],
                      vertices[faces[:, 2]] - vertices[faces[:, 0]])
    inward = np.einsum("ij,ij->i", normal, vertices[faces].mean(axis=1)) < 0
    faces[inward] = faces[inward][:, ::-1]
    return vertices, faces


def head_with_eyes() -> tuple[np.ndarray, np.ndarray]:
    """A FLAME-size stand-in: an open head and two closed eyeballs, 5023 vertices.

    Metres, y up, z toward the viewer, like FLAME. The head is a geodesic sphere of frequency
    21 scaled to 0.156 x 0.21 x 0.196 m, with a nose and without its 373 lowest vertices (the
    neck opening): 4039 vertices. Each eyeball is a geodesic sphere of frequency 7 (492
    vertices) of radius 12.5 mm, its front 4 mm out of the head surface.

    Returns:
      ``(vertices float64 [5023, 3], faces int64 [F, 3])``, outward winding.
    """
    v, f = _geodesic_sphere(21)
    tilt = np.radians(7.0)  # no ring of vertices at one height, so the cut is a clean loop
    rotation = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)],
                         [0, np.sin(tilt), np.cos(tilt)]])
    v = v @ rotation.T * np.array([0.078, 0.105, 0.098])
    front = v[:, 2] > 0
    v[:, 2] += 0.018 * front * np.exp(-(v[:, 0] / 0.012) ** 2 - ((v[:, 1] + 0.005) / 0.025) ** 2)
    keep = np.ones(v.shape[0], bool)
    keep[np.argsort(v[:, 1], kind="stable")[:373]] = False
    f = f[keep[f].all(axis=1)]
    used = np.unique(f)
    remap = np.full(v.shape[0], -1, np.int64)
    remap[used] = np.arange(used.shape[0])
    parts_v, parts_f = [v[used]], [remap[f]]
    eye_v, eye_f = _geodesic_sphere(7)
    offset = used.shape[0]
    for side in (-1.0, 1.0):
        parts_v.append(0.0125 * eye_v + np.array([side * 0.033, 0.035, 0.073]))
        parts_f.append(eye_f + offset)
        offset += eye_v.shape[0]
    return np.concatenate(parts_v), np.concatenate(parts_f)


def _smooth_deformations(vertices: np.ndarray, faces: np.ndarray, count: int,
                         seed: int = 0) -> list[np.ndarray]:
    """Template plus Gaussian bumps on its largest component, other parts moved rigidly."""
    from jaxface.mesh.topology import connected_components

    rng = np.random.default_rng(seed)
    _, labels = connected_components(faces, vertices.shape[0])
    main = labels == np.bincount(labels).argmax()
    front = np.flatnonzero(main & (vertices[:, 2] > 0.3 * vertices[:, 2].max()))
    shapes = []
    for _ in range(count):
        shape = vertices.copy()
        for _ in range(3):
            centre = vertices[rng.choice(front)]
            radius = rng.uniform(0.02, 0.04)
            direction = rng.normal(size=3)
            direction *= rng.uniform(0.003, 0.008) / np.linalg.norm(direction)
            falloff = np.exp(-np.sum((vertices - centre) ** 2, axis=1) / radius ** 2)
            shape[main] += (falloff[:, None] * direction)[main]
        for label in np.unique(labels[~main]):
            shape[labels == label] += rng.uniform(-0.001, 0.001, size=3)
        shapes.append(shape)
    return shapes


def template_and_shapes(name: str) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], str]:
    """A named template, its real-ish shapes and what they are.

    Args:
      name: one of :data:`MESHES`.

    Returns:
      ``(vertices [N, 3], faces [F, 3], shapes (each [N, 3], metres), description)``.
    """
    if name in ("face1", "face2"):
        level = int(name[4:])
        template = load_face_template(level)
        vertices = np.asarray(template.vertices, np.float64)
        basis = load_expression_basis(level)
        frames = [int(np.argmax(basis.weights[:, basis.index(s)])) for s in PEAK_SHAPES]
        shapes = [vertices + basis.apply(basis.weights[t]).astype(np.float64) for t in frames]
        faces4d = ProceduralFaces(ProceduralConfig(template_subdivisions=level))
        shapes += [faces4d.neutral(s).astype(np.float64) for s in range(4)]
        what = (f"6 ARKit expressions (capture frames {frames}) and 4 procedural neutral "
                "faces")
        return vertices, np.asarray(template.faces, np.int64), shapes, what
    if name == "head5023":
        vertices, faces = head_with_eyes()
        return (vertices, faces, _smooth_deformations(vertices, faces, 6),
                "6 smooth deformations (3 Gaussian bumps each, eyeballs moved rigidly)")
    raise ValueError(f"unknown mesh {name!r}; choose from {', '.join(MESHES)}")


# ---------------------------------------------------------------------------------------
# Runs.


def _factors_for(sizes: Sequence[int]) -> tuple[float, ...]:
    """Factors with ``ceil(n_{i-1} / factor) == n_i`` for every step."""
    factors = []
    for prev, cur in zip(sizes[:-1], sizes[1:], strict=True):
        factor = prev / cur
        while math.ceil(prev / factor) > cur:
            factor = np.nextafter(factor, np.inf)
        factors.append(float(factor))
    return tuple(factors)


def _timed(build: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # relaxed checks at tiny levels
        result = build()
    return result, time.perf_counter() - start


def _other_parts(sampling: Sampling, labels: np.ndarray) -> list[int]:
    """Per level, the vertices kept on components other than the largest (e.g. eyeballs)."""
    main = np.bincount(labels).argmax()
    ids = np.arange(labels.shape[0])
    counts = [int((labels != main).sum())]
    for d in sampling.down:
        ids = ids[d]
        counts.append(int((labels[ids] != main).sum()))
    return counts


def compare(vertices: np.ndarray, faces: np.ndarray, shapes: list[np.ndarray],
            factors: Sequence[float], published: Sampling | None = None,
            methods: Sequence[str] = OURS) -> dict:
    """Builds every hierarchy of one template and measures them.

    Args:
      vertices: float ``[N, 3]`` template.
      faces: int ``[F, 3]``.
      shapes: real-ish shapes ``[N, 3]`` of the same topology.
      factors: decimation factor per step.
      published: a published hierarchy of this template, if any.
      methods: jaxface methods to build.

    Returns:
      ``{"hierarchies": ..., "diagnostics": ...}``. Per hierarchy name: ``sizes``,
      ``seconds`` (build), ``weights`` (:meth:`Sampling.weight_report`), ``other_parts``
      (:func:`_other_parts`), ``template`` and ``shapes`` (:func:`measure`). Diagnostics
      (template errors): ``coma_shifted``, CoMA's hierarchy on the template moved 10 cm
      along z (its up-sampling rows do not sum to 1, so it depends on where the origin is);
      ``qslim_coma_up``, the ``qslim`` levels with CoMA's up-sampling weights.
    """
    from jaxface.mesh.topology import connected_components

    built: dict[str, tuple[Sampling, float]] = {}
    if published is not None:
        built["published"] = (published, 0.0)
    coma, seconds = _timed(lambda: coma_hierarchy(vertices, faces, factors))
    built["coma"] = (sampling_of(coma), seconds)
    levels = {}
    for method in methods:
        hierarchy, seconds = _timed(
            lambda m=method: build_hierarchy(vertices, faces, factors, method=m))
        built[method] = (sampling_of(hierarchy), seconds)
        levels[method] = hierarchy
    _, labels = connected_components(faces, vertices.shape[0])
    out = {}
    for name, (sampling, seconds) in built.items():
        out[name] = {
            "sizes": list(sampling.sizes),
            "seconds": seconds,
            "weights": sampling.weight_report(),
            "other_parts": _other_parts(sampling, labels),
            "template": measure(sampling, vertices),
            "shapes": _pool([measure(sampling, s) for s in shapes]) if shapes else None,
        }
    diagnostics = {"coma_shifted": measure(built["coma"][0],
                                           vertices + np.array([0.0, 0.0, 0.1]))}
    if "qslim" in levels:
        h = levels["qslim"]
        up = [coma_up_sampling(h.vertices(i - 1), h.vertices(i), h.faces(i))
              for i in range(1, h.num_levels)]
        diagnostics["qslim_coma_up"] = measure(
            Sampling([h.down_indices(i) for i in range(1, h.num_levels)], [u[0] for u in up],
                     [u[1] for u in up]), vertices)
    return {"hierarchies": out, "diagnostics": diagnostics}


def _cell(entry: dict | None, kind: str, i: int) -> str:
    if entry is None:
        return "–"
    return f"{entry[kind][i]['mean']:.3f} ({entry[kind][i]['max']:.2f})"


def markdown(results: dict, meta: dict) -> str:
    """The report: one table per template and measured set, steps then levels."""
    lines = [
        "# Mesh hierarchies: reconstruction error through down- then up-sampling",
        "",
        f"Command: `{meta['command']}`. Machine: {meta['machine']}. Wall time "
        f"{meta['seconds']:.0f} s (load average {meta['load_before']} before, "
        f"{meta['load_after']} after).",
        "",
        "Cells: mean (max) over vertices in mm. *step i*: level i-1 -> level i -> level i-1 "
        "(`U_i D_i`); *level i*: the full mesh down to level i and back. On shapes, the mean "
        "of the per-shape means and the largest maximum. ratio: `surface_distance` / CoMA "
        "(means).",
        "",
    ]
    for mesh, res in results.items():
        names = list(res["hierarchies"])
        sizes = res["hierarchies"]["coma"]["sizes"]
        lines += [f"## {mesh} ({sizes[0]} vertices, factors {res['factors']})", ""]
        lines.append("Level sizes: " + "; ".join(
            f"{n} {'/'.join(map(str, res['hierarchies'][n]['sizes']))}" for n in names) + ". "
            "Build time: " + ", ".join(
                f"{n} {res['hierarchies'][n]['seconds']:.1f} s" for n in names if n != "published")
            + ".")
        lines.append("")
        for measured in ("template", "shapes"):
            if res["hierarchies"]["coma"][measured] is None:
                continue
            title = "template" if measured == "template" else f"shapes: {res['shapes']}"
            lines += [f"### {title}", "",
                      "| | " + " | ".join(names) + " | ratio |",
                      "|---|" + "---|" * (len(names) + 1)]
            for kind in ("steps", "levels"):
                for i in range(len(sizes) - 1):
                    label = (f"step {i + 1} ({sizes[i]}->{sizes[i + 1]})" if kind == "steps"
                             else f"level {i + 1} ({sizes[i + 1]})")
                    cells = [_cell(res["hierarchies"][n][measured], kind, i) for n in names]
                    ours = res["hierarchies"].get("surface_distance", {}).get(measured)
                    coma = res["hierarchies"]["coma"][measured]
                    ratio = (f"{ours[kind][i]['mean'] / coma[kind][i]['mean']:.2f}"
                             if ours is not None and coma[kind][i]["mean"] > 0 else "–")
                    lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
            lines.append("")
        if any(res["hierarchies"][n]["other_parts"][0] for n in names):
            lines += ["Vertices on the smaller components (eyeballs) per level: " + "; ".join(
                f"{n} {'/'.join(map(str, res['hierarchies'][n]['other_parts']))}"
                for n in names) + ".", ""]
        diag = res["diagnostics"]
        shifted = " ".join(f"{e['mean']:.3f}" for e in diag["coma_shifted"]["steps"])
        lines += [f"Template error per step of CoMA's hierarchy with the template moved 10 cm "
                  f"along z: {shifted} (its rows on edges do not sum to 1)."]
        if "qslim_coma_up" in diag:
            mixed = " ".join(f"{e['mean']:.3f}" for e in diag["qslim_coma_up"]["steps"])
            lines += [f"`qslim` levels with CoMA's up-sampling weights, per step: {mixed}."]
        lines += ["", "Up-sampling weights (per step: rows whose sum is not 1, negative weights):",
                  ""]
        for n in names:
            report = res["hierarchies"][n]["weights"]
            lines.append(f"- {n}: " + "; ".join(
                f"{w['rows_not_summing_to_1']} rows, {w['negative_weights']} negative "
                f"(sums {w['row_sum_min']:.3f}..{w['row_sum_max']:.3f})" for w in report))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry point (see the module docstring); returns the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("experiments", "s2d", "results"))
    parser.add_argument("--meshes", default=",".join(MESHES),
                        help=f"comma-separated templates among {', '.join(MESHES)}")
    parser.add_argument("--factors", default="4,4,4,4")
    parser.add_argument("--methods", default=",".join(OURS))
    parser.add_argument("--published", default=None,
                        help="a downsampling_matrices.pkl / transform.pkl to measure as well")
    args = parser.parse_args(argv)
    meshes = [m for m in args.meshes.split(",") if m]
    factors = tuple(float(f) for f in args.factors.split(","))
    methods = tuple(m for m in args.methods.split(",") if m)
    start, load_before = time.perf_counter(), load_text()
    results = {}
    for name in meshes:
        t0 = time.perf_counter()
        vertices, faces, shapes, what = template_and_shapes(name)
        results[name] = {"factors": list(factors), "shapes": what,
                         **compare(vertices, faces, shapes, factors, methods=methods)}
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    if args.published:
        published = load_published_hierarchy(args.published).hierarchy
        vertices = published.vertices(0).astype(np.float64)
        faces = published.faces(0).astype(np.int64)
        sizes = published.sizes
        results[os.path.basename(args.published)] = {
            "factors": list(_factors_for(sizes)), "shapes": "6 smooth deformations",
            **compare(vertices, faces, _smooth_deformations(vertices, faces, 6),
                      _factors_for(sizes), sampling_of(published), methods)}
    meta = run_record("python -m experiments.s2d.hierarchy_quality "
                      + " ".join(sys.argv[1:] if argv is None else argv), start, load_before)
    meta["machine"] += f", numpy {np.__version__}"
    write_json(os.path.join(args.out, "hierarchy_quality.json"), {"meta": meta, **results})
    write_atomic(os.path.join(args.out, "hierarchy_quality.md"),
                 markdown(results, meta).encode("utf-8"))
    print(f"wrote {args.out} in {meta['seconds']:.0f} s")
    return results


if __name__ == "__main__":
    main()
