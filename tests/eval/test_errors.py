"""Tests of the per-vertex error metrics, summaries and result tables."""

import json

import numpy as np
import pytest

from jaxface.eval import (
    ErrorDistribution,
    cumulative_curve,
    format_results_table,
    per_vertex_errors_mm,
    summarize,
    write_results,
)


def test_per_vertex_errors_hand_computed():
    target = np.zeros((2, 3, 3))
    pred = np.array(
        [
            [[0.003, 0.004, 0.0], [0.0, 0.0, 0.0], [0.001, 0.002, 0.002]],
            [[-0.001, 0.0, 0.0], [0.0, 0.012, 0.005], [0.0, 0.0, -0.0025]],
        ]
    )
    expected = np.array([[5.0, 0.0, 3.0], [1.0, 13.0, 2.5]])
    np.testing.assert_allclose(per_vertex_errors_mm(pred, target), expected, rtol=1e-12)
    np.testing.assert_allclose(
        per_vertex_errors_mm(pred[0] + 1.0, target[0] + 1.0), expected[0], rtol=1e-9
    )
    with pytest.raises(ValueError):
        per_vertex_errors_mm(pred, target[:1])
    with pytest.raises(ValueError):
        per_vertex_errors_mm(pred[..., :2], target[..., :2])


def test_per_vertex_errors_match_numpy_reference(rng):
    pred = rng.standard_normal((4, 5, 50, 3)).astype(np.float32)
    target = rng.standard_normal((4, 5, 50, 3)).astype(np.float32)
    diff = pred.astype(np.float64) - target.astype(np.float64)
    expected = 1000.0 * np.sqrt(np.sum(diff**2, axis=-1))
    got = per_vertex_errors_mm(pred, target)
    assert got.shape == (4, 5, 50) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_summarize_hand_computed():
    summary = summarize(np.array([[1.0, 2.0], [3.0, 6.0]]))
    assert summary == {
        "mean": 3.0,
        "std": pytest.approx(np.sqrt(3.5)),
        "median": 2.5,
        "count": 4,
    }
    assert isinstance(summary["count"], int) and isinstance(summary["mean"], float)
    empty = summarize(np.zeros((0, 5)))
    assert empty["count"] == 0 and np.isnan(empty["mean"])


def test_cumulative_curve_exact_and_monotone(rng):
    thresholds, fraction = cumulative_curve(np.array([0.0, 0.5, 0.5, 1.0, 2.5]), 2.0, 5)
    np.testing.assert_allclose(thresholds, [0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(fraction, [0.2, 0.6, 0.8, 0.8, 0.8])

    errors = rng.gamma(2.0, 0.4, size=(30, 200))
    thresholds, fraction = cumulative_curve(errors, max_mm=4.0, num=81)
    assert thresholds.shape == fraction.shape == (81,)
    assert np.all(np.diff(fraction) >= 0)
    assert 0.0 <= fraction[0] and fraction[-1] <= 1.0
    expected = [(errors <= t).mean() for t in thresholds]
    np.testing.assert_allclose(fraction, expected)
    _, full = cumulative_curve(errors, max_mm=errors.max(), num=3)
    assert full[-1] == 1.0
    with pytest.raises(ValueError):
        cumulative_curve(errors, max_mm=1.0, num=0)


def test_error_distribution_matches_the_errors_and_pools_exactly(rng, tmp_path):
    folds = [rng.gamma(2.0, 0.3, size=(n, 50)) for n in (40, 7, 23)]
    parts = [ErrorDistribution.of(f) for f in folds]
    for f, part in zip(folds, parts, strict=True):
        got, want = part.summary(), summarize(f)
        assert got["count"] == want["count"]
        np.testing.assert_allclose([got["mean"], got["std"]], [want["mean"], want["std"]],
                                   rtol=1e-12)
        assert abs(got["median"] - want["median"]) <= 1e-3
    pooled = ErrorDistribution.pooled(parts)
    everything = np.concatenate([f.reshape(-1) for f in folds])
    got, want = pooled.summary(), summarize(everything)
    assert got["count"] == want["count"] == everything.size
    np.testing.assert_allclose([got["mean"], got["std"]], [want["mean"], want["std"]],
                               rtol=1e-12)
    assert abs(got["median"] - want["median"]) <= 1e-3
    for q in (0.1, 0.9):
        assert abs(pooled.quantile(q) - np.quantile(everything, q)) <= 1e-3
    assert pooled.quantile(0.0) <= everything.min() + 1e-3
    assert abs(pooled.quantile(1.0) - everything.max()) <= 1e-3
    # On bin edges the curve is exact (errors strictly below each threshold).
    thresholds, fraction = cumulative_curve(pooled, max_mm=2.0, num=201)
    np.testing.assert_allclose(fraction, [(everything < t).mean() for t in thresholds])
    path = tmp_path / "errors.npz"
    path.write_bytes(pooled.to_bytes())
    loaded = ErrorDistribution.load(path)
    assert loaded.summary() == pooled.summary()
    np.testing.assert_array_equal(loaded.counts, pooled.counts)
    assert path.stat().st_size < 20_000


def test_error_distribution_hand_cases_and_bad_input(tmp_path):
    d = ErrorDistribution.of(np.array([0.0, 1.0, 1.0, 4.0]), resolution_mm=1.0)
    np.testing.assert_array_equal(d.counts, [1, 2, 0, 0, 1])
    # The median's rank (2 of 4) falls half way through the [1, 2) bin's two errors.
    assert d.summary() == {"mean": 1.5, "std": 1.5, "median": 1.5, "count": 4}
    np.testing.assert_allclose(d.cumulative([0.0, 1.0, 2.0, 4.0, 5.0, 9.0]),
                               [0.0, 0.25, 0.75, 0.75, 1.0, 1.0])
    assert d.quantile(0.75) == 2.0  # the third value's bin ends at 2 mm
    empty = ErrorDistribution.pooled([ErrorDistribution.of(np.zeros(0))])
    assert empty.summary()["count"] == 0 and np.isnan(empty.summary()["median"])
    with pytest.raises(ValueError, match="non-negative"):
        ErrorDistribution.of(np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match="non-finite"):
        ErrorDistribution.of(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="one resolution"):
        ErrorDistribution.pooled([d, ErrorDistribution.of(np.ones(3))])
    with pytest.raises(ValueError, match="q must lie"):
        d.quantile(1.5)
    bad = tmp_path / "bad.npz"
    np.savez(bad, count=np.int64(5), mean=1.0, m2=0.0, counts=np.array([1, 2]),
             resolution_mm=1.0)
    with pytest.raises(ValueError, match="bad.npz: histogram holds 3 errors, count says 5"):
        ErrorDistribution.load(bad)
    np.savez(bad, count=np.int64(5))
    with pytest.raises(ValueError, match="not an error distribution"):
        ErrorDistribution.load(bad)


def test_results_table_and_files(tmp_path):
    a = {"mean": 0.756, "std": 0.731, "median": 0.5, "count": 10}
    b = {"mean": 0.9, "std": 0.84, "median": 0.61, "count": 12}
    results = {"PCA-220": {"Expr": a, "Id": b}, "DL-3DMM": {"Id": a}}
    table = format_results_table(results)
    assert table == (
        "| Method | Expr | Id |\n"
        "|---|---|---|\n"
        "| PCA-220 | 0.76 ± 0.73 | 0.90 ± 0.84 |\n"
        "| DL-3DMM | – | 0.76 ± 0.73 |\n"
    )
    with_median = format_results_table(results, ["Id"], decimals=1, median=True)
    assert with_median.splitlines()[2] == "| PCA-220 | 0.9 ± 0.8 (0.6) |"

    md_path, json_path = write_results(results, tmp_path / "out" / "table1.md", title="Table 1")
    assert md_path.read_text() == "# Table 1\n\n" + table
    assert json_path == tmp_path / "out" / "table1.json"
    assert json.loads(json_path.read_text()) == results
