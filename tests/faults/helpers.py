"""What the fault tests share: subprocess runs, file listings and a small tmpfs."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def env() -> dict[str, str]:
    """The environment of a subprocess run: CPU only, unbuffered, the repository importable."""
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1", PYTHONPATH=ROOT)


def tiny_command(workdir, *args) -> list[str]:
    """The command line of ``python -m tests.faults.tiny_run WORKDIR ARGS``."""
    return [sys.executable, "-m", "tests.faults.tiny_run", str(workdir), *map(str, args)]


def run(command, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=timeout)


def files_under(folder) -> list[str]:
    """Every file and folder below ``folder``, as sorted relative paths."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            found.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(found)


def stray(folder) -> list[str]:
    """Temporary or rejected leftovers below ``folder`` (partial checkpoints, temp files)."""
    return [p for p in files_under(folder)
            if ".tmp" in os.path.basename(p) or "orbax-checkpoint-tmp" in p
            or p.startswith("checkpoints_rejected")]


def checkpoint_steps(workdir) -> list[int]:
    folder = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(n) for n in os.listdir(folder) if n.isdigit())


_LOG_LINE = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d\d")  # glog lines of the C++ runtimes


def one_line(stderr: str) -> str:
    """The only line of ``stderr`` besides C++ runtime log lines; asserts there is one."""
    lines = [line for line in stderr.strip().splitlines()
             if line.strip() and not _LOG_LINE.match(line)]
    assert len(lines) == 1, stderr
    return lines[0]


@contextlib.contextmanager
def small_tmpfs(parent, size: str):
    """A tmpfs of ``size`` (e.g. ``"600k"``) mounted in a new folder of ``parent``.

    Yields ``None`` when mounting is not possible (not root, no permission); the caller skips.
    """
    folder = os.path.join(parent, f"tmpfs-{uuid.uuid4().hex[:8]}")
    os.makedirs(folder)
    if os.geteuid() != 0:
        yield None
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder],
                             capture_output=True).returncode == 0
    if not mounted:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", folder], capture_output=True)
