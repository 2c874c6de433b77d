"""Several processes sharing one tables work directory: every cell runs exactly once."""

import subprocess
import sys
import textwrap
import time

WORKER = textwrap.dedent("""
    import os, sys, time
    from jaxface.s2d.tables import _share

    root, name, crash = sys.argv[1], sys.argv[2], sys.argv[3] == "crash"
    folders = [os.path.join(root, f"cell{i}") for i in range(6)]

    def done(folder):
        return os.path.exists(os.path.join(folder, "done"))

    def work(folder):
        with open(os.path.join(root, "log"), "a") as log:
            log.write(f"{name} {os.path.basename(folder)}\\n")
        if crash:
            os._exit(3)  # dies holding the cell's lock, its work unfinished
        time.sleep(0.3)
        open(os.path.join(folder, "done"), "w").close()

    open(os.path.join(root, f"ready_{name}"), "w").close()
    while not os.path.exists(os.path.join(root, "go")):
        time.sleep(0.01)
    _share(folders, done, work)
    assert all(done(f) for f in folders)
""")


def _workers(root, *specs):
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(root), name, mode])
             for name, mode in specs]
    deadline = time.monotonic() + 120
    while not all((root / f"ready_{name}").exists() for name, _ in specs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.05)
    (root / "go").touch()
    return [p.wait(timeout=120) for p in procs]


def _log(root):
    return [line.split() for line in (root / "log").read_text().splitlines()]


def test_two_processes_split_the_cells_and_run_each_once(tmp_path):
    assert _workers(tmp_path, ("a", "ok"), ("b", "ok")) == [0, 0]
    log = _log(tmp_path)
    assert sorted(cell for _, cell in log) == [f"cell{i}" for i in range(6)]
    assert {name for name, _ in log} == {"a", "b"}  # both worked, neither twice on a cell


def test_a_cell_whose_holder_died_is_done_by_the_other_process(tmp_path):
    assert _workers(tmp_path, ("a", "crash"), ("b", "ok")) == [3, 0]
    log = _log(tmp_path)
    crashed = [cell for name, cell in log if name == "a"]
    assert len(crashed) == 1
    assert sorted(cell for name, cell in log if name == "b") == [f"cell{i}" for i in range(6)]
    assert all((tmp_path / f"cell{i}" / "done").exists() for i in range(6))
