"""Preparing datasets: a failed rebuild keeps the old dataset, concurrent builds share one."""

import os
import shutil
import subprocess
import sys

import pytest

from jaxface.cli import main
from jaxface.data.datasets import DatasetView, builder_class, prepare_dataset
from tests.faults.helpers import ROOT, env, files_under


def _copy(tiny_faces4d, tmp_path):
    data_dir, path = tiny_faces4d
    copy = tmp_path / "tfds"
    shutil.copytree(data_dir, copy)
    return str(copy), str(copy / os.path.relpath(path, data_dir))


def test_a_failed_overwrite_keeps_the_prepared_dataset(tiny_faces4d, tmp_path, monkeypatch,
                                                       capsys):
    data_dir, path = _copy(tiny_faces4d, tmp_path)
    before, examples = files_under(path), len(DatasetView(path).source)

    def broken(self, dl_manager):
        raise OSError("the source went away mid-build")

    monkeypatch.setattr(builder_class("faces4d"), "_split_generators", broken)
    status = main(["prepare", "faces4d", "--config", "tiny", "--data-dir", data_dir,
                   "--overwrite"])
    assert status == 2
    assert "the source went away mid-build" in capsys.readouterr().err
    assert files_under(path) == before
    assert len(DatasetView(path).source) == examples
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no staging left


def test_overwrite_replaces_the_dataset_in_one_step(tiny_faces4d, tmp_path):
    data_dir, path = _copy(tiny_faces4d, tmp_path)
    examples = len(DatasetView(path).source)
    marker = os.path.join(path, "stale-file")
    open(marker, "w").close()
    assert prepare_dataset("faces4d", data_dir=data_dir, config="tiny", overwrite=True,
                           verbose=False) == path
    assert not os.path.exists(marker) and len(DatasetView(path).source) == examples
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]


@pytest.mark.slow
def test_two_first_preparations_at_once_both_use_one_dataset(tiny_faces4d, tmp_path):
    code = ("import sys; from jaxface.data import prepare_dataset; "
            "print(prepare_dataset('faces4d', data_dir=sys.argv[1], config='tiny', "
            "verbose=False))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(paths) == 1
    path = paths.pop()
    assert len(DatasetView(path).source) == len(DatasetView(tiny_faces4d[1]).source)
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]
