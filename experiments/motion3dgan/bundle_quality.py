r"""How good the models of ``jaxface generate`` are, bundle beside bundle, on faces they never saw.

The ``default`` and ``quality`` bundles are trained on every subject of
``faces4d/coma_scale_lite`` (no held-out part), so this draws new identities from the same
generator the dataset came from: :class:`jaxface.data.performances.PerformanceFaces` with the
dataset's configuration and more subjects, whose subjects ``>= num_subjects`` are faces no bundle
saw (a subject's performances do not depend on how many subjects there are). For each bundle:

* **S2D-Dec on ground-truth landmarks**: every take of every expression of the new subjects
  (noise-free) is decoded from its own 68 landmarks onto its first frame
  (:meth:`jaxface.s2d.inference.S2DInference.animate_to_landmarks`); reported per expression as
  the mean vertex error over all frames, the mean error at the apex frame, and the
  **roughness** of the decoded motion at the apex: the mean over mesh edges of the difference
  of the displacements of the edge's two vertices, in mm, beside the same number for the ground
  truth, and the same for the error (decoded minus true displacement): a decoder that makes
  lips jagged adds an error that changes from one vertex to the next;
* **the lip contour**: the same, along the mouth opening (the template's lowest inner boundary
  loop): the mean second difference of the apex displacement from one contour vertex to the
  next, for the decoded takes, the data, and the generated samples (below);
* **Motion3DGAN's expressions**: ``--samples`` motions per expression generated on each new
  subject's neutral face; the landmark displacement of a sample's strongest frame is compared
  with the apex of every take of every expression of that subject: the share whose nearest
  take has the requested expression (label agreement) and the mean landmark distance to the
  nearest take of the requested expression (mm).

Run from the repository root (a few minutes per bundle on two CPU cores)::

    python -m experiments.motion3dgan.bundle_quality --bundles default,quality \
        --out experiments/motion3dgan/results

``--bundles`` takes recipe names of the shipped bundles or bundle folders. It writes
``bundle_quality.md`` and ``bundle_quality.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time

import numpy as np

from jaxface.data.performances import PerformanceConfig, PerformanceFaces
from jaxface.files import write_atomic, write_json
from jaxface.generate import FaceGenerator, load_generator, shipped_bundle
from jaxface.machine import load_text, run_record
from jaxface.mesh.topology import boundary_loops
from jaxface.mesh.topology import edges as mesh_edges

__all__ = ["apex_frame", "contour_roughness_mm", "dataset_config", "evaluate_bundle", "main",
           "mouth_loop", "roughness_mm"]


def roughness_mm(displacements: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean difference of the displacements of the two vertices of each edge.

    Args:
      displacements: float ``[..., N, 3]`` (metres).
      edges: int ``[E, 2]``.

    Returns:
      float64 ``[...]`` in mm.
    """
    d = np.asarray(displacements, np.float64)
    diff = d[..., edges[:, 0], :] - d[..., edges[:, 1], :]
    return 1000.0 * np.linalg.norm(diff, axis=-1).mean(axis=-1)


def mouth_loop(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """The vertices around the mouth opening, in order: of the template's inner boundary loops
    (all but the longest, the outer rim), the lowest one."""
    loops = boundary_loops(faces)
    if len(loops) < 2:
        raise ValueError(f"the template has {len(loops)} boundary loop(s), expected a mouth hole")
    return min(loops[1:], key=lambda loop: float(np.mean(vertices[loop, 1])))


def contour_roughness_mm(displacements: np.ndarray, loop: np.ndarray) -> np.ndarray:
    """Mean norm of the second difference of ``displacements [..., N, 3]`` along a closed
    ``loop`` of vertex indices, in mm: zero when the contour moves rigidly or stretches evenly,
    large when neighbouring contour vertices move in a zigzag."""
    d = np.asarray(displacements, np.float64)[..., loop, :]
    second = np.roll(d, 1, axis=-2) - 2.0 * d + np.roll(d, -1, axis=-2)
    return 1000.0 * np.linalg.norm(second, axis=-1).mean(axis=-1)


def apex_frame(frames: np.ndarray) -> int:
    """The frame of ``frames [T, M, 3]`` farthest (mean point distance) from frame 0."""
    frames = np.asarray(frames, np.float64)
    return int(np.argmax(np.linalg.norm(frames - frames[:1], axis=-1).mean(axis=-1)))


#: The 2.x configurations of ``faces4d`` a bundle may be trained on, for bundles whose dataset
#: folder is not on this machine (the shipped ones); ``datasets_tfds/faces4d`` defines the same.
_CONFIGS = {
    "tiny": PerformanceConfig.tiny,
    "coma_scale": PerformanceConfig,
    "coma_scale_lite": functools.partial(PerformanceConfig, template_subdivisions=1),
}


def dataset_config(manifest: dict, num_new: int) -> tuple[PerformanceConfig, range]:
    """The performance configuration of a bundle's dataset, with ``num_new`` more subjects.

    Read from the dataset folder the manifest names when it exists, else from the bundle's
    recorded dataset config (faces4d 2.x only).

    Returns:
      ``(config, new_subjects)``: the configuration and the indices of the new subjects.
    """
    meta_path = os.path.join(manifest["dataset"], "metadata.json")
    data = manifest.get("data", {})
    if os.path.isfile(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            fields = json.load(f).get("performance_config")
        if fields is None:
            raise ValueError(f"{meta_path}: not a faces4d 2.x dataset (no performance_config)")
        config = PerformanceConfig(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in fields.items()})
    elif data.get("name") == "faces4d" and str(data.get("version", "")).startswith("2.") \
            and data.get("config") in _CONFIGS:
        config = _CONFIGS[data["config"]]()
    else:
        raise ValueError(f"the bundle's dataset {manifest['dataset']} is neither on this machine "
                         "nor a faces4d 2.x configuration")
    trained = config.num_subjects
    config = dataclasses.replace(config, num_subjects=trained + num_new)
    return config, range(trained, trained + num_new)


def evaluate_bundle(generator: FaceGenerator, *, num_subjects: int = 4, samples: int = 4,
                    seed: int = 0) -> dict:
    """The measurements of the module docstring for one loaded bundle.

    Args:
      generator: the bundle (:func:`jaxface.generate.load_generator`).
      num_subjects: new identities to measure on.
      samples: Motion3DGAN samples per expression and subject.
      seed: sampling seed.

    Returns:
      ``{"per_expression": {name: {...}}, "mean": {...}, "subjects": [...]}``.
    """
    config, subjects = dataset_config(generator.manifest, num_subjects)
    faces = PerformanceFaces(config)
    if faces.template.vertices.shape[0] != generator.num_vertices:
        raise ValueError(f"the bundle has {generator.num_vertices} vertices, the dataset's "
                         f"template {faces.template.vertices.shape[0]}")
    s2d = generator.s2d
    edges = mesh_edges(generator.faces)
    mouth = mouth_loop(generator.s2d.vertices, generator.faces)
    names = generator.expressions
    rows: dict[str, dict[str, list[float]]] = {n: {} for n in names}

    def add(name: str, key: str, value: float) -> None:
        rows[name].setdefault(key, []).append(float(value))

    for subject in subjects:
        apex_lms: list[np.ndarray] = []   # per take: landmark displacement at the apex [68, 3]
        apex_label: list[int] = []
        neutral = faces.neutral(subject)  # every noise-free take starts from it
        for label, name in enumerate(names):
            for take in range(config.takes):
                frames = faces.sequence(subject, name, take, noise=False)
                lms = s2d.landmarks_of(frames)
                pred = s2d.animate_to_landmarks(frames[0], lms)
                err = 1000.0 * np.linalg.norm(pred - frames, axis=-1).mean(axis=-1)
                apex = apex_frame(frames)
                add(name, "error_mm", err.mean())
                add(name, "apex_error_mm", err[apex])
                add(name, "roughness_mm", roughness_mm(pred[apex] - frames[0], edges))
                add(name, "data_roughness_mm", roughness_mm(frames[apex] - frames[0], edges))
                add(name, "error_roughness_mm", roughness_mm(pred[apex] - frames[apex], edges))
                add(name, "lip_roughness_mm", contour_roughness_mm(pred[apex] - frames[0], mouth))
                add(name, "data_lip_roughness_mm",
                    contour_roughness_mm(frames[apex] - frames[0], mouth))
                apex_lms.append(lms[apex] - lms[0])
                apex_label.append(label)
        takes = np.stack(apex_lms)                          # [L * takes, 68, 3]
        labels = np.asarray(apex_label)
        for label, name in enumerate(names):
            out = generator.generate(neutral, name, samples, seed=seed + subject)
            for lm, meshes in zip(out.landmarks, out.meshes, strict=True):  # [T, 68|N, 3]
                apex = apex_frame(lm)
                add(name, "sample_lip_roughness_mm",
                    contour_roughness_mm(meshes[apex] - meshes[0], mouth))
                disp = lm[apex] - lm[0]
                dist = 1000.0 * np.linalg.norm(takes - disp[None], axis=-1).mean(axis=-1)
                add(name, "label_agreement", labels[np.argmin(dist)] == label)
                add(name, "nearest_take_mm", dist[labels == label].min())
    per = {n: {k: float(np.mean(v)) for k, v in r.items()} for n, r in rows.items()}
    keys = next(iter(per.values())).keys()
    mean = {k: float(np.mean([per[n][k] for n in names])) for k in keys}
    return {"per_expression": per, "mean": mean,
            "subjects": [faces.subject_names[s] for s in subjects], "takes": config.takes,
            "samples": samples}


def _resolve(bundle: str) -> str:
    path = shipped_bundle(bundle) if not os.path.isdir(bundle) else bundle
    if path is None:
        raise SystemExit(f"{bundle}: neither a bundle folder nor a shipped recipe")
    return path


def markdown(results: dict[str, dict], meta: dict) -> str:
    """The report: one table per measurement, bundles side by side."""
    bundles = list(results)
    names = list(next(iter(results.values()))["per_expression"])
    first = results[bundles[0]]
    lines = [
        "# The models of `jaxface generate`, bundle beside bundle",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; {meta['seconds']:.0f} s; load average before "
        f"{meta['load_before']}, after {meta['load_after']}.",
        "",
        f"New identities (no bundle saw them): {', '.join(first['subjects'])}, "
        f"{first['takes']} takes of each expression; Motion3DGAN: {first['samples']} samples "
        "per expression and identity.",
        "",
    ]
    for b in bundles:
        m = manifest_line(results[b]["manifest"])
        lines.append(f"- `{b}`: {m}")
    lines.append("")
    tables = [
        ("S2D-Dec on ground-truth landmarks: mean vertex error over all frames (mm)",
         "error_mm", None),
        ("S2D-Dec at the apex frame: vertex error (mm)", "apex_error_mm", None),
        ("Roughness of the decoded apex displacement (mm; the data's in the last column)",
         "roughness_mm", "data_roughness_mm"),
        ("Roughness of the apex error (decoded minus true; mm): what the decoder adds that "
         "varies from vertex to vertex", "error_roughness_mm", None),
        ("Lip contour: roughness of the apex displacement along the mouth opening (second "
         "difference, mm), decoded from true landmarks; the data's in the last column",
         "lip_roughness_mm", "data_lip_roughness_mm"),
        ("Lip contour of generated samples (the same measure at the apex of Motion3DGAN's "
         "motions decoded by S2D-Dec, mm)", "sample_lip_roughness_mm", None),
        ("Motion3DGAN: label agreement of the samples' apex with the nearest take (%)",
         "label_agreement", None),
        ("Motion3DGAN: landmark distance of the samples' apex to the nearest take of the "
         "expression (mm)", "nearest_take_mm", None),
    ]
    for title, key, extra in tables:
        scale = 100.0 if key == "label_agreement" else 1.0
        head = "| expression | " + " | ".join(f"`{b}`" for b in bundles)
        head += " | data |" if extra else " |"
        lines += [f"**{title}**", "", head,
                  "|---|" + "---:|" * (len(bundles) + bool(extra))]
        for n in [*names, "mean"]:
            cells = []
            for b in bundles:
                row = results[b]["mean"] if n == "mean" else results[b]["per_expression"][n]
                cells.append(f"{scale * row[key]:.{1 if scale > 1 else 3}f}")
            if extra:
                row = first["mean"] if n == "mean" else first["per_expression"][n]
                cells.append(f"{row[extra]:.3f}")
            label = "**mean**" if n == "mean" else n
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def manifest_line(manifest: dict) -> str:
    """What a bundle was trained on and for how long, in one line."""
    m, s = manifest["motion3dgan"], manifest["s2d"]
    data = manifest.get("data") or {}
    dataset = "/".join(str(data[k]) for k in ("name", "config", "version")) if data else \
        manifest["dataset"]
    return (f"recipe {manifest['recipe']}, {dataset}; "
            f"Motion3DGAN {m['steps']} steps, S2D-Dec {s['steps']} steps "
            f"(training {manifest.get('wall_s', 0) / 60:.0f} min)")


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry point (see the module docstring); returns the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundles", default="default,quality",
                        help="comma-separated shipped recipes or bundle folders")
    parser.add_argument("--subjects", type=int, default=4, help="new identities")
    parser.add_argument("--samples", type=int, default=4,
                        help="Motion3DGAN samples per expression and identity")
    parser.add_argument("--out", default=os.path.join("experiments", "motion3dgan", "results"))
    args = parser.parse_args(argv)
    start, load_before = time.perf_counter(), load_text()
    results = {}
    for bundle in (b for b in args.bundles.split(",") if b):
        t0 = time.perf_counter()
        generator = load_generator(_resolve(bundle))
        results[bundle] = evaluate_bundle(generator, num_subjects=args.subjects,
                                          samples=args.samples)
        results[bundle]["manifest"] = {k: generator.manifest.get(k) for k in (
            "recipe", "dataset", "data", "motion3dgan", "s2d", "wall_s")}
        print(f"{bundle}: {time.perf_counter() - t0:.0f} s", flush=True)
    meta = run_record("python -m experiments.motion3dgan.bundle_quality "
                      + " ".join(sys.argv[1:] if argv is None else argv), start, load_before)
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "bundle_quality.json"), {"meta": meta, **results})
    write_atomic(os.path.join(args.out, "bundle_quality.md"),
                 markdown(results, meta).encode("utf-8"))
    print(f"wrote {args.out} in {meta['seconds']:.0f} s")
    return results


if __name__ == "__main__":
    main()
