"""Experiment configs: every mode builds, modes differ as documented, recipes derive from them."""

import pytest

from jaxface.configs import generate, motion3dgan, parse_mode, s2d
from jaxface.models import MODELS
from jaxface.s2d.tables import METHODS


@pytest.mark.parametrize("module", [s2d, motion3dgan])
def test_every_mode_builds_and_unknown_modes_fail(module):
    configs = {mode: module.get_config(mode) for mode in module.MODES}
    assert module.get_config().to_dict() == configs["paper"].to_dict()
    assert module.get_config("").to_dict() == configs["paper"].to_dict()
    for mode, config in configs.items():
        assert config.mode == mode
    with pytest.raises(ValueError, match="unknown config mode .huge.; choose from paper, cpu"):
        module.get_config("huge")


def test_s2d_modes_name_registered_models_and_methods():
    for mode in s2d.MODES:
        c = s2d.get_config(mode)
        assert c.model.name in MODELS and c.neural3dmm.name in MODELS
        assert all(m in METHODS for m in c.tables.methods)
    paper, cpu, converge, test = (s2d.get_config(m) for m in s2d.MODES)
    assert paper.model.channels == (128, 64, 32, 32, 16) and paper.optim.num_epochs == 300
    assert cpu.model.to_dict() == paper.model.to_dict() and cpu.optim.num_epochs == 6
    assert cpu.dataset_config == "coma_scale_lite" and test.dataset_config == "tiny"
    # converge: the cpu data, validation with a plateau stop, the rate chosen on validation.
    assert converge.dataset_config == cpu.dataset_config and converge.validation.patience > 0
    assert 0 < converge.validation.fraction < 1 and len(converge.tables.learning_rates) > 1
    assert not cpu.validation.fraction and not cpu.tables.learning_rates


def test_motion3dgan_modes_carry_their_s2d_config():
    cpu = motion3dgan.get_config("cpu")
    assert cpu.s2d.model.channels == (32, 16, 16, 16, 8) and cpu.s2d.optim.num_epochs == 3
    assert motion3dgan.get_config("test").s2d.dataset_config == "tiny"
    assert cpu.baseline.name in MODELS and cpu.classifier.name in MODELS


def test_generate_recipes_are_modes_of_the_experiment_configs():
    default, quality, tiny = (generate.get_config(r) for r in generate.RECIPES)
    gan_cpu = motion3dgan.get_config("cpu")
    assert default.gan.model.to_dict() == gan_cpu.model.to_dict()
    assert default.gan.optim.num_epochs == 30 and quality.gan.optim.num_epochs == 45
    assert default.gan.split_rule == "none"
    assert default.s2d.model.channels == (64, 32, 16, 16)
    assert default.s2d.optim.learning_rate == 1e-4
    assert quality.gan.model == default.gan.model and quality.s2d.model == default.s2d.model
    assert quality.s2d.frame_stride < default.s2d.frame_stride
    assert tiny.gan.model.to_dict() == motion3dgan.get_config("test").model.to_dict()
    assert tiny.s2d.model.to_dict() == s2d.get_config("test").model.to_dict()
    assert {c.dataset_config for c in (default, quality)} == {"coma_scale_lite"}
    assert "table3" not in default.gan and "tables" not in default.s2d


def test_parse_mode():
    assert parse_mode(None, ("a", "b")) == "a" and parse_mode("b", ("a", "b")) == "b"
    with pytest.raises(ValueError, match="choose from a, b"):
        parse_mode("c", ("a", "b"))
