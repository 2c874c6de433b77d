"""Smoke tests of the benchmark harness and, when PyTorch is installed, of the references' parity.

The harness parts run everywhere (CI installs only ``.[test]``); everything that needs torch is
skipped cleanly without it.
"""

import json
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# The benchmark suite lives next to the package, not inside it: import it from the checkout.
_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks import analytic, common, report  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Harness
# ---------------------------------------------------------------------------------------------


def test_interleave_times_every_runner_and_rotates():
    calls = []

    def runner(name):
        def run():
            calls.append(name)
            return jnp.ones(3) * len(calls)

        return run

    timings = common.interleave({"a": runner("a"), "b": runner("b")}, rounds=4, warmup=1)
    assert set(timings) == {"a", "b"}
    assert all(len(t.times_s) == 4 and t.median_s > 0 for t in timings.values())
    timed = calls[2:]  # after one warm-up call each
    assert timed[:2] == ["a", "b"] and timed[2:4] == ["b", "a"]
    ratio = common.paired_ratio(common.Timing([2.0, 4.0, 6.0]), common.Timing([1.0, 1.0, 2.0]))
    assert ratio == pytest.approx(3.0)


def test_jax_step_counts_one_compile_and_flags_recompiles():
    counter = common.compile_counter()
    f = jax.jit(lambda x: jnp.sin(x) * 2.0)
    x = jnp.arange(8.0)
    step = common.JaxStep("sin", lambda: f(x), f, counter)
    assert step.compile_stats["compiles"] >= 1
    timings = common.interleave({"sin": step}, rounds=3, counter=counter)
    assert len(timings["sin"].times_s) == 3
    fields = step.fields(strict=True)
    assert fields["traced_signatures"] == 1 and fields["one_trace_per_shape"]

    # A step whose state comes back strongly typed after a weakly typed start is traced again.
    g = jax.jit(lambda s: s + 1)
    holder = {"s": 0}

    def call():
        holder["s"] = g(holder["s"])
        return holder["s"]

    retracing = common.JaxStep("retrace", call, g, counter)
    common.interleave({"retrace": retracing}, rounds=2, warmup=2, counter=counter)
    assert retracing.fields()["one_trace_per_shape"] is False
    with pytest.raises(AssertionError):
        retracing.fields(strict=True)


def test_interleave_asserts_no_compile_while_timing():
    counter = common.compile_counter()
    shapes = iter(range(1, 100))
    f = jax.jit(lambda x: x + 1)

    def run():  # a new shape every call: compiles inside the timed rounds
        return f(jnp.zeros(next(shapes)))

    with pytest.raises(AssertionError, match="compilation"):
        common.interleave({"f": run}, rounds=2, warmup=1, counter=counter)


def test_output_and_grads_keeps_the_forward_pass():
    x = jnp.linspace(-1.0, 1.0, 12).reshape(3, 4)
    w = jnp.arange(8.0).reshape(4, 2) / 8
    g = jnp.ones((3, 2))

    def fn(x, w):
        return jnp.tanh(x @ w)

    out, (dx, dw) = jax.jit(lambda x, w, g: common.output_and_grads(fn, g, x, w))(x, w, g)
    np.testing.assert_allclose(out, fn(x, w), rtol=1e-6)
    ref = jax.grad(lambda x, w: jnp.sum(fn(x, w) * g), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(dx, ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, ref[1], rtol=1e-5, atol=1e-6)
    # Only the returned output keeps the forward matmul in the compiled program: the gradients
    # of a loss linear in a linear layer's output need two matmuls, not three.
    def dots(jitted, *args):
        return jitted.lower(*args).compile().as_text().count(" dot(")

    linear = jax.jit(lambda x, w, g: common.output_and_grads(lambda x, w: x @ w, g, x, w))
    grads_only = jax.jit(jax.grad(lambda x, w: jnp.sum((x @ w) * g), argnums=(0, 1)))
    assert (dots(linear, x, w, g), dots(grads_only, x, w)) == (3, 2)


@pytest.mark.filterwarnings("ignore:decimating to:RuntimeWarning")  # the 1790-vertex mesh
def test_step_compiled_with_xla_options_trains_like_the_shipped_step(tmp_path):
    import types

    from benchmarks.cases import s2d_train

    ctx = types.SimpleNamespace(cache_dir=str(tmp_path), counter=common.compile_counter())
    tuned = s2d_train.build_with_options(
        "jax/auto/ynn_reduce_off", "face1", 2, ctx, s2d_train.YNN_REDUCE_OFF
    )
    if tuned is None:
        # The option is experimental and jax is not pinned: with an XLA that does not know it
        # the benchmark logs the variant as not run (any other compile failure raises). With
        # jaxlib 0.10.2, which CI installs, the test runs.
        pytest.skip(f"this XLA does not know {sorted(s2d_train.YNN_REDUCE_OFF)}")
    _, shipped = s2d_train.build_jax("auto", "face1", 2, ctx)
    # Both ran one step from the same initial state (seed 0) in their constructors.
    tuned_params = jax.tree.leaves(tuned.holder["state"].params)
    shipped_params = jax.tree.leaves(shipped.holder["state"].params)
    # Adam's first update is about +-lr (1e-3) per weight whatever the gradient's size, so a
    # gradient within rounding of zero can move a weight by a fraction of lr.
    for a, b in zip(tuned_params, shipped_params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    assert tuned.options_compile_s > 0 and tuned.jitted is None
    assert tuned.compiler_options == s2d_train.YNN_REDUCE_OFF


def test_timing_fields_and_recorder(tmp_path):
    t = common.Timing([0.5, 1.0, 1.5])
    fields = common.timing_fields(t, batch=4, flops=2e9, bytes_moved=1e9,
                                  peaks={"gflops": 10.0, "gbps": 4.0})
    assert fields["median_s"] == 1.0 and fields["meshes_per_s"] == 4.0
    assert fields["gflops_per_s"] == pytest.approx(2.0)
    assert fields["roofline_s"] == pytest.approx(0.25)  # memory-bound: 1 GB at 4 GB/s
    assert fields["roofline_fraction"] == pytest.approx(0.25)
    path = str(tmp_path / "out.jsonl")
    rec = common.Recorder(path, "run")
    rec.add(case="c", kind="timing", value=np.float32(1.5), bad=float("nan"))
    line = json.loads(pathlib.Path(path).read_text(encoding="utf-8").strip())
    assert line == {"run_id": "run", "case": "c", "kind": "timing", "value": 1.5, "bad": None}


def _s2d_records(load_start, load_end):
    machine = {"case": "run", "kind": "machine", "machine": {"cores": 2,
               "load_average": [load_start, 0.0, 0.0]}, "load_average_end": [load_end, 0, 0]}
    return [
        machine,
        {"case": "s2d_train", "kind": "timing", "variant": "jax/auto",
         "setting": "torch_2_threads",
         "speedup_vs": {"torch/official": 9.5, "torch/spiralnet_pp": 5.0,
                        "torch/spiralnet_pp_compiled": 4.0}},
        {"case": "s2d_train", "kind": "timing", "variant": "jax/auto",
         "setting": "torch_1_threads",
         "speedup_vs": {"torch/official": 5.5, "torch/spiralnet_pp": 3.5,
                        "torch/folded": 1.8, "torch/spiralnet_pp_compiled": 1.4}},
        {"case": "data_pipeline", "kind": "timing", "variant": "streaming",
         "times_s2d_consumption": 12.0, "examples_per_s": 120.0, "bytes_per_example": 100},
    ]


def test_report_marks_targets_and_writes_the_conservative_headline():
    records = _s2d_records(0.3, 2.4)
    rows = {(r["target"], r["setting"]): r["met"] for r in report.target_rows(records)}
    assert rows[(report.TARGETS["s2d_vs_official"][1], "torch_1_threads")] is True  # 5.5 >= 5
    # Against the faster eager reference of the setting: torch/folded's 1.8x, not 3.5x.
    assert rows[(report.TARGETS["s2d_vs_strongest_eager"][1], "torch_1_threads")] is False
    assert rows[(report.TARGETS["s2d_vs_strongest_eager"][1], "torch_2_threads")] is True
    assert rows[(report.TARGETS["pipeline_vs_s2d"][1], "streaming")] is True
    best = report.headline(records)
    # Each reference at its fastest setting: the minimum ratio over settings.
    assert best["torch/official"] == {"ratio": 5.5, "setting": "torch_1_threads"}
    assert best["strongest"]["reference"] == "torch/spiralnet_pp_compiled"
    assert best["strongest"]["ratio"] == 1.4
    text = report.summarize(records)
    assert "## Targets" in text and "| no |" in text
    assert "5.50× the official-style step" in text and "1.40× the strongest PyTorch" in text
    assert report.machine_busy(records) is None


def test_no_headline_from_a_busy_machine():
    for start, end in ((1.5, 2.0), (0.2, 3.5)):
        records = _s2d_records(start, end)
        assert report.machine_busy(records) is not None
        text = report.summarize(records)
        assert "No headline: the machine was busy" in text
        assert "the official-style step" not in text


def test_analytic_counts():
    cost = analytic.spiral_conv_cost(2, 10, 3, 4, 5, backward=False)
    assert cost["flops"] == 2 * 2 * 10 * 3 * 4 * 5
    assert analytic.spiral_conv_cost(2, 10, 3, 4, 5, backward=True)["flops"] == 3 * cost["flops"]
    a, b = jnp.ones((3, 4)), jnp.ones((4, 5))
    assert analytic.matmul_flops(lambda a, b: a @ b, a, b) == 2 * 3 * 4 * 5

    def scanned(a, b):
        return jax.lax.scan(lambda c, _: (c @ b[:, :4], None), a, None, length=7)[0]

    assert analytic.matmul_flops(scanned, a, jnp.ones((4, 4))) == 7 * 2 * 3 * 4 * 4

    # A 2x2 stride-2 convolution reads each input once: its input gradient (a convolution of the
    # cotangent dilated by the stride) does as much useful work as the forward pass.
    x, k = jnp.ones((2, 8, 8, 3)), jnp.ones((2, 2, 3, 5))

    def conv(x):
        return jax.lax.conv_general_dilated(x, k, (2, 2), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC")).sum()

    forward = 2 * (2 * 4 * 4 * 5) * (2 * 2 * 3)
    assert analytic.matmul_flops(conv, x) == forward
    assert analytic.matmul_flops(jax.grad(conv), x) == 2 * forward


def test_analytic_step_cost_of_the_folded_up_sampling():
    """One up-sampled 4->2 layer (N=10 from M=4, L=3) and a 2->1 output layer, batch 2."""
    args = (2, (10, 4), (3, 3), (4, 2))
    plain = analytic.s2d_step_cost(*args, impls=["matmul_gather"] * 2, fold=False)
    folded = analytic.s2d_step_cost(*args, impls=["matmul_gather"] * 2, fold=True)
    up, out = plain["layers"][1], plain["layers"][2]
    assert up["flops"] == 3 * 2 * 2 * 10 * 3 * 4 * 2 + 2 * 2 * 2 * 10 * 3 * 4
    # Folded: the three matmuls on the 4 coarse rows, plus the weighted sum over 3 L rows and
    # its transpose; the output layer is unchanged.
    assert folded["layers"][1]["flops"] == 3 * 2 * 2 * 4 * 3 * 4 * 2 + 2 * 2 * 2 * 10 * 9 * 2
    assert folded["layers"][2] == out
    # A gather-first layer is never folded.
    gather = analytic.s2d_step_cost(*args, impls=["gather_matmul"] * 2, fold=True)
    assert gather["flops"] == analytic.s2d_step_cost(
        *args, impls=["gather_matmul"] * 2, fold=False)["flops"]
    assert analytic.s2d_variant_layers("torch/folded", "auto", 2) == {
        "impls": ["matmul_gather"] * 2, "fold": True}
    assert analytic.s2d_variant_layers("torch/spiralnet_pp", "auto", 2)["fold"] is False
    assert analytic.s2d_variant_layers("jax/auto", "auto", 2) == {"impls": None, "fold": True}


def test_run_machine_case_writes_outputs(tmp_path):
    from benchmarks import run

    status = run.main(["--cases", "machine", "--quick", "--out", str(tmp_path), "--name", "smoke",
                       "--allocator", "default", "--no-torch"], reexec=False)
    assert status == 0
    text = (tmp_path / "smoke.jsonl").read_text(encoding="utf-8")
    lines = [json.loads(x) for x in text.splitlines()]
    assert lines[0]["kind"] == "machine" and "finished" in lines[0]
    peaks = [x for x in lines if x["kind"] == "peak"]
    assert {p["backend"] for p in peaks} >= {"jax", "numpy"}
    assert all(p["median_s"] > 0 for p in peaks)
    assert os.path.getsize(tmp_path / "smoke.md") > 0


# ---------------------------------------------------------------------------------------------
# PyTorch references (skipped without torch)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_topology():
    from jaxface.data.template import load_face_template
    from jaxface.mesh import build_hierarchy, spirals_for
    from jaxface.models.s2d import SpiralTopology

    t = load_face_template(0)
    hierarchy = build_hierarchy(t.vertices, t.faces, (4, 4))
    spirals = spirals_for(hierarchy, rings=(2, 1, 1))
    return SpiralTopology.from_hierarchy(hierarchy, spirals)


def test_reference_decoders_match_jaxface(small_topology):
    torch = pytest.importorskip("torch")
    from benchmarks.reference_torch import load_s2d_params, make_s2d_train_step, s2d_loss
    from benchmarks.reference_torch.folded import FoldedSpiralDecoder
    from benchmarks.reference_torch.official_s2d import OfficialS2DDecoder
    from benchmarks.reference_torch.spiralnet_pp import SpiralNetPPDecoder
    from jaxface.losses.s2d import s2d_loss as jax_loss
    from jaxface.models.s2d import S2DDecoder

    topo = small_topology
    assert (topo.spirals[0] == topo.level_sizes[0]).any()  # padded spirals are exercised
    channels = (8, 8, 4)
    model = S2DDecoder(topo, channels=channels)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 204)))["params"]
    rng = np.random.default_rng(0)
    d = rng.normal(size=(3, 204)).astype(np.float32)
    y = (0.1 * rng.normal(size=(3, topo.level_sizes[0], 3))).astype(np.float32)
    w = rng.random(topo.level_sizes[0]).astype(np.float32)

    def loss_fn(p):
        return jax_loss(model.apply({"params": p}, d), y, w, form="paper")[0]

    pred = np.asarray(jax.jit(model.apply)({"params": params}, d))
    grads = jax.jit(jax.grad(loss_fn))(params)
    for cls in (OfficialS2DDecoder, SpiralNetPPDecoder, FoldedSpiralDecoder):
        module = cls(topo.spirals, topo.up_indices, topo.up_weights, channels=channels)
        load_s2d_params(module, params)
        out = module(torch.from_numpy(d))
        np.testing.assert_allclose(out.detach().numpy(), pred, rtol=1e-4, atol=1e-5)
        s2d_loss(out, torch.from_numpy(y), torch.from_numpy(w)).backward()
        np.testing.assert_allclose(module.conv_out.linear.weight.grad.numpy().T,
                                   grads["conv_out"]["kernel"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(module.fc.weight.grad.numpy().T, grads["dense"]["kernel"],
                                   rtol=1e-4, atol=1e-6)
        step = make_s2d_train_step(module, w)
        first = step(torch.from_numpy(d), torch.from_numpy(y))
        assert np.isfinite(first)
        assert step(torch.from_numpy(d), torch.from_numpy(y)) < first  # Adam makes progress


def test_reference_layers_match_spiral_conv(small_topology):
    torch = pytest.importorskip("torch")
    from benchmarks.cases.spiral_conv import _torch_layers
    from jaxface.nn import spiral_conv

    idx = np.asarray(small_topology.spirals[0])
    n, length = idx.shape
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, n, 4)).astype(np.float32)
    k = rng.normal(size=(length * 4, 5)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    expected = np.asarray(spiral_conv(x, idx, k, b))
    official, spiralnet, projected, spirals = _torch_layers(idx, k, b, 4)
    x_pad = torch.from_numpy(np.concatenate([x, np.zeros((2, 1, 4), np.float32)], axis=1))
    with torch.no_grad():
        np.testing.assert_allclose(official(x_pad, spirals)[:, :n].numpy(), expected,
                                   rtol=1e-5, atol=1e-5)
        assert float(official(x_pad, spirals)[:, n].abs().max()) == 0.0  # masked dummy row
        np.testing.assert_allclose(spiralnet(x_pad).numpy(), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(projected(x_pad).numpy(), expected, rtol=1e-5, atol=1e-5)
