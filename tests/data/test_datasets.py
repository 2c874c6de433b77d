"""The dataset registry, preparing by name and opening a configured dataset."""

import ml_collections
import pytest

from jaxface.data import DATASETS, DatasetView, open_dataset, prepare_dataset
from jaxface.data.datasets import builder_class


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_registered_builder_imports_and_matches_its_spec(name):
    cls = builder_class(name)
    assert cls.name == name
    assert bool(getattr(cls, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)) == DATASETS[name].manual
    assert [c.name for c in cls.BUILDER_CONFIGS]


def test_unknown_names_versions_and_options_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'bu4dfe'; choose from coma, d3dfacs"):
        prepare_dataset("bu4dfe", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="faces4d has no version '9.9.9'"):
        prepare_dataset("faces4d", data_dir=str(tmp_path), config="tiny", version="9.9.9")
    with pytest.raises(ValueError, match="coma is licence-gated"):
        prepare_dataset("coma", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="faces4d has its own landmarks"):
        prepare_dataset("faces4d", data_dir=str(tmp_path), landmark_embedding=["x.npz"])
    config = ml_collections.ConfigDict(dict(dataset="coma", dataset_config="landmarks",
                                            data_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="no prepared dataset 'coma'"):
        open_dataset(config)


def test_open_dataset_prepares_the_generated_set_at_the_builders_version(tiny_faces4d):
    data_dir, path = tiny_faces4d
    config = ml_collections.ConfigDict(dict(dataset="faces4d", dataset_config="tiny",
                                            data_dir=data_dir))
    view = open_dataset(config, verbose=False)
    assert view.path == path
    assert path.endswith(str(builder_class("faces4d").VERSION))
    assert view.vertices.shape == (468, 3) and view.landmarks.num_landmarks == 68
    whole = view.sequences_of(view.split("expression_fold1").test)
    assert whole and all(s.expression in view.split("expression_fold1").held_out
                         for s in whole)
    with pytest.raises(FileNotFoundError):
        DatasetView(data_dir)
