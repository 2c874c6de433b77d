"""The viewer page in a real browser: headless Chromium draws the face and its motion.

Chromium renders WebGL in software (SwiftShader) when there is no GPU. The test skips, saying
so, when no Chromium is installed (``apt-get install chromium`` on Debian; ``$CHROMIUM`` names
another binary).
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from jaxface.mesh.gltf import write_glb
from jaxface.viz.viewer import write_viewer
from tests.mesh.motion import jaw_motion

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_SIZE = (640, 480)
_BACKGROUND = np.array([245, 245, 247])    # the page's clear colour
_CONTROLS = 40                             # height of the control bar, pixels


def _chromium() -> str | None:
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named) or named
    return next((path for path in map(shutil.which, _NAMES) if path), None)


def _flags(browser: str, profile) -> list[str]:
    return [browser, "--headless", "--no-sandbox", "--hide-scrollbars", "--mute-audio",
            "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            f"--user-data-dir={profile}", f"--window-size={_SIZE[0]},{_SIZE[1]}",
            "--virtual-time-budget=3000"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium found (install Debian's chromium package, or set $CHROMIUM)")
    folder = tmp_path_factory.mktemp("viewer")
    frames, faces = jaw_motion(16, subdivisions=1)
    write_glb(folder / "sample_00.glb", frames, faces, fps=30.0)
    return browser, write_viewer(folder), folder


def screenshot(page, query: str) -> np.ndarray:
    browser, path, folder = page
    tag = query.replace("&", "_").replace("=", "-")
    shot = folder / f"shot-{tag}.png"
    profile = folder / f"profile-{tag}"
    done = subprocess.run([*_flags(browser, profile), f"--screenshot={shot}",
                           f"file://{path}?{query}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    state = subprocess.run([*_flags(browser, profile), "--dump-dom", f"file://{path}?{query}"],
                           capture_output=True, text=True, timeout=120).stdout
    assert 'data-state="ready"' in state, (
        "the page did not draw a frame: " + state[state.find("<body"):][:300])
    return np.asarray(Image.open(shot).convert("RGB"), np.int64)[_CONTROLS:]


def test_the_face_is_drawn_and_its_motion_and_heat_map_show(page):
    first = screenshot(page, "frame=0")
    assert first.shape[:2] == (_SIZE[1] - _CONTROLS, _SIZE[0])
    face = np.abs(first - _BACKGROUND).max(axis=-1) > 24
    assert face.mean() > 0.08, "the canvas is blank: no face was drawn"
    rows, cols = np.nonzero(face)
    assert abs(cols.mean() - _SIZE[0] / 2) < 60       # centred
    moved = screenshot(page, "frame=15")
    changed = np.abs(moved - first).max(axis=-1) > 24
    assert changed.mean() > 0.003, "the last frame looks like the first: nothing moved"
    lower = changed[int(rows.mean()):].sum()           # the jaw opens: the change is low
    assert lower > 0.6 * changed.sum()
    heat = screenshot(page, "frame=15&heat=1")
    red, green, blue = heat[..., 0], heat[..., 1], heat[..., 2]
    warm = (red > 80) & (red > 2 * blue + 40) & (red > green)    # the moved jaw: jet's red end
    cool = (blue > 60) & (blue > 2 * red + 40)                    # the still brow: its blue end
    assert warm.sum() > 500 and cool.sum() > 2000, "the heat map is not drawn"
    assert np.nonzero(warm)[0].mean() > np.nonzero(cool)[0].mean()   # warm below, cool above
