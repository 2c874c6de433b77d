"""S2D-Dec training: validation split and plateau stop."""

import numpy as np
import pytest


def test_validation_split_and_plateau_stop(tiny_faces4d, tmp_path):
    from jaxface.configs import s2d
    from jaxface.s2d import load_protocol, train_s2d
    from jaxface.s2d.data import validation_sequences

    seqs = list(range(10))
    train, val = validation_sequences(seqs, 0.25, seed=3)
    assert len(val) == 2 and sorted(train + val) == seqs
    assert validation_sequences(seqs, 0.25, seed=3) == (train, val)
    assert validation_sequences(seqs, 0.0, seed=3) == (seqs, [])
    with pytest.raises(ValueError, match="validation.fraction must be in"):
        validation_sequences(seqs, 1.0, seed=3)

    data_dir, _ = tiny_faces4d
    config = s2d.get_config("test")
    config.data_dir = data_dir
    config.validation.fraction = 0.2
    config.validation.patience = 2
    config.validation.min_delta_mm = 1.0  # stops as soon as the error moves by less than 1 mm
    config.optim.num_epochs = 40
    data = load_protocol(config)
    assert data.validation is not None
    held = {(s, e) for s, e in zip(data.validation.subjects, data.validation.expressions,
                                   strict=True)}
    trained = set(zip(data.train.subjects, data.train.expressions, strict=True))
    assert held and not held & trained
    _, info = train_s2d(config, str(tmp_path), data)
    history = info["validation"]
    assert info["stopped_early"] and info["steps"] < 40 * (len(data.train) // 8)
    assert len(history) >= 3 and all(np.isfinite(h["val_error_mm"]) for h in history)
    assert history[-1]["step"] == info["steps"]
