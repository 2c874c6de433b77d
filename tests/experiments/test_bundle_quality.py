"""The bundle comparison of ``jaxface generate``'s models on unseen identities."""

import json

import numpy as np
import pytest

from experiments.motion3dgan import bundle_quality
from jaxface.data.performances import PerformanceConfig
from jaxface.generate import shipped_bundle


def test_roughness_is_the_mean_edge_difference():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(2, 5, 3))
    edges = np.array([[0, 1], [1, 2], [2, 4], [0, 3]])
    expected = [1000.0 * np.mean([np.linalg.norm(d[b, i] - d[b, j]) for i, j in edges])
                for b in range(2)]
    np.testing.assert_allclose(bundle_quality.roughness_mm(d, edges), expected)
    # a rigid translation is perfectly smooth
    assert bundle_quality.roughness_mm(np.ones((5, 3)), edges) == 0.0


def test_contour_roughness_is_zero_for_smooth_motion_and_sees_a_zigzag():
    loop = np.arange(8)
    angle = 2 * np.pi * loop / 8
    stretch = np.stack([np.cos(angle), np.sin(angle), np.zeros(8)], axis=-1) * 0.001
    # every vertex moves outwards along the circle: second differences of a regular polygon
    expected = 1000.0 * np.linalg.norm(np.roll(stretch, 1, 0) - 2 * stretch
                                       + np.roll(stretch, -1, 0), axis=-1).mean()
    assert bundle_quality.contour_roughness_mm(stretch, loop) == pytest.approx(expected)
    assert bundle_quality.contour_roughness_mm(np.ones((8, 3)), loop) == 0.0
    zigzag = np.zeros((8, 3))
    zigzag[::2, 2] = 0.001  # alternate vertices 1 mm out of the plane
    assert bundle_quality.contour_roughness_mm(zigzag, loop) == pytest.approx(2.0)


def test_the_mouth_loop_is_the_lowest_inner_boundary():
    from jaxface.data.template import load_face_template

    t = load_face_template(1)
    loop = bundle_quality.mouth_loop(t.vertices, t.faces)
    assert 10 < len(loop) < 200
    # the 8 inner-lip landmarks (iBUG 60-67) lie on the opening, within 3 mm of it
    lips = t.landmark_positions()[60:68]
    d = np.linalg.norm(lips[:, None] - t.vertices[loop][None], axis=-1).min(axis=1)
    assert d.max() < 0.003


def test_apex_is_the_frame_farthest_from_the_first():
    t = np.array([0.0, 0.2, 0.9, 0.4])
    frames = np.zeros((4, 3, 3)) + t[:, None, None]
    assert bundle_quality.apex_frame(frames) == 2


def test_dataset_config_adds_unseen_subjects(tmp_path):
    shipped = {"dataset": str(tmp_path / "gone"),
               "data": {"name": "faces4d", "config": "coma_scale_lite", "version": "2.0.0"}}
    config, new = bundle_quality.dataset_config(shipped, 3)
    assert config == PerformanceConfig(template_subdivisions=1, num_subjects=15)
    assert list(new) == [12, 13, 14]

    folder = tmp_path / "faces4d" / "tiny" / "2.0.0"
    folder.mkdir(parents=True)
    fields = {**PerformanceConfig.tiny().__dict__, "expressions": ["eyebrow", "mouth_open"]}
    (folder / "metadata.json").write_text(json.dumps({"performance_config": fields}))
    config, new = bundle_quality.dataset_config({"dataset": str(folder)}, 2)
    assert config.expressions == ("eyebrow", "mouth_open") and config.num_subjects == 5
    assert list(new) == [3, 4]

    with pytest.raises(ValueError, match="neither on this machine nor a faces4d 2.x"):
        bundle_quality.dataset_config({"dataset": "/nowhere", "data": {
            "name": "faces4d", "config": "coma_scale_lite", "version": "1.0.0"}}, 1)


@pytest.mark.skipif(shipped_bundle("default") is None, reason="no shipped default bundle")
def test_the_report_runs_on_the_shipped_bundle(tmp_path):
    results = bundle_quality.main(["--bundles", "default", "--subjects", "1", "--samples", "1",
                                   "--out", str(tmp_path)])
    row = results["default"]
    assert row["subjects"] == ["Proc_011_S"]
    assert set(row["per_expression"]) == set(PerformanceConfig().expressions)
    mean = row["mean"]
    assert 0.0 < mean["error_mm"] < 3.0 and 0.0 < mean["apex_error_mm"] < 6.0
    assert 0.0 <= mean["label_agreement"] <= 1.0 and mean["nearest_take_mm"] > 0.0
    assert mean["data_roughness_mm"] > 0.0 and mean["roughness_mm"] > 0.0
    assert 0.0 < mean["error_roughness_mm"] < mean["roughness_mm"]
    assert mean["lip_roughness_mm"] > 0.0 and mean["data_lip_roughness_mm"] > 0.0
    assert mean["sample_lip_roughness_mm"] > 0.0
    text = (tmp_path / "bundle_quality.md").read_text()
    assert "S2D-Dec on ground-truth landmarks" in text and "| **mean** |" in text
    saved = json.loads((tmp_path / "bundle_quality.json").read_text())
    assert saved["default"]["mean"] == pytest.approx(mean)
