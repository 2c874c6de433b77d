"""Reading timm-named MobileNetV3 weights: the layout conversions, scopes and prefixes, and the
errors for a missing file, a missing key or a shape that differs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.models import FaceEncoder, MobileNetV3Minimal, load_timm_weights
from tests.models.mobilenet_tables import TABLES


def _fake_state_dict(variant, seed=0, prefix=""):
    """Random arrays under timm's ``state_dict`` names and PyTorch layouts, from the tables."""
    rng = np.random.default_rng(seed)
    sd = {}

    def conv(name, out, cin, k):
        sd[f"{prefix}{name}.weight"] = rng.standard_normal((out, cin, k, k)).astype(np.float32)

    def bn(name, c):
        for key, value in (("weight", 1 + 0.1 * rng.standard_normal(c)),
                           ("bias", rng.standard_normal(c)),
                           ("running_mean", rng.standard_normal(c)),
                           ("running_var", rng.uniform(0.5, 2.0, c))):
            sd[f"{prefix}{name}.{key}"] = value.astype(np.float32)
        sd[f"{prefix}{name}.num_batches_tracked"] = np.array(7, np.int64)

    conv("conv_stem", 16, 3, 3)
    bn("bn1", 16)
    cin = 16
    for s, stage in enumerate(TABLES[variant]):
        for b, (kind, _, mid, out) in enumerate(stage):
            at = f"blocks.{s}.{b}"
            if kind == "ds":
                conv(f"{at}.conv_dw", cin, 1, 3), bn(f"{at}.bn1", cin)
                conv(f"{at}.conv_pw", out, cin, 1), bn(f"{at}.bn2", out)
            elif kind == "ir":
                conv(f"{at}.conv_pw", mid, cin, 1), bn(f"{at}.bn1", mid)
                conv(f"{at}.conv_dw", mid, 1, 3), bn(f"{at}.bn2", mid)
                conv(f"{at}.conv_pwl", out, mid, 1), bn(f"{at}.bn3", out)
            else:
                conv(f"{at}.conv", out, cin, 1), bn(f"{at}.bn1", out)
            cin = out
    return sd


def _init(module, size=32):
    return jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, size, size, 3)))


@pytest.fixture(scope="module")
def small_variables():
    return _init(MobileNetV3Minimal("small"))


def test_layouts_are_converted(tmp_path, small_variables):
    sd = _fake_state_dict("small")
    sd["conv_head.weight"] = np.zeros((1024, 576, 1, 1), np.float32)  # a full model's head
    sd["classifier.weight"] = np.zeros((1000, 1024), np.float32)
    np.savez(tmp_path / "small.npz", **sd)
    loaded = load_timm_weights(small_variables, tmp_path / "small.npz")
    p, st = loaded["params"], loaded["batch_stats"]
    np.testing.assert_array_equal(p["conv_stem"]["kernel"],
                                  sd["conv_stem.weight"].transpose(2, 3, 1, 0))
    # depthwise [C, 1, 3, 3] -> [3, 3, 1, C]
    dw = sd["blocks.4.1.conv_dw.weight"]
    assert dw.shape == (576, 1, 3, 3)
    np.testing.assert_array_equal(p["blocks_4_1"]["conv_dw"]["kernel"][:, :, 0, :],
                                  dw[:, 0].transpose(1, 2, 0))
    np.testing.assert_array_equal(p["blocks_5_0"]["conv"]["kernel"][0, 0],
                                  sd["blocks.5.0.conv.weight"][:, :, 0, 0].T)
    np.testing.assert_array_equal(p["blocks_2_2"]["bn3"]["scale"], sd["blocks.2.2.bn3.weight"])
    np.testing.assert_array_equal(p["blocks_2_2"]["bn3"]["bias"], sd["blocks.2.2.bn3.bias"])
    np.testing.assert_array_equal(st["blocks_0_0"]["bn1"]["mean"],
                                  sd["blocks.0.0.bn1.running_mean"])
    np.testing.assert_array_equal(st["blocks_0_0"]["bn1"]["var"], sd["blocks.0.0.bn1.running_var"])
    # every array of the model was replaced; the input was left alone
    n_loaded = sum(v.size for k, v in sd.items()
                   if not k.endswith("num_batches_tracked") and not k.startswith(("conv_h", "cl")))
    assert sum(leaf.size for leaf in jax.tree.leaves(loaded)) == n_loaded
    assert float(jnp.max(small_variables["params"]["bn1"]["scale"])) == 1.0
    assert jax.tree.structure(loaded) == jax.tree.structure(small_variables)
    assert all(a.dtype == b.dtype for a, b in zip(jax.tree.leaves(loaded),
                                                  jax.tree.leaves(small_variables), strict=True))


def test_a_scope_and_a_prefix_load_one_encoder_of_a_checkpoint(tmp_path):
    encoder = FaceEncoder(num_shape=4, num_expression=3, shape_backbone="small",
                          expression_backbone="small")
    variables = _init(encoder)
    sd = _fake_state_dict("small", seed=1, prefix="shape_encoder.encoder.")
    sd["shape_encoder.shape_layers.0.weight"] = np.zeros((4, 576), np.float32)
    np.savez(tmp_path / "smirk.npz", **sd)
    loaded = load_timm_weights(variables, tmp_path / "smirk.npz",
                               scope=("shape_encoder", "backbone"),
                               prefix="shape_encoder.encoder.")
    np.testing.assert_array_equal(
        loaded["batch_stats"]["shape_encoder"]["backbone"]["blocks_3_1"]["bn2"]["var"],
        sd["shape_encoder.encoder.blocks.3.1.bn2.running_var"])
    for name in ("pose_encoder", "expression_encoder"):
        for collection in ("params", "batch_stats"):
            same = jax.tree.map(np.array_equal, loaded[collection][name],
                                variables[collection][name])
            assert all(jax.tree.leaves(same)), (name, collection)
    assert loaded["params"]["shape_encoder"]["head"] is variables["params"]["shape_encoder"]["head"]


def test_missing_key_is_named(tmp_path, small_variables):
    sd = _fake_state_dict("small")
    del sd["blocks.1.0.conv_dw.weight"]
    np.savez(tmp_path / "w.npz", **sd)
    with pytest.raises(ValueError, match=r"w\.npz: missing key 'blocks\.1\.0\.conv_dw\.weight'"):
        load_timm_weights(small_variables, tmp_path / "w.npz")
    with pytest.raises(ValueError, match=r"missing key 'pose\.[\w.]+' .*pass prefix="):
        load_timm_weights(small_variables, tmp_path / "w.npz", prefix="pose.")


def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path, small_variables):
    sd = _fake_state_dict("small")
    sd["blocks.3.1.conv_pwl.weight"] = np.zeros((48, 100, 1, 1), np.float32)
    np.savez(tmp_path / "w.npz", **sd)
    with pytest.raises(ValueError, match=(
            r"w\.npz: 'blocks\.3\.1\.conv_pwl\.weight' has shape \(48, 100, 1, 1\), the model "
            r"expects \(48, 144, 1, 1\) \(timm layout; \(1, 1, 144, 48\) in Flax\)")):
        load_timm_weights(small_variables, tmp_path / "w.npz")
    # the large variant's weights: the first hidden widths differ (64 against 72)
    np.savez(tmp_path / "large.npz", **_fake_state_dict("large"))
    with pytest.raises(ValueError, match=r"'blocks\.1\.0\.\w+\.weight' has shape \(64[,)].*, "
                                         r"the model expects \(72[,)]"):
        load_timm_weights(small_variables, tmp_path / "large.npz")


def test_files_that_are_not_weights(tmp_path, small_variables):
    with pytest.raises(FileNotFoundError, match=r"nothing\.npz: no such weights file"):
        load_timm_weights(small_variables, tmp_path / "nothing.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match=r"text\.npz: not an \.npz archive"):
        load_timm_weights(small_variables, tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"single\.npy: not an \.npz archive"):
        load_timm_weights(small_variables, tmp_path / "single.npy")


def test_bad_scope_and_missing_statistics(tmp_path, small_variables):
    np.savez(tmp_path / "w.npz", **_fake_state_dict("small"))
    with pytest.raises(ValueError, match=r"no module 'pose_encoder' in 'params'"):
        load_timm_weights(small_variables, tmp_path / "w.npz", scope=("pose_encoder", "backbone"))
    with pytest.raises(ValueError, match=r"bn1: BatchNorm without 'mean'.*'batch_stats'"):
        load_timm_weights({"params": small_variables["params"]}, tmp_path / "w.npz")
