r"""Registration of the face template to scans with a known answer, and the round trip of motion.

Ground truth: the face template deformed to another identity (faces4d's procedural subject 0 and
MediaPipe's canonical face, a real-proportioned face) is a face whose correspondence to the
template is known vertex by vertex. It is turned into a *scan* whose vertices are not the
template's:

* ``decimated``: fast_simplification (quadric decimation) to half the triangles;
* ``remeshed``: midpoint subdivision (until over 40k triangles), fast_simplification to 40k
  triangles (about 20k vertices), then every vertex slid along the surface by up to 0.3 mm
  (projected back onto the face), so that no vertex is one of the template's.

The scan is turned z-up, looking along -y, and written in millimetres (the registration does not
know the frame or the units). :func:`jaxface.data.scan.register_scan` registers the template
from its undeformed neutral, once with the 68 true iBUG landmarks and once with the landmarks
found on renders of the scan (MediaPipe FaceLandmarker); the registered vertices are compared
with the known deformed template (mm): mean, 95th percentile, max, beside the similarity alone
(landmarks + rigid ICP, the template undeformed).

Round trip (the models' level, 1790 vertices, the shipped ``default`` models): an expression
generated directly on the true neutral and carried to the scan's vertices through the *true*
correspondence (each scan vertex's closest point on the true face), against the command's path:
the template registered to the scan, the expression generated on the registered template and
carried back by the transfer map (:class:`jaxface.generate.ScanGenerator`). The error is the
per-vertex distance between the two displacement fields at the apex (frame 29) and over all
frames, in mm and relative to the motion.

Run from the repository root (about 5 minutes on two CPU cores)::

    python -m experiments.scan.registration_error --out experiments/scan/results

It writes ``registration_error.json`` and prints the tables of ``experiments/scan/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import fast_simplification
import numpy as np

from jaxface.data.canonical_face import load_canonical_face
from jaxface.data.procedural import ProceduralConfig, ProceduralFaces
from jaxface.data.scan import ScanLandmarks, detect_landmarks, register_scan
from jaxface.data.template import IBUG68_VERTICES, load_face_template
from jaxface.files import write_json
from jaxface.mesh.hierarchy import closest_points_on_mesh
from jaxface.mesh.registration import Similarity, rotation_about_axis
from jaxface.mesh.subdivision import subdivide

#: The scans' frame: z-up, the face looking along -y, millimetres.
SCAN_FRAME = Similarity(1000.0, rotation_about_axis([1.0, 0.0, 0.0], 90.0),
                        np.array([12.0, -30.0, 800.0]))
EXPRESSIONS = ("mouth_open", "high_smile", "eyebrow")


def identities(level: int) -> dict[str, np.ndarray]:
    """The true faces at a template level: ``name -> float64 [N, 3]`` (metres)."""
    procedural = ProceduralFaces(ProceduralConfig(num_subjects=1, template_subdivisions=level))
    return {"procedural_0": procedural.neutral(0).astype(np.float64),
            "canonical": load_canonical_face(level).astype(np.float64)}


def make_scan(truth: np.ndarray, faces: np.ndarray, kind: str, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """A scan of the true face whose vertices are not the template's: ``(vertices, faces)``."""
    faces = np.array(faces, np.int32)
    if kind == "decimated":
        return fast_simplification.simplify(truth, faces, target_reduction=0.5)
    v, f = truth, faces
    while len(f) <= 40_000:
        sub = subdivide(v, f, scheme="midpoint")
        v, f = sub.vertices, np.array(sub.faces, np.int32)
    v, f = fast_simplification.simplify(v, f, target_count=40_000)
    rng = np.random.default_rng(seed)
    face, bary, _ = closest_points_on_mesh(v + rng.uniform(-3e-4, 3e-4, v.shape), truth, faces)
    return np.einsum("pk,pkc->pc", bary, truth[faces[face]]), f


def _stats(err: np.ndarray) -> dict[str, float]:
    return {"mean": round(float(err.mean()), 3), "p95": round(float(np.percentile(err, 95)), 3),
            "max": round(float(err.max()), 3)}


def true_landmarks(truth: np.ndarray) -> ScanLandmarks:
    """The 68 iBUG landmarks of the true face in the scan's frame."""
    return ScanLandmarks(points=SCAN_FRAME.apply(truth[list(IBUG68_VERTICES)]),
                         template_indices=np.asarray(IBUG68_VERTICES, np.int32),
                         scheme="ibug68", source="true")


def registration_errors(level: int = 2) -> list[dict]:
    """Registration error of every identity, scan kind and landmark source at ``level``."""
    template = load_face_template(level)
    rows = []
    for name, truth in identities(level).items():
        for kind in ("decimated", "remeshed"):
            v, f = make_scan(truth, template.faces, kind)
            scan = SCAN_FRAME.apply(v)
            t0 = time.perf_counter()
            detected = detect_landmarks(scan, f)
            detect_s = time.perf_counter() - t0
            found = SCAN_FRAME.inverse().apply(detected.points)
            lm_err = 1000.0 * np.linalg.norm(found - truth[:468], axis=1)
            for source, marks in (("true 68", true_landmarks(truth)), ("detected", detected)):
                t0 = time.perf_counter()
                reg, _ = register_scan(scan, f, template.vertices, template.faces, marks)
                wall = time.perf_counter() - t0
                back = SCAN_FRAME.inverse().apply(reg.vertices)
                rigid = SCAN_FRAME.inverse().apply(reg.similarity.apply(template.vertices))
                row = {
                    "identity": name, "scan": kind, "scan_vertices": int(len(v)),
                    "template_vertices": int(len(truth)), "landmarks": source,
                    "error_mm": _stats(1000.0 * np.linalg.norm(back - truth, axis=1)),
                    "similarity_only_mm": _stats(1000.0 * np.linalg.norm(rigid - truth, axis=1)),
                    "residual_to_scan_mm": round(float(np.mean(reg.residual[reg.inliers])), 4),
                    "solves": reg.solves, "registration_s": round(wall, 1),
                    "timings_s": reg.timings, "load_average": round(os.getloadavg()[0], 1),
                }
                if source == "detected":
                    ok = np.isfinite(lm_err)
                    row["detected_landmarks"] = {
                        "present": int(ok.sum()),
                        "median_mm": round(float(np.median(lm_err[ok])), 2),
                        "p95_mm": round(float(np.percentile(lm_err[ok], 95)), 2),
                        "detect_s": round(detect_s, 1)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def round_trips(models: str | None = None) -> list[dict]:
    """Expressions through the scan path against the same expressions evaluated directly."""
    from jaxface.generate import ScanGenerator, find_models, load_generator

    generator = load_generator(find_models(models, "default", verbose=False).path)
    level = {468: 0, 1790: 1, 6990: 2}[generator.num_vertices]
    template = load_face_template(level)
    rows = []
    for name, truth in identities(level).items():
        v, f = make_scan(truth, template.faces, "remeshed")
        # The true correspondence: every scan vertex lies on the true face.
        face, bary, _ = closest_points_on_mesh(v, truth, template.faces)
        corners = template.faces[face]
        for source in ("true 68", "detected"):
            marks = None if source == "detected" else true_landmarks(truth)
            scan = ScanGenerator(generator, SCAN_FRAME.apply(v) / 1000.0, f,
                                 None if marks is None else marks.scaled(0.001))
            for expression in EXPRESSIONS:
                direct = generator.generate(truth.astype(np.float32), expression, 1, 0).meshes[0]
                motion = np.einsum("pk,tpkc->tpc", bary, (direct - truth)[:, corners])
                carried = scan.generate(None, expression, 1, 0).meshes[0] - scan.vertices
                carried = carried @ SCAN_FRAME.rotation  # back into the true face's frame
                err = 1000.0 * np.linalg.norm(carried - motion, axis=-1)  # [T, Vs]
                size = 1000.0 * np.linalg.norm(motion, axis=-1)
                row = {"identity": name, "landmarks": source, "expression": expression,
                       "scan_vertices": int(len(v)),
                       "apex_error_mm": _stats(err[-1]), "all_frames_error_mm": _stats(err),
                       "apex_motion_mm": {"mean": round(float(size[-1].mean()), 3),
                                          "max": round(float(size[-1].max()), 3)},
                       "relative_apex_error": round(float(err[-1].mean() / size[-1].mean()), 3),
                       "registration_s": round(scan.wall_s, 1)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    """Runs both measurements and writes ``registration_error.json`` into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--models", default=None, help="models for the round trip (default: "
                        "the shipped default models)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    result = {"registration": registration_errors(2), "round_trip": round_trips(args.models)}
    result["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                         "processor": platform.processor()}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    write_json(os.path.join(args.out, "registration_error.json"), result)
    print(f"wrote {os.path.join(args.out, 'registration_error.json')} in {result['wall_s']} s")


if __name__ == "__main__":
    main()
