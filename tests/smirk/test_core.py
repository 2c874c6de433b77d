"""The core stage's perceptual features: their weights file.

The core step itself (sharded, finite, training only the expression encoder and the generator)
is tested through its driver in ``test_core_train.py``."""

import numpy as np
import pytest

from jaxface.smirk.core import PerceptualFeatures, perceptual_variables


def test_perceptual_weights_from_a_torchvision_state_dict(tmp_path):
    net = PerceptualFeatures()
    random = perceptual_variables({"weights": "", "seed": 0})
    shapes = [random["params"][f"conv{i}"]["kernel"].shape for i in range(10)]
    assert [s[-1] for s in shapes] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    rng = np.random.default_rng(0)
    torch_index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21]  # the convolutions of features[:23]
    state = {}
    for i, (h, w, cin, cout) in zip(torch_index, shapes, strict=True):
        state[f"features.{i}.weight"] = rng.normal(size=(cout, cin, h, w)).astype(np.float32)
        state[f"features.{i}.bias"] = rng.normal(size=cout).astype(np.float32)
    path = tmp_path / "vgg16.npz"
    np.savez(path, **state)
    loaded = perceptual_variables({"weights": str(path), "seed": 0})
    np.testing.assert_array_equal(loaded["params"]["conv3"]["kernel"],
                                  state["features.7.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(loaded["params"]["conv9"]["bias"], state["features.21.bias"])
    feats = net.apply(loaded, np.zeros((1, 16, 16, 3), np.float32))
    assert [f.shape for f in feats] == [(1, 16, 16, 64), (1, 8, 8, 128), (1, 4, 4, 256),
                                        (1, 2, 2, 512)]
    del state["features.19.bias"]
    np.savez(path, **state)
    with pytest.raises(ValueError, match="features.19.bias"):
        perceptual_variables({"weights": str(path), "seed": 0})
    with pytest.raises(FileNotFoundError, match="core.perceptual.weights"):
        perceptual_variables({"weights": str(tmp_path / "none.npz"), "seed": 0})
