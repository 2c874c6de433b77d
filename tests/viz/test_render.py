"""Tests for jaxface.viz.render."""

import numpy as np
import pytest
from PIL import Image

from jaxface.viz.render import (
    add_colorbar,
    contact_sheet,
    draw_points,
    face_buffer,
    fit_camera,
    project_points,
    render_mesh,
    save_png,
)

_SQUARE_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
_SQUARE_F = np.array([[0, 1, 2], [0, 2, 3]], np.int32)


def _non_background(img, bg=255):
    return np.any(img != bg, axis=-1)


def test_square_fills_the_frame():
    img = render_mesh(_SQUARE_V, _SQUARE_F, image_size=(40, 60))
    assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    mask = _non_background(img)
    # Square, framed with a margin, centred: covered rows/cols form a block in the middle.
    rows, cols = np.nonzero(mask)
    assert mask[20, 30] and not mask[0, 0] and not mask[20, 0]
    assert rows.max() - rows.min() == pytest.approx(cols.max() - cols.min(), abs=2)
    assert 0.3 < mask.mean() < 0.8
    # Facing the light head-on (+z normal), the default grey is lit, not black.
    assert img[20, 30].min() > 100


def test_z_buffer_keeps_the_nearest_surface():
    far = _SQUARE_V.copy()
    near = _SQUARE_V * [0.5, 0.5, 1] + [0.25, 0.25, 0.1]
    v = np.concatenate([far, near])
    f = np.concatenate([_SQUARE_F, _SQUARE_F + 4])
    colors = np.concatenate([np.tile([[0, 0, 1.0]], (4, 1)), np.tile([[1.0, 0, 0]], (4, 1))])
    img = render_mesh(v, f, image_size=64, colors=colors, ambient=1.0)
    center, corner = img[32, 32], img[10, 10]
    assert center[0] > 200 and center[2] < 50  # red square in front
    assert corner[2] > 200 and corner[0] < 50  # blue square behind, visible around it
    # Drawn in the other order the result is the same.
    img2 = render_mesh(v, f[::-1], image_size=64, colors=colors, ambient=1.0)
    np.testing.assert_array_equal(img, img2)


def test_heat_map_colours_and_colorbar():
    scalars = np.array([0.0, 1.0, 1.0, 0.0])  # x = 0 cold, x = 1 hot
    img = render_mesh(_SQUARE_V, _SQUARE_F, image_size=64, scalars=scalars, cmap="jet", ambient=1.0)
    left, right = img[32, 8].astype(int), img[32, 55].astype(int)
    assert left[2] > left[0]  # blue-ish
    assert right[0] > right[2]  # red-ish
    middle = img[32, 32].astype(int)
    assert middle[1] > max(middle[0], middle[2])  # per-pixel mapping shows the map's green
    with_bar = render_mesh(
        _SQUARE_V, _SQUARE_F, image_size=64, scalars=scalars, colorbar=True, colorbar_label="mm"
    )
    assert with_bar.shape[0] == 64 and with_bar.shape[1] > 64
    np.testing.assert_array_equal(with_bar[:, :64], render_mesh(
        _SQUARE_V, _SQUARE_F, image_size=64, scalars=scalars))
    bar = add_colorbar(np.zeros((50, 10, 3), np.uint8), 0.0, 2.0, width=40)
    assert bar.shape == (50, 50, 3) and _non_background(bar[:, 10:]).any()


def test_back_faces_are_tinted():
    back = render_mesh(_SQUARE_V, _SQUARE_F[:, ::-1], image_size=32, ambient=1.0)
    front = render_mesh(_SQUARE_V, _SQUARE_F, image_size=32, ambient=1.0)
    assert back[16, 16, 0] > back[16, 16, 2] + 40  # reddish inside
    assert abs(int(front[16, 16, 0]) - int(front[16, 16, 2])) < 20  # grey outside


def test_camera_projection_and_points():
    cam = fit_camera(_SQUARE_V, 100, margin=0.1)
    px, depth = project_points(_SQUARE_V, cam)
    np.testing.assert_allclose(px[0], [10, 90], atol=1e-6)  # (col, row): bottom-left corner
    np.testing.assert_allclose(px[2], [90, 10], atol=1e-6)
    np.testing.assert_allclose(depth, 0.0, atol=1e-12)
    side = fit_camera(_SQUARE_V, 100, yaw=90)
    _, d = project_points(np.array([[0, 0, 1.0], [0, 0, -1.0]]), side)
    assert d[0] == pytest.approx(d[1])  # z is sideways after a 90 degree yaw
    img = draw_points(np.full((100, 100, 3), 255, np.uint8), px, labels=["a", "b", "c", "d"])
    assert tuple(img[10, 90]) != (255, 255, 255)


def test_contact_sheet_and_png(tmp_path):
    tiles = [np.full((10, 20, 3), k * 40, np.uint8) for k in range(5)]
    sheet = contact_sheet(tiles, 3, pad=2)
    assert sheet.shape == (2 * 12 + 2, 3 * 22 + 2, 3)
    np.testing.assert_array_equal(sheet[2:12, 2 + 22 : 22 + 22], tiles[1])
    labelled = contact_sheet(tiles, 3, labels=[str(k) for k in range(5)])
    assert labelled.shape[0] > sheet.shape[0]
    with pytest.raises(ValueError):
        contact_sheet(tiles, 2, labels=["x"])
    path = tmp_path / "sub" / "sheet.png"
    save_png(path, labelled)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), labelled)
    with pytest.raises(ValueError, match="uint8"):
        save_png(path, labelled.astype(np.float32))


def test_face_buffer_gives_the_nearest_triangle_and_the_point_each_pixel_sees():
    near = _SQUARE_V * [0.5, 0.5, 1] + [0.25, 0.25, 0.1]
    v = np.concatenate([_SQUARE_V, near])
    f = np.concatenate([_SQUARE_F, _SQUARE_F + 4])
    camera = fit_camera(v, 48)
    face, bary = face_buffer(v, f, camera)
    assert face.shape == (48, 48) and bary.shape == (48, 48, 3)
    assert face[24, 24] in (2, 3) and face[5, 5] in (0, 1) and face[0, 0] == -1
    rows, cols = np.nonzero(face >= 0)
    seen = np.einsum("pk,pkc->pc", bary[rows, cols], v[f[face[rows, cols]]])
    pixels, _ = project_points(seen, camera)
    np.testing.assert_allclose(pixels, np.stack([cols + 0.5, rows + 0.5], axis=1), atol=1e-9)


def test_fit_camera_takes_a_rotation_in_place_of_yaw_and_pitch():
    yawed = fit_camera(_SQUARE_V, 32, yaw=30.0, pitch=-10.0)
    given = fit_camera(_SQUARE_V, 32, rotation=yawed.rotation)
    np.testing.assert_allclose(given.rotation, yawed.rotation)
    np.testing.assert_allclose(given.center, yawed.center)
    assert given.scale == pytest.approx(yawed.scale)
