"""Markdown summary of a benchmark run (from its records or its JSONL file).

    python -m benchmarks.report benchmarks/results/<name>.jsonl   # rewrites <name>.md
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from jaxface.files import write_atomic

__all__ = [
    "TARGETS",
    "gpu_headline",
    "headline",
    "load_records",
    "machine_busy",
    "summarize",
    "summarize_gpu",
    "target_rows",
]

#: The performance targets: (name, threshold, description).
TARGETS = {
    "s2d_vs_official": (5.0, "S2D-Dec train step, jax/auto vs torch/official"),
    "s2d_vs_strongest_eager": (3.0, "S2D-Dec train step, jax/auto vs the strongest eager "
                                    "PyTorch step (torch/spiralnet_pp or torch/folded)"),
    "s2d_vs_torch_compile": (1.5,
                             "S2D-Dec train step, jax/auto vs torch/spiralnet_pp_compiled"),
    "spiral_conv_fwd_bwd": (1.3, "spiral conv forward+backward, jax/auto vs fastest PyTorch"),
    "pipeline_vs_s2d": (10.0, "data pipeline rate / S2D-Dec step consumption"),
}


#: The eager PyTorch S2D-Dec steps besides the official formulation: SpiralNet++-style and the
#: folded form (up-sampling folded into project-first layers); the 3x target is against the
#: faster of the two in each setting.
EAGER_REFERENCES = ("torch/spiralnet_pp", "torch/folded")


def load_records(path: str) -> list[dict[str, Any]]:
    """Reads a JSONL file of records."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "–"
    if kind == "ms":
        return f"{1e3 * value:.1f}"
    if kind == "ms3":
        return f"{1e3 * value:.3f}"
    if kind == "us":
        return f"{1e6 * value:.1f}"
    if kind == "yn":
        return "yes" if value else "no"
    if kind == "x":
        return f"{value:.2f}×"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "mib":
        return f"{value / 2**20:.0f}"
    if kind == "mib1":
        return f"{value / 2**20:.1f}"
    if kind == "e":
        return f"{value:.1e}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    if isinstance(value, list):
        return "/".join(str(v) for v in value)
    return str(value)


def _table(rows: Sequence[dict], columns: Sequence[tuple[str, str, Any]]) -> list[str]:
    """Markdown table; each column is ``(header, key or callable, format kind)``."""
    if not rows:
        return ["(no records)", ""]
    out = ["| " + " | ".join(c[0] for c in columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for _, key, kind in columns:
            value = key(row) if callable(key) else row.get(key)
            cells.append(_fmt(value, kind))
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    return out


def _speedup(name: str) -> Callable[[dict], Any]:
    return lambda r: (r.get("speedup_vs") or {}).get(name)


def target_rows(records: Sequence[dict]) -> list[dict[str, Any]]:
    """One row per target and setting: measured ratio, threshold, met or not."""
    rows = []
    for rec in records:
        if rec.get("case") == "s2d_train" and rec.get("variant") == "jax/auto" \
                and rec.get("kind") == "timing":
            setting = rec.get("setting", "main")
            speedups = rec.get("speedup_vs") or {}
            eager = [speedups[r] for r in EAGER_REFERENCES if r in speedups]
            for ratio, key in ((speedups.get("torch/official"), "s2d_vs_official"),
                               (min(eager) if eager else None, "s2d_vs_strongest_eager"),
                               (speedups.get("torch/spiralnet_pp_compiled"),
                                "s2d_vs_torch_compile")):
                if ratio is not None:
                    threshold, desc = TARGETS[key]
                    rows.append({"target": desc, "setting": setting, "ratio": ratio,
                                 "threshold": threshold, "met": ratio >= threshold})
        if rec.get("case") == "spiral_conv" and rec.get("kind") == "timing" \
                and rec.get("mode") == "forward_backward" and rec.get("auto") \
                and rec.get("dtype") == "float32" and rec.get("speedup_vs_best_torch"):
            threshold, desc = TARGETS["spiral_conv_fwd_bwd"]
            ratio = rec["speedup_vs_best_torch"]
            rows.append({"target": desc, "setting":
                         f"level{rec['level']} {rec['c_in']}->{rec['c_out']} "
                         f"({rec.get('variant')} vs {rec.get('best_torch')})",
                         "ratio": ratio, "threshold": threshold, "met": ratio >= threshold})
        if rec.get("case") == "data_pipeline" and rec.get("times_s2d_consumption") is not None \
                and not rec.get("variant", "").endswith("/load"):
            threshold, desc = TARGETS["pipeline_vs_s2d"]
            ratio = rec["times_s2d_consumption"]
            rows.append({"target": desc, "setting": rec["variant"], "ratio": ratio,
                         "threshold": threshold, "met": ratio >= threshold})
    return rows


#: A run is busy when the 1-minute load average exceeds these shares of the cores: at its
#: start (other work before ours) or at its end (other work beside ours, which adds ~1 per core).
BUSY_AT_START, BUSY_AT_END = 0.5, 1.5


def machine_busy(records: Sequence[dict]) -> str | None:
    """Why the run's machine counts as busy (``None`` when it was quiet or is unknown)."""
    machine = next((r for r in records if r.get("kind") == "machine"), {})
    info = machine.get("machine", {})
    cores = info.get("cores")
    start = (info.get("load_average") or [None])[0]
    end = (machine.get("load_average_end") or [None])[0]
    if not cores or start is None:
        return None
    reasons = []
    if start > BUSY_AT_START * cores:
        reasons.append(f"{start} at the start")
    if end is not None and end > BUSY_AT_END * cores:
        reasons.append(f"{end} at the end")
    return f"load average {' and '.join(reasons)} on {cores} cores" if reasons else None


def headline(records: Sequence[dict]) -> dict[str, Any] | None:
    """The conservative S2D-Dec ratios: ``jax/auto`` against every reference at the reference's
    fastest setting of the run (the minimum ratio over settings).

    Returns:
      ``{reference: {"ratio", "setting"}}`` plus ``"strongest"``: the lowest ratio among the
      references other than the official formulation; ``None`` without S2D-Dec timings.
    """
    best: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.get("case") != "s2d_train" or rec.get("kind") != "timing" \
                or rec.get("variant") != "jax/auto":
            continue
        for ref, ratio in (rec.get("speedup_vs") or {}).items():
            if ref not in best or ratio < best[ref]["ratio"]:
                best[ref] = {"ratio": ratio, "setting": rec.get("setting", "main")}
    if not best:
        return None
    others = {ref: v for ref, v in best.items() if ref != "torch/official"}
    if others:
        ref = min(others, key=lambda r: others[r]["ratio"])
        best["strongest"] = {**others[ref], "reference": ref}
    return best


def _headline_lines(records: Sequence[dict]) -> list[str]:
    best = headline(records)
    if best is None:
        return []
    busy = machine_busy(records)
    if busy:
        return ["## Headline", "",
                f"No headline: the machine was busy ({busy}). The ratios below come from a "
                "loaded machine and are not a fair comparison.", ""]
    parts = []
    if "torch/official" in best:
        b = best["torch/official"]
        parts.append(f"{b['ratio']:.2f}× the official-style step ({b['setting']})")
    if "strongest" in best:
        b = best["strongest"]
        parts.append(f"{b['ratio']:.2f}× the strongest PyTorch step ({b['reference']}, "
                     f"{b['setting']})")
    if "torch/spiralnet_pp_compiled" in best:
        b = best["torch/spiralnet_pp_compiled"]
        parts.append(f"{b['ratio']:.2f}× torch.compile ({b['setting']})")
    return ["## Headline", "",
            "S2D-Dec train step, `jax/auto`: " + "; ".join(parts) + ". Each reference at its "
            "fastest setting of this run (the minimum ratio over PyTorch thread counts).", ""]


def _per_vertex_reference(step: Sequence[dict], vertices: int = 6990) -> dict | None:
    """The ``vertices`` sweep's point at ``vertices`` (the S2D experiment's mesh) or its first."""
    points = [r for r in step if r.get("sweep") == "vertices" and r.get("times_s")]
    return next((r for r in points if r.get("vertices") == vertices),
                points[0] if points else None)


def _per_vertex_ratio(rec: dict, step: Sequence[dict]) -> float | None:
    """Median over rounds of ``rec``'s time per vertex and mesh over the reference point's."""
    ref = _per_vertex_reference(step)
    if ref is None or rec.get("sweep") != "vertices" or not rec.get("times_s"):
        return None
    scale = (ref["batch"] * ref["vertices"]) / (rec["batch"] * rec["vertices"])
    ratios = sorted(t / u * scale for t, u in zip(rec["times_s"], ref["times_s"], strict=False)
                    if u > 0)
    if not ratios:
        return None
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else 0.5 * (ratios[mid - 1] + ratios[mid])


def summarize(records: Sequence[dict], *, command: str | None = None) -> str:
    """Renders the Markdown summary of a run (of :mod:`benchmarks.run` or, for records whose
    run record says ``preset: "gpu"``, of :mod:`benchmarks.gpu`)."""
    machine = next((r for r in records if r.get("kind") == "machine"), {})
    if machine.get("preset") == "gpu":
        return summarize_gpu(records, command=command)
    lines: list[str] = []
    info = machine.get("machine", {})
    lines += [f"# jaxface benchmarks: run {machine.get('run_id', '?')}", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"- Date (UTC): {machine.get('started')} – {machine.get('finished', '?')}",
        f"- Machine: {info.get('cpu')}, {info.get('cores')} cores, {info.get('memory_gib')} GiB; "
        f"load average at start {info.get('load_average')}, at end "
        f"{machine.get('load_average_end')}",
        f"- Software: Python {info.get('python')}, jax {info.get('jax')} "
        f"({info.get('jax_backend')}), numpy {info.get('numpy')}, torch "
        f"{info.get('torch', 'not installed')}",
        f"- Settings: mode {'quick' if machine.get('quick') else 'full'}, allocator "
        f"{machine.get('allocator')}, PyTorch threads {machine.get('torch_threads')}",
        "- Times are medians over interleaved rounds; ratios are medians of per-round ratios.",
        "",
    ]
    lines += _headline_lines(records)
    busy = machine_busy(records)
    if busy and headline(records) is None:
        lines += [f"The machine was busy ({busy}): absolute times are inflated and noisy; "
                  "compare points only through the interleaved per-round ratios.", ""]
    peaks = [r for r in records if r.get("kind") == "peak"]
    if peaks:
        lines += ["## Machine peaks", ""]
        lines += _table(peaks, [
            ("measurement", "variant", ""), ("median ms", "median_s", "ms"),
            ("GFLOP/s", "gflops_per_s", ""), ("GB/s", "gb_per_s", "")])
    targets = target_rows(records)
    if targets:
        lines += ["## Targets", ""]
        lines += _table(targets, [
            ("target", "target", ""), ("setting", "setting", ""), ("measured", "ratio", "x"),
            ("required", "threshold", "x"), ("met", lambda r: "yes" if r["met"] else "no", "")])
    parity = [r for r in records if r.get("kind") == "parity"]
    if parity:
        lines += ["## Parity of the PyTorch references (same weights, same indices)", ""]
        lines += _table(parity, [
            ("case", "case", ""), ("reference", "variant", ""), ("against", "against", ""),
            ("shape", lambda r: r.get("mesh") or f"L{r.get('level')} {r.get('c_in')}->"
             f"{r.get('c_out')}", ""),
            ("max |Δ output|", "max_abs_diff_output", "e"),
            ("max |output|", "max_abs_output", "e"),
            ("max |Δ kernel grad|", lambda r: r.get("max_abs_diff_grad_kernels",
                                                  r.get("max_abs_diff_grad_kernel")), "e"),
            ("max |kernel grad|", lambda r: r.get("max_abs_grad",
                                                r.get("max_abs_grad_kernel")), "e"),
            ("max |Δ input grad|", "max_abs_diff_grad_input", "e")])
    s2d = [r for r in records if r.get("case") == "s2d_train" and r.get("kind") == "timing"]
    if s2d:
        lines += [f"## S2D-Dec train step (batch {s2d[0].get('batch')}, "
                  f"{s2d[0].get('vertices')} vertices, levels {_fmt(s2d[0].get('level_sizes'))})",
                  ""]
        lines += _table(s2d, [
            ("setting", "setting", ""), ("variant", "variant", ""), ("ms/step", "median_s", "ms"),
            ("meshes/s", "meshes_per_s", ""),
            ("vs official", _speedup("torch/official"), "x"),
            ("vs SpiralNet++", _speedup("torch/spiralnet_pp"), "x"),
            ("vs folded", _speedup("torch/folded"), "x"),
            ("vs torch.compile", _speedup("torch/spiralnet_pp_compiled"), "x"),
            ("GFLOP/s", "gflops_per_s", ""), ("% peak FLOP/s", "flops_fraction", "pct"),
            ("% roofline", "roofline_fraction", "pct"),
            ("temp MiB", "temp_memory_bytes", "mib"), ("compile s", "compile_s", "")])
    conv = [r for r in records if r.get("case") == "spiral_conv" and r.get("kind") == "timing"]
    if conv:
        lines += ["## Spiral convolution layer (batch 16, S2D-Dec layer shapes)", ""]
        lines += _table(conv, [
            ("shape", lambda r: f"L{r['level']} N={r['vertices']} L={r['spiral_length']} "
             f"{r['c_in']}->{r['c_out']}", ""),
            ("pass", "mode", ""), ("variant", "variant", ""), ("ms", "median_s", "ms"),
            ("vs best torch", "speedup_vs_best_torch", "x"), ("GFLOP/s", "gflops_per_s", ""),
            ("% roofline", "roofline_fraction", "pct"), ("temp MiB", "temp_memory_bytes", "mib")])
    gan = [r for r in records if r.get("case") == "motion3dgan_train" and r.get("kind") == "timing"]
    if gan:
        lines += ["## Motion3DGAN train step", ""]
        lines += _table(gan, [
            ("variant", "variant", ""), ("batch", "batch", ""),
            ("G base channels", "gen_base_channels", ""), ("ms/step", "median_s", "ms"),
            ("sequences/s", "meshes_per_s", ""), ("GFLOP/s", "gflops_per_s", ""),
            ("% peak FLOP/s", "flops_fraction", "pct"), ("temp MiB", "temp_memory_bytes", "mib"),
            ("compile s", "compile_s", "")])
    data = [r for r in records if r.get("case") == "data_pipeline" and r.get("kind") == "timing"]
    if data:
        lines += ["## Data pipeline (batch 16)", ""]
        lines += _table(data, [
            ("dataset", "dataset", ""), ("variant", "variant", ""),
            ("examples/s", "examples_per_s", ""),
            ("× S2D-Dec consumption", "times_s2d_consumption", "x"),
            ("MB/s", lambda r: r["examples_per_s"] * r["bytes_per_example"] / 1e6, "")])
    topo = [r for r in records if r.get("case") == "topology" and r.get("kind") == "timing"]
    if topo:
        lines += ["## Hierarchy and spiral build", ""]
        lines += _table(topo, [
            ("mesh", "mesh", ""), ("vertices", "vertices", ""), ("variant", "variant", ""),
            ("seconds", "median_s", ""), ("levels", "level_sizes", "")])
    scaling = [r for r in records if r.get("case") == "scaling" and r.get("kind") == "timing"]
    if scaling:
        lines += ["## Scaling", ""]
        step = [r for r in scaling if r.get("sweep") in ("vertices", "batch")]
        ref = _per_vertex_reference(step)
        if ref is not None:
            lines += [f"Per-vertex cost relative to the {ref['vertices']}-vertex point of the "
                      "same sweep: the median over rounds of the per-round ratio (points of a "
                      "sweep are timed in the same rounds, so a load change hits them alike).",
                      ""]
        lines += _table(step, [
            ("sweep", "sweep", ""), ("mesh", "mesh", ""), ("vertices", "vertices", ""),
            ("batch", "batch", ""), ("ms/step", "median_s", "ms"),
            ("ns/vertex/mesh", "ns_per_vertex_mesh", ""), ("GFLOP/s", "gflops_per_s", ""),
            ("% roofline", "roofline_fraction", "pct"), ("temp MiB", "temp_memory_bytes", "mib"),
            ("peak MiB", "peak_memory_bytes", "mib"),
            ("per-vertex cost vs ref", lambda r: _per_vertex_ratio(r, step), "x"),
            ("temp MiB/mesh", "temp_bytes_per_mesh", "mib1"),
            ("temp B/vertex/mesh", "temp_bytes_per_vertex_mesh", "")])
        built = [r for r in records if r.get("case") == "scaling" and r.get("kind") == "topology"]
        if built:
            lines += ["Topology build of each point (cold, no cache):", ""]
            lines += _table(built, [
                ("mesh", "mesh", ""), ("vertices", "vertices", ""), ("levels", "level_sizes", ""),
                ("spiral lengths", "spiral_lengths", ""),
                ("build_hierarchy s", "build_hierarchy_s", ""),
                ("spirals_for s", "spirals_for_s", ""), ("µs/vertex", "us_per_vertex", ""),
                ("process peak RSS GiB after", lambda r: r["max_rss_bytes_after"] / 2**30, "")])
        length = [r for r in scaling if r.get("sweep") == "spiral_length"]
        lines += _table(length, [
            ("channels", lambda r: f"{r['c_in']}->{r['c_out']}", ""),
            ("spiral length", "spiral_length", ""), ("variant", "variant", ""),
            ("ms (fwd+bwd)", "median_s", "ms"), ("GFLOP/s", "gflops_per_s", ""),
            ("temp MiB", "temp_memory_bytes", "mib")])
    rendered = [r for r in records if r.get("case") == "render" and r.get("kind") == "timing"]
    if rendered:
        first = rendered[0]
        lines += [f"## Renderer ({first.get('image_size')}², batch {first.get('batch')})", ""]
        lines += _table(rendered, [
            ("mesh", "mesh", ""), ("vertices", "vertices", ""), ("faces", "faces", ""),
            ("run", "variant", ""), ("ms/image", "ms_per_image", ""),
            ("ms/batch", "median_s", "ms"), ("covered", "covered_fraction", "pct"),
            ("box candidates/image", lambda r: r["candidates"] / r["batch"], ""),
            ("temp MiB", "temp_memory_bytes", "mib")])
    retraced = [r for r in records if r.get("one_trace_per_shape") is False]
    if retraced:
        lines += ["## Trace checks", ""]
        lines += [f"- {r['case']} {r['variant']}: traced {r['traced_signatures']} times for one "
                  f"input shape (backend compilations in the first call: "
                  f"{r.get('compiles_first_call')}; none while timing)"
                  for r in retraced] + [""]
    errors = [r for r in records if r.get("kind") == "error"]
    if errors:
        lines += ["## Errors", ""]
        lines += [f"- {r['case']}: {r['error']}" for r in errors] + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# GPU runs (benchmarks.gpu)
# --------------------------------------------------------------------------------------------


def _gpu_run(records: Sequence[dict]) -> dict[str, Any]:
    return next((r for r in records if r.get("kind") == "machine"), {})


def _not_gpu_reason(records: Sequence[dict]) -> str | None:
    """Why a run of :mod:`benchmarks.gpu` is not a GPU result (``None`` when it is one)."""
    run = _gpu_run(records)
    acc = run.get("accelerator", {})
    if not acc.get("gpu"):
        return (f"JAX ran on {acc.get('jax_platform', 'an unknown platform')} "
                f"({acc.get('device_kind', '?')}); this is a CPU rehearsal of the GPU script, "
                "not a GPU result")
    if run.get("dry_run"):
        return "a dry run (the smallest shapes, not the paper's)"
    if not all(r.get("gpu_result") for r in records):
        return "some records are not marked as GPU results"
    return None


def gpu_headline(records: Sequence[dict]) -> dict[str, Any] | None:
    """The figures of a GPU result (``None`` for a run that is not one, see
    :func:`summarize_gpu`): the S2D-Dec step and its ratios, the level-0 spiral layers'
    multiples of their bandwidth floor, and the projected trainings."""
    if _not_gpu_reason(records) is not None:
        return None
    out: dict[str, Any] = {}
    for rec in records:
        if rec.get("case") == "s2d_train" and rec.get("kind") == "timing" \
                and rec.get("variant") == "jax/auto" and rec.get("setting") == "gpu_fastest":
            out["s2d"] = {"step_s": rec["median_s"], "steps_per_s": rec["steps_per_s"],
                          "batch": rec["batch"], "speedup_vs": rec.get("speedup_vs") or {}}
    floors = [r for r in records if r.get("case") == "spiral_conv" and r.get("auto")
              and r.get("mode") == "forward_backward" and r.get("times_bandwidth_floor")]
    if floors:
        out["spiral_floor"] = {
            f"B{r['batch']} L{r['level']} {r['c_in']}->{r['c_out']}": r["times_bandwidth_floor"]
            for r in floors}
    for rec in records:
        if rec.get("kind") != "projection":
            continue
        if rec["system"] == "s2d_dec" and rec["basis"] == "jax/auto, fed by InMemoryBatches":
            out["s2d_projected_h"] = rec["projected_h"]
        if rec["system"] == "motion3dgan":
            out["motion3dgan_projected_h"] = rec["projected_h"]
    return out or None


def _gpu_headline_lines(records: Sequence[dict]) -> list[str]:
    reason = _not_gpu_reason(records)
    if reason is not None:
        return ["## Headline", "", f"No GPU headline: {reason}.", ""]
    best = gpu_headline(records) or {}
    busy = machine_busy(records)
    parts = []
    s2d = best.get("s2d")
    if s2d:
        refs = s2d["speedup_vs"]
        ratios = "; ".join(f"{v:.2f}× {k}" for k, v in refs.items())
        parts.append(f"S2D-Dec train step (`jax/auto`, batch {s2d['batch']}): "
                     f"{1e3 * s2d['step_s']:.2f} ms, {s2d['steps_per_s']:.0f} steps/s"
                     + (f"; {ratios}" if ratios else ""))
    if best.get("spiral_floor"):
        worst = max(best["spiral_floor"].items(), key=lambda kv: kv[1])
        best_one = min(best["spiral_floor"].items(), key=lambda kv: kv[1])
        parts.append(f"spiral layers (forward+backward, `impl=\"auto\"`) at "
                     f"{best_one[1]:.1f}× ({best_one[0]}) to {worst[1]:.1f}× ({worst[0]}) "
                     "their bandwidth floor (target: within 3×)")
    if "s2d_projected_h" in best:
        parts.append(f"the S2D paper's training (300 epochs of 20,466 meshes) projected at "
                     f"{best['s2d_projected_h']:.2f} h")
    if "motion3dgan_projected_h" in best:
        parts.append(f"Motion3DGAN's 8000 epochs at {best['motion3dgan_projected_h']:.2f} h")
    lines = ["## Headline", ""]
    if busy:
        lines += [f"(The host was busy: {busy}; GPU steps launched from a busy host may be "
                  "slowed by it.)", ""]
    lines += ["- " + p for p in parts] + [""]
    return lines


def summarize_gpu(records: Sequence[dict], *, command: str | None = None) -> str:
    """Renders the Markdown summary of a :mod:`benchmarks.gpu` run.

    The headline is written only for a GPU result: JAX on a GPU, full shapes. A CPU run (the
    dry run) says so at the top and in place of the headline.
    """
    run = _gpu_run(records)
    acc = run.get("accelerator", {})
    info = run.get("machine", {})
    settings = run.get("settings", {})
    smi = acc.get("nvidia_smi") or {}
    reason = _not_gpu_reason(records)
    title = "GPU benchmark" if reason is None else "GPU benchmark script, not a GPU result"
    lines = [f"# jaxface {title}: run {run.get('run_id', '?')}", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    floor = next((r for r in records if r.get("kind") == "bandwidth"), {})
    hbm = (f"{acc['hbm_label']}: {acc['hbm_bytes_per_s'] / 1e12:.3g} TB/s, from "
           f"{acc.get('hbm_source')}" if acc.get("hbm_label")
           else f"not in the table; the floors use the {floor.get('label', 'measured copy')}")
    if floor.get("measured_copy_gbps"):
        hbm += (f" (a measured copy: {floor['measured_copy_gbps']:.0f} GB/s, "
                f"{100 * floor['copy_fraction_of_floor_bandwidth']:.0f}% of it)")
    versions = acc.get("versions", {})
    lines += [
        f"- Date (UTC): {run.get('started')} – {run.get('finished', '?')} "
        f"({run.get('total_s', '?')} s)",
        f"- Device: {acc.get('device_kind')} (JAX platform {acc.get('jax_platform')}, "
        f"{acc.get('device_count')} device(s)); PyTorch device: {run.get('torch_device')}"
        + (f" ({run['no_torch_reason']})" if run.get("no_torch_reason") else ""),
        f"- HBM bandwidth: {hbm}",
        f"- Driver: {smi.get('driver_version', 'unknown (no nvidia-smi)')}; CUDA (PyTorch) "
        f"{acc.get('torch_cuda')}; cuDNN {acc.get('cudnn')}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- Host: {info.get('cpu')}, {info.get('cores')} cores; load average at start "
        f"{info.get('load_average')}, at end {run.get('load_average_end')}",
        f"- Settings: PyTorch {settings.get('torch')}, torch.compile backend "
        f"{settings.get('torch_compile_backend')}; JAX matmul precision "
        f"{settings.get('jax_default_matmul_precision')}; XLA_FLAGS "
        f"`{settings.get('XLA_FLAGS') or '(none)'}`; XLA_PYTHON_CLIENT_MEM_FRACTION "
        f"{settings.get('XLA_PYTHON_CLIENT_MEM_FRACTION')}",
        f"- Mode: {'dry run' if run.get('dry_run') else 'full'}; benchmark mesh "
        f"{run.get('mesh')}, batch {run.get('batch')}, {run.get('rounds')} interleaved rounds "
        "(medians; ratios are medians of per-round ratios)",
        "",
    ]
    lines += _gpu_headline_lines(records)
    peaks = [r for r in records if r.get("kind") == "peak"]
    if peaks:
        lines += ["## Device peaks (measured)", ""]
        lines += _table(peaks, [
            ("measurement", "variant", ""), ("median ms", "median_s", "ms3"),
            ("GFLOP/s", "gflops_per_s", ""), ("GB/s", "gb_per_s", "")])
    s2d = [r for r in records if r.get("case") == "s2d_train" and r.get("kind") == "timing"]
    if s2d:
        lines += [f"## S2D-Dec train step ({s2d[0].get('vertices')} vertices, levels "
                  f"{_fmt(s2d[0].get('level_sizes'))})", ""]
        lines += _table(s2d, [
            ("setting", "setting", ""), ("variant", "variant", ""), ("batch", "batch", ""),
            ("ms/step", "median_s", "ms3"), ("steps/s", "steps_per_s", ""),
            ("meshes/s", "meshes_per_s", ""),
            ("vs official", _speedup("torch/official"), "x"),
            ("vs SpiralNet++", _speedup("torch/spiralnet_pp"), "x"),
            ("vs torch.compile", _speedup("torch/spiralnet_pp_compiled"), "x"),
            ("vs folded", _speedup("torch/folded"), "x"),
            ("× bandwidth floor", "times_bandwidth_floor", ""),
            ("TFLOP/s", lambda r: r.get("gflops_per_s") and r["gflops_per_s"] / 1e3, ""),
            ("temp MiB", "temp_memory_bytes", "mib"), ("compile s", "compile_s", "")])
    conv = [r for r in records if r.get("case") == "spiral_conv" and r.get("kind") == "timing"]
    if conv:
        lines += ["## Spiral layers against their bandwidth floor", "",
                  "Floor: the bytes a fully fused layer moves (`bytes`, "
                  "`benchmarks/analytic.py`) over the HBM bandwidth; target within 3×.", ""]
        lines += _table(conv, [
            ("batch", "batch", ""),
            ("shape", lambda r: f"L{r['level']} N={r['vertices']} L={r['spiral_length']} "
             f"{r['c_in']}->{r['c_out']}", ""),
            ("pass", "mode", ""), ("variant", "variant", ""), ("µs", "median_s", "us"),
            ("floor µs", "bandwidth_floor_s", "us"),
            ("× floor", "times_bandwidth_floor", ""),
            ("within 3×", "within_3x_bandwidth_floor", "yn"),
            ("vs best torch", "speedup_vs_best_torch", "x"), ("compile s", "compile_s", "")])
    feed = [r for r in records if r.get("case") == "data_feed" and r.get("kind") == "timing"]
    if feed:
        lines += ["## Data feed: the step fed by `InMemoryBatches` vs the step alone", ""]
        lines += _table(feed, [
            ("variant", "variant", ""), ("ms/step", "median_s", "ms3"),
            ("meshes/s", "meshes_per_s", ""), ("fed / alone", "fed_over_alone", "x"),
            ("keeps up", "keeps_up", "yn"), ("examples on device", "examples_on_device", ""),
            ("resident MiB", "resident_bytes", "mib")])
    gan = [r for r in records if r.get("case") == "motion3dgan_train"
           and r.get("kind") == "timing"]
    if gan:
        lines += ["## Motion3DGAN train step", ""]
        lines += _table(gan, [
            ("variant", "variant", ""), ("paper size", "paper_size", "yn"),
            ("batch", "batch", ""), ("G base channels", "gen_base_channels", ""),
            ("ms/step", "median_s", "ms3"), ("sequences/s", "meshes_per_s", ""),
            ("TFLOP/s", lambda r: r.get("gflops_per_s") and r["gflops_per_s"] / 1e3, ""),
            ("temp MiB", "temp_memory_bytes", "mib"), ("compile s", "compile_s", "")])
    proj = [r for r in records if r.get("kind") == "projection"]
    if proj:
        lines += ["## Projected wall time of the papers' trainings", ""]
        lines += _table(proj, [
            ("system", "system", ""), ("basis", "basis", ""), ("data", "data", ""),
            ("examples", "dataset_examples", ""), ("batch", "batch", ""),
            ("epochs", "epochs", ""), ("steps", "steps", ""), ("ms/step", "step_s", "ms3"),
            ("hours", "projected_h", ""), ("note", "note", "")])
    parity = [r for r in records if r.get("kind") == "parity"]
    if parity:
        lines += ["## Parity of the PyTorch references (same weights; TF32 on a GPU)", ""]
        lines += _table(parity, [
            ("case", "case", ""), ("reference", "variant", ""), ("device", "torch_device", ""),
            ("max |Δ output|", "max_abs_diff_output", "e"),
            ("max |output|", "max_abs_output", "e"),
            ("max |Δ kernel grad|", lambda r: r.get("max_abs_diff_grad_kernels",
                                                  r.get("max_abs_diff_grad_kernel")), "e"),
            ("max |kernel grad|", lambda r: r.get("max_abs_grad",
                                                r.get("max_abs_grad_kernel")), "e")])
    for kind, heading in (("skipped", "Skipped"), ("error", "Errors")):
        rows = [r for r in records if r.get("kind") == kind]
        if rows:
            lines += [f"## {heading}", ""]
            lines += [f"- {r['case']}{' ' + r['variant'] if r.get('variant') else ''}: "
                      f"{r.get('reason') or r.get('error')}" for r in rows] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Rewrites the Markdown summary next to each JSONL file given on the command line."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__.strip())
        return 2
    for path in paths:
        records = load_records(path)
        command = next((r.get("command") for r in records if r.get("kind") == "machine"), None)
        out = os.path.splitext(path)[0] + ".md"
        write_atomic(out, summarize(records, command=command).encode("utf-8"))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
