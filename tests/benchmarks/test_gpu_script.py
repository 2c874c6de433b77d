"""The GPU benchmark script (``benchmarks.gpu``) in its dry run on the CPU.

The dry run executes the same functions as a GPU run, with the PyTorch device a variable
(``"cpu"`` here, ``"cuda"`` there) and ``torch.compile`` through the ``aot_eager`` backend, so
the code paths of the GPU run are exercised here; a CPU run must never read as a GPU result.
"""

import json
import pathlib
import sys

import jax
import pytest

_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks import gpu, report  # noqa: E402

_ON_CPU = jax.default_backend() == "cpu"
# The 1790-vertex face's coarsest level (7 vertices) needs relaxed collapses.
_COARSE = "ignore:decimating to .* relax the flip or manifold checks:RuntimeWarning"


def test_hbm_bandwidth_by_device_name():
    assert gpu.hbm_bandwidth("NVIDIA H100 80GB HBM3")[1] == 3.35e12  # SXM
    assert gpu.hbm_bandwidth("NVIDIA H100 PCIe")[1] == 2.0e12
    assert gpu.hbm_bandwidth("NVIDIA H100 NVL")[1] == 3.9e12
    assert gpu.hbm_bandwidth("NVIDIA H200")[1] == 4.8e12
    assert gpu.hbm_bandwidth("NVIDIA A100-SXM4-80GB")[1] == 2.039e12
    assert gpu.hbm_bandwidth("NVIDIA GH200 480GB") is None  # whole words only
    assert gpu.hbm_bandwidth("cpu") is None and gpu.hbm_bandwidth(None) is None


@pytest.mark.skipif(not _ON_CPU, reason="checks the refusal on a machine without a GPU")
def test_refuses_a_cpu_run_without_dry_run(tmp_path, capsys):
    assert gpu.main(["--out", str(tmp_path), "--name", "no"]) == 2
    assert "not a GPU result" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_bad_bandwidth_is_refused():
    with pytest.raises(SystemExit):
        gpu.parse_args(["--dry-run", "--hbm-gbps", "0"])


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """Records and summary of one dry run (with a bandwidth for the floors)."""
    out = tmp_path_factory.mktemp("gpu")
    status = gpu.main(["--dry-run", "--out", str(out), "--name", "dry", "--hbm-gbps", "25"])
    records = [json.loads(line) for line in (out / "dry.jsonl").read_text().splitlines()]
    return status, records, (out / "dry.md").read_text(encoding="utf-8")


def _find(records, **fields):
    return [r for r in records if all(r.get(k) == v for k, v in fields.items())]


@pytest.mark.filterwarnings(_COARSE)
@pytest.mark.skipif(not _ON_CPU, reason="the CPU rehearsal")
def test_dry_run_is_labelled_as_not_a_gpu_result(dry_run):
    status, records, text = dry_run
    assert status == 0, _find(records, kind="error")
    assert not _find(records, kind="error")
    run = records[0]
    assert run["kind"] == "machine" and run["preset"] == "gpu" and run["dry_run"] is True
    acc = run["accelerator"]
    assert acc["jax_platform"] == "cpu" and acc["gpu"] is False
    assert acc["versions"]["jax"] == jax.__version__
    assert acc["hbm_label"].endswith("(--hbm-gbps)") and acc["hbm_bytes_per_s"] == 25e9
    assert all(r["gpu_result"] is False for r in records)
    assert all(r["device"].startswith("cpu") for r in records)
    assert run["settings"]["jax_default_matmul_precision"].startswith("default")
    assert "finished" in run and run["total_s"] > 0
    # The summary says so and has no GPU headline.
    assert "not a GPU result" in text and "No GPU headline: JAX ran on cpu" in text
    assert report.gpu_headline(records) is None
    assert "steps/s; " not in text and "projected at" not in text


@pytest.mark.filterwarnings(_COARSE)
@pytest.mark.skipif(not _ON_CPU, reason="the CPU rehearsal")
def test_dry_run_measures_every_part(dry_run):
    _, records, text = dry_run
    peaks = _find(records, case="device", kind="peak")
    assert {p["variant"].split("/")[1][:4] for p in peaks} == {"matm", "copy"}
    floor = _find(records, case="device", kind="bandwidth")[0]
    assert floor["bytes_per_s"] == 25e9 and floor["measured_copy_gbps"] == max(
        p["gb_per_s"] for p in peaks if "gb_per_s" in p)
    auto = _find(records, case="s2d_train", kind="timing", variant="jax/auto",
                 setting="gpu_fastest")[0]
    assert auto["batch"] == 8 and auto["steps_per_s"] > 0 and auto["one_trace_per_shape"]
    # Records keep 6 significant digits.
    assert auto["bandwidth_floor_s"] == pytest.approx(auto["bytes"] / 25e9, rel=1e-5)
    assert auto["times_bandwidth_floor"] == pytest.approx(
        auto["median_s"] / auto["bandwidth_floor_s"], rel=1e-5)
    sweep = _find(records, case="s2d_train", kind="timing", sweep="batch")
    assert [r["batch"] for r in sweep] == [16]
    layers = _find(records, case="spiral_conv", kind="timing", auto=True,
                   mode="forward_backward")
    assert sorted(r["batch"] for r in layers) == [8, 16]
    for r in layers:
        assert r["within_3x_bandwidth_floor"] == (r["median_s"] <= 3 * r["bandwidth_floor_s"])
    feed = {r["variant"]: r for r in _find(records, case="data_feed", kind="timing")}
    assert set(feed) == {"step_alone", "step_fed", "gather_alone"}
    assert feed["step_fed"]["examples_on_device"] == 64
    assert feed["step_fed"]["fed_over_alone"] > 0
    gan = _find(records, case="motion3dgan_train", kind="timing")[0]
    assert gan["paper_size"] is False and gan["median_s"] > 0
    for heading in ("## S2D-Dec train step", "## Spiral layers against their bandwidth floor",
                    "## Data feed", "## Motion3DGAN train step", "## Projected wall time"):
        assert heading in text


@pytest.mark.filterwarnings(_COARSE)
@pytest.mark.skipif(not _ON_CPU, reason="the CPU rehearsal")
def test_projections_follow_the_papers_schedules(dry_run):
    _, records, _ = dry_run
    proj = _find(records, kind="projection")
    s2d = _find(proj, system="s2d_dec", basis="jax/auto, fed by InMemoryBatches")[0]
    assert (s2d["dataset_examples"], s2d["batch"], s2d["epochs"]) == (20466, 16, 300)
    assert s2d["steps"] == 20466 // 16 * 300
    assert s2d["projected_h"] == pytest.approx(s2d["steps"] * s2d["step_s"] / 3600, rel=1e-5)
    fold = _find(proj, system="s2d_dec", data="one fold's training part (9 of 12 identities)")
    assert fold[0]["dataset_examples"] == round(20466 * 9 / 12)
    gan = _find(proj, system="motion3dgan")[0]
    assert (gan["dataset_examples"], gan["batch"], gan["epochs"]) == (545, 128, 8000)
    assert gan["steps"] == 545 // 128 * 8000


@pytest.mark.filterwarnings(_COARSE)
@pytest.mark.skipif(not _ON_CPU, reason="the CPU rehearsal")
def test_torch_references_run_through_the_device_code(dry_run):
    pytest.importorskip("torch")
    _, records, _ = dry_run
    run = records[0]
    assert run["torch_device"] == "cpu" and run["settings"]["torch_compile_backend"] == "aot_eager"
    torch_steps = {r["variant"]: r for r in _find(records, case="s2d_train", kind="timing",
                                                   backend="torch")}
    assert set(torch_steps) == {"torch/official", "torch/spiralnet_pp", "torch/folded",
                                "torch/spiralnet_pp_compiled"}
    assert all(r["torch_device"] == "cpu" for r in torch_steps.values())
    assert torch_steps["torch/spiralnet_pp_compiled"]["compile_s"] > 0
    auto = _find(records, case="s2d_train", kind="timing", variant="jax/auto",
                 setting="gpu_fastest")[0]
    assert set(auto["speedup_vs"]) == set(torch_steps)
    # The references compute jaxface's function on the shared weights (float32 on the CPU).
    for rec in _find(records, kind="parity"):
        assert rec["max_abs_diff_output"] <= 1e-4 * max(1.0, rec["max_abs_output"])
    compiled_layer = _find(records, case="spiral_conv", variant="torch/spiralnet_pp_compiled")
    assert compiled_layer and compiled_layer[0]["compile_s"] > 0


def _gpu_records(gpu_platform: bool, dry: bool = False):
    run = {"run_id": "g", "case": "run", "kind": "machine", "preset": "gpu", "dry_run": dry,
           "machine": {"cores": 16, "load_average": [0.2, 0.1, 0.1]},
           "load_average_end": [0.5, 0.2, 0.1],
           "accelerator": {"gpu": gpu_platform, "jax_platform": "gpu" if gpu_platform else "cpu",
                           "device_kind": "NVIDIA H100 80GB HBM3" if gpu_platform else "cpu",
                           "hbm_label": "H100 SXM (80 GB HBM3)", "hbm_bytes_per_s": 3.35e12}}
    result = gpu_platform and not dry
    body = [
        {"case": "s2d_train", "kind": "timing", "variant": "jax/auto", "setting": "gpu_fastest",
         "batch": 16, "median_s": 0.002, "steps_per_s": 500.0,
         "speedup_vs": {"torch/official": 6.0, "torch/spiralnet_pp_compiled": 1.8}},
        {"case": "spiral_conv", "kind": "timing", "variant": "jax/matmul_gather_inverse",
         "auto": True, "mode": "forward_backward", "batch": 256, "level": 0, "c_in": 32,
         "c_out": 16, "vertices": 6990, "spiral_length": 11, "median_s": 2e-3,
         "bandwidth_floor_s": 1e-3, "times_bandwidth_floor": 2.0,
         "within_3x_bandwidth_floor": True},
        {"case": "projection", "kind": "projection", "system": "s2d_dec",
         "basis": "jax/auto, fed by InMemoryBatches", "projected_h": 0.25},
        {"case": "projection", "kind": "projection", "system": "motion3dgan",
         "basis": "jax/n_critic4, step alone", "projected_h": 3.5},
    ]
    return [{**r, "gpu_result": result} for r in (run, *body)]


def test_only_a_gpu_result_gets_a_gpu_headline():
    records = _gpu_records(True)
    best = report.gpu_headline(records)
    assert best["s2d"]["steps_per_s"] == 500.0
    assert best["spiral_floor"] == {"B256 L0 32->16": 2.0}
    assert best["s2d_projected_h"] == 0.25 and best["motion3dgan_projected_h"] == 3.5
    text = report.summarize(records)
    assert "6.00× torch/official" in text and "projected at 0.25 h" in text
    assert "No GPU headline" not in text
    for cpu_or_dry in (_gpu_records(False), _gpu_records(True, dry=True)):
        assert report.gpu_headline(cpu_or_dry) is None
        text = report.summarize(cpu_or_dry)
        assert "No GPU headline" in text and "6.00× torch/official" not in text


def test_gpu_headline_refuses_records_not_marked_as_results():
    records = _gpu_records(True)
    records[1] = {**records[1], "gpu_result": False}
    assert report.gpu_headline(records) is None
    assert "No GPU headline: some records are not marked" in report.summarize(records)
