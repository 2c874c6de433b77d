"""Tests of the cumulative-error plot."""

import matplotlib
import matplotlib.image
import numpy as np

from jaxface.eval import plot_cumulative_errors


def test_plot_cumulative_errors_writes_png(rng, tmp_path):
    backend = matplotlib.get_backend()
    errors = {
        "S2D-Dec": rng.gamma(2.0, 0.2, size=(5, 300)),
        "PCA-38": rng.gamma(2.0, 0.4, size=(5, 300)),
        "DL-3DMM": rng.gamma(2.0, 0.45, size=1500),
    }
    path = plot_cumulative_errors(
        errors, tmp_path / "plots" / "cumulative.png", max_mm=2.0, title="Expr", dpi=50
    )
    assert path == tmp_path / "plots" / "cumulative.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (250, 200)  # the default 5 x 4 inch figure at 50 dpi
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (200, 250)
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 3
    assert matplotlib.get_backend() == backend
