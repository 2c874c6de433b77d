"""S2D-Dec and Neural3DMM training: validation split, plateau stop, kept state, stored config."""

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
    assert info["kept"] == "last" and info["kept_step"] == info["steps"]
    assert info["val_error_mm"] == history[-1]["val_error_mm"]
    assert not (tmp_path / "best").exists()


def test_keep_best_returns_and_loads_the_best_validation_state(tiny_faces4d, tmp_path):
    from jaxface.configs import s2d
    from jaxface.eval import per_vertex_errors_mm
    from jaxface.s2d import load_protocol, train_s2d
    from jaxface.s2d.inference import S2DInference

    data_dir, _ = tiny_faces4d
    config = s2d.get_config("test")
    config.data_dir = data_dir
    config.validation.fraction = 0.2
    config.validation.patience = 3
    config.validation.every_epochs = 0.5
    config.validation.keep = "best"
    config.optim.num_epochs = 4
    data = load_protocol(config)
    predict, info = train_s2d(config, str(tmp_path), data)
    history = info["validation"]
    best = min(history, key=lambda h: h["val_error_mm"])
    assert info["kept"] == "best" and info["kept_step"] == best["step"]
    assert info["val_error_mm"] == best["val_error_mm"]
    # The returned predictor is the kept state: its validation error is the best one.
    pairs = data.validation
    error = per_vertex_errors_mm(predict(pairs), pairs.targets).mean()
    np.testing.assert_allclose(error, best["val_error_mm"], rtol=1e-5)
    # Loading the run uses the same parameters.
    model = S2DInference.load(str(tmp_path))
    np.testing.assert_allclose(
        pairs.neutrals[pairs.sequence] + model.decode(pairs.landmark_displacement),
        predict(pairs), atol=1e-6)
    config.validation.keep = "first"
    with pytest.raises(ValueError, match="keep must be 'best' or 'last'"):
        train_s2d(config, str(tmp_path / "bad"), data)


def test_neural3dmm_stores_its_config_and_refuses_another(tiny_faces4d, tmp_path):
    import json

    from jaxface.configs import s2d
    from jaxface.s2d import load_protocol, train_neural3dmm
    from jaxface.train.workdir import ConfigMismatchError

    data_dir, _ = tiny_faces4d
    config = s2d.get_config("test")
    config.data_dir = data_dir
    config.optim.num_epochs = 1
    data = load_protocol(config)
    predict, info = train_neural3dmm(config, str(tmp_path), data)
    assert info["steps"] > 0 and np.isfinite(predict(data.test)).all()
    with open(tmp_path / "config.json") as f:
        assert json.load(f) == json.loads(json.dumps(config.to_dict()))
    changed = s2d.get_config("test")
    changed.data_dir = data_dir
    changed.optim.num_epochs = 1
    changed.optim.learning_rate = 0.5
    listing = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConfigMismatchError, match="optim.learning_rate"):
        train_neural3dmm(changed, str(tmp_path), data)
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
