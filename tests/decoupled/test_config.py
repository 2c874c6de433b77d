"""The decoupled face GAN's config modes."""

import pytest

from jaxface.configs import decoupled
from jaxface.decoupled.baselines import BASELINES
from jaxface.decoupled.tables import VARIANTS
from jaxface.models import MODELS


def test_modes_build_and_name_registered_models():
    configs = {mode: decoupled.get_config(mode) for mode in decoupled.MODES}
    assert decoupled.get_config().to_dict() == configs["paper"].to_dict()
    for mode, c in configs.items():
        assert c.mode == mode
        for block in (c.generator, c.critic, c.embedding, c.autoencoder):
            assert block.name in MODELS
        assert set(c.tables.ablations) <= set(VARIANTS) - {"full"}
        assert set(c.tables.baselines) <= set(BASELINES)
        assert c.optim.batch_size % 2 == 0  # codes come in pairs
        levels = len(c.critic.shared_channels) + len(c.critic.branch_channels)
        assert c.image_size % 2**levels == 0
    paper, cpu, converge, test = (configs[m] for m in decoupled.MODES)
    assert paper.dataset_config == "coma_scale" and cpu.dataset_config == "coma_scale_lite"
    assert cpu.optim.schedule == "constant" and converge.optim.schedule == "linear"
    # converge: the cpu run, longer, to a zero learning rate, with a stronger Laplacian.
    changed = {k for k in cpu.optim.keys() if cpu.optim[k] != converge.optim[k]}
    assert changed == {"num_epochs", "schedule"} and converge.optim.final_fraction == 0.0
    assert converge.loss.laplacian == 10 * cpu.loss.laplacian
    assert converge.generator.to_dict() == cpu.generator.to_dict()
    assert test.dataset_config == "tiny" and test.protocol == "expression_fold1"
    assert len(paper.critic.shared_channels) == len(paper.critic.branch_channels) == 2
    assert paper.labels.expression == "peak" and paper.labels.identity_fraction == 1.0
    assert set(paper.tables.ablations) == set(VARIANTS) - {"full"}
    with pytest.raises(ValueError, match="unknown config mode 'huge'"):
        decoupled.get_config("huge")
