"""Reading a prepared dataset: its folder, sequence index, template and examples."""

import numpy as np
import pytest

from jaxface.data import layout, source


@pytest.fixture(scope="module")
def tiny_dir(tiny_faces4d):
    return tiny_faces4d[1]


@pytest.fixture(scope="module")
def frames(tiny_dir):
    return source.open_source(tiny_dir)


def test_dataset_dir_and_readers(tiny_dir, tmp_path):
    assert "/faces4d/tiny/" in tiny_dir
    with pytest.raises(FileNotFoundError, match="no prepared dataset 'coma'"):
        layout.dataset_dir("coma", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="not a prepared TFDS dataset"):
        source.open_source(tmp_path)
    seqs = layout.load_sequences(tiny_dir)
    assert seqs[1].start == seqs[0].stop
    assert layout.load_label_names(tiny_dir)[seqs[0].label] == seqs[0].expression
    import tensorflow_datasets as tfds

    data_dir = tiny_dir.rsplit("/faces4d/", 1)[0]
    by_name = tfds.data_source("faces4d/tiny", data_dir=data_dir, split="frames")
    np.testing.assert_array_equal(
        by_name[seqs[1].start]["vertices"],
        source.open_source(tiny_dir)[seqs[1].start]["vertices"],
    )


def test_corrupt_sequence_index_names_the_file(tmp_path):
    (tmp_path / layout.SEQUENCES_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="sequences.json: not valid JSON"):
        layout.load_sequences(tmp_path)
    (tmp_path / layout.SEQUENCES_FILE).write_text('{"sequences": [{"subject": "a"}]}')
    with pytest.raises(ValueError, match="a sequence has no field 'expression'"):
        layout.load_sequences(tmp_path)
    with pytest.raises(ValueError, match="no 'expressions' list"):
        layout.load_label_names(tmp_path)


def test_load_split_arrays(frames, tiny_dir):
    split = layout.load_split(tiny_dir, "interpolation")
    arrays = source.load_split_arrays(frames, split.test[:7])
    assert arrays["vertices"].shape == (7, 468, 3) and arrays["vertices"].dtype == np.float32
    assert arrays["landmarks"].shape == (7, 68, 3)
    assert arrays["subject"].dtype.kind == "U"
    assert arrays["subject"][0] == frames[int(split.test[0])]["subject"].decode()
    np.testing.assert_array_equal(arrays["vertices"][3], frames[int(split.test[3])]["vertices"])
    only = source.load_split_arrays(frames, [0, 1], features=["label"])
    assert list(only) == ["label"]
    with pytest.raises(IndexError, match="out of range"):
        source.IndexedSource(frames, [len(frames)])


def test_landmark_definition_and_subsequences_from_the_dataset(frames, tiny_dir):
    from jaxface.data.landmarks import extract_landmarks, normalize_landmarks
    from jaxface.data.subsequences import apex_frame, dataset_subsequences

    definition = layout.load_landmark_definition(tiny_dir)
    faces = layout.load_template(tiny_dir)["faces"]
    ex = frames[5]
    np.testing.assert_array_equal(
        extract_landmarks(ex["vertices"], definition, faces=faces), ex["landmarks"]
    )
    seqs = layout.load_sequences(tiny_dir)[:4]
    subs = dataset_subsequences(frames, seqs, min_frames=5)
    assert subs and all(s.landmarks.shape == (30, 68, 3) for s in subs)
    first = source.load_sequence(frames, seqs[0], features=["landmarks"])["landmarks"]
    apex = apex_frame(normalize_landmarks(first))
    assert [
        s.stop for s in subs if s.subject == seqs[0].subject and s.expression == seqs[0].expression
    ][0] == apex
    assert {s.label for s in subs} <= {s.label for s in seqs}
