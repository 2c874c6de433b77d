"""The benchmark entry point.

    python -m benchmarks.run [--cases machine,s2d_train ...] [--quick] [--out benchmarks/results]

Writes ``<out>/<name>.jsonl`` (one JSON line per measurement, appended as the run goes) and
``<out>/<name>.md`` (the Markdown summary). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
import traceback

from benchmarks.common import (
    ALLOCATOR_ENV,
    Recorder,
    compile_counter,
    configure_allocator,
    device_label,
    machine_info,
    torch_available,
    utc_now,
)
from jaxface.files import write_atomic

__all__ = ["main", "parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the command line."""
    from benchmarks.cases import CASES

    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=None,
                        help=f"cases to run (comma or space separated; default all): "
                             f"{', '.join(CASES)}")
    parser.add_argument("--quick", action="store_true",
                        help="reduced shapes and rounds (about 2 minutes)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"),
                        help="output folder (default benchmarks/results)")
    parser.add_argument("--name", default=None,
                        help="file stem of the outputs (default bench-<UTC time>[-quick])")
    parser.add_argument("--torch-threads", type=int, nargs="+", default=[1, 2],
                        help="PyTorch intra-op thread counts the references run at, each in "
                             "the same run (default 1 2); ratios against the fastest count "
                             "make the headline")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch references even if torch is installed")
    parser.add_argument("--allocator", choices=("tuned", "default"), default="tuned",
                        help="glibc malloc setting for large blocks (default tuned: keep them "
                             "in the heap; see benchmarks/README.md)")
    parser.add_argument("--data-dir",
                        default=os.environ.get("JAXFACE_BENCH_DATA_DIR",
                                               os.path.expanduser("~/.cache/jaxface/datasets")),
                        help="TFDS data folder with prepared datasets (env "
                             "JAXFACE_BENCH_DATA_DIR; default ~/.cache/jaxface/datasets)")
    parser.add_argument("--dataset-config", default="coma_scale",
                        help="faces4d config read by the data_pipeline case")
    parser.add_argument("--cache-dir", default=None,
                        help="topology cache folder (default: jaxface's cache folder)")
    args = parser.parse_args(argv)
    if args.cases is not None:
        names = [n for item in args.cases for n in item.split(",") if n]
        unknown = sorted(set(names) - set(CASES))
        if unknown:
            parser.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
        args.cases = [n for n in CASES if n in names]
    else:
        args.cases = list(CASES)
    return args


_REEXEC_MARKER = "JAXFACE_BENCH_ALLOCATOR"


def _load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the system has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _reexec_with_allocator(argv: list[str]) -> None:
    """Restarts this command with :data:`ALLOCATOR_ENV` set (glibc reads it at start-up)."""
    env = {**os.environ, **ALLOCATOR_ENV, _REEXEC_MARKER: "tuned"}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.run", *argv], env)


def main(argv: list[str] | None = None, *, reexec: bool = True) -> int:
    """Runs the selected cases; returns the process exit status (1 if a case failed).

    Args:
      argv: command-line arguments (default ``sys.argv[1:]``).
      reexec: with ``--allocator tuned`` on Linux, restart the process once with
        :data:`benchmarks.common.ALLOCATOR_ENV` in its environment before doing anything.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if (args.allocator == "tuned" and reexec and sys.platform.startswith("linux")
            and os.environ.get(_REEXEC_MARKER) != "tuned"):
        _reexec_with_allocator(argv)
    allocator_applied = configure_allocator(args.allocator)

    from benchmarks.cases import CASES
    from benchmarks.fixtures import Context
    from benchmarks.report import summarize

    use_torch = torch_available() and not args.no_torch
    if use_torch:
        import torch

        torch.set_num_threads(args.torch_threads[-1])
    started = utc_now()
    name = args.name or ("bench-" + started.replace(":", "").replace("-", "")[:15]
                         + ("-quick" if args.quick else ""))
    os.makedirs(args.out, exist_ok=True)
    jsonl = os.path.join(args.out, name + ".jsonl")
    md = os.path.join(args.out, name + ".md")
    if os.path.exists(jsonl):
        os.remove(jsonl)
    allocator = args.allocator if allocator_applied else "unchanged (mallopt unavailable)"
    if args.allocator == "tuned" and os.environ.get(_REEXEC_MARKER) == "tuned":
        allocator = "tuned (environment at start-up)"
    recorder = Recorder(jsonl, name, common={"device": device_label()})
    command = "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in argv)
    machine_record = {
        "case": "run", "kind": "machine", "machine": machine_info(),
        "started": started, "quick": args.quick, "allocator": allocator,
        "torch_threads": list(args.torch_threads) if use_torch else None, "cases": args.cases,
        "command": command,
    }
    recorder.add(**machine_record)
    failed = False
    with tempfile.TemporaryDirectory(prefix="jaxface-bench-") as scratch:
        ctx = Context(
            recorder=recorder, counter=compile_counter(), quick=args.quick, torch=use_torch,
            torch_threads=args.torch_threads[-1],
            torch_thread_settings=tuple(args.torch_threads), peaks={}, data_dir=args.data_dir,
            dataset_config=args.dataset_config, cache_dir=args.cache_dir, scratch_dir=scratch,
            shared={}, allocator=args.allocator,
        )
        t_run = time.perf_counter()
        for case in args.cases:
            print(f"[{case}]", flush=True)
            recorder.add(case=case, kind="load", load_average=_load())
            t0 = time.perf_counter()
            try:
                CASES[case].run(ctx)
            except Exception as err:  # noqa: BLE001 - record and go on with the other cases.
                failed = True
                traceback.print_exc()
                recorder.add(case=case, kind="error", error=f"{type(err).__name__}: {err}")
            print(f"[{case}] {time.perf_counter() - t0:.0f} s", flush=True)
        total = time.perf_counter() - t_run
    end = {"finished": utc_now(), "total_s": round(total, 1), "load_average_end": _load()}
    recorder.records[0].update(end)  # the lines were appended as measured; now the final file
    write_atomic(jsonl, "".join(json.dumps(r) + "\n" for r in recorder.records).encode("utf-8"))
    write_atomic(md, summarize(recorder.records, command=command).encode("utf-8"))
    print(f"wrote {jsonl} and {md} ({total:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
