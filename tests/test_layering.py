"""The architecture's rules, checked: one-way layers, no import cycle, numpy-only builders,
sorted public surfaces."""

import importlib
import os
import pkgutil
import shutil
import subprocess
import sys

import grimp
import pytest

import jaxface

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or "lint-imports"
    out = subprocess.run([exe, "--config", os.path.join(ROOT, "pyproject.toml")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def _strongly_connected(adjacency):
    """Tarjan's algorithm (iterative); returns the components with more than one module."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in adjacency:
        if root in index:
            continue
        work = [(root, iter(sorted(adjacency[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adjacency[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    graph = grimp.build_graph("jaxface", "datasets_tfds", "experiments", "benchmarks")
    modules = set(graph.modules)
    adjacency = {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in modules}
    assert _strongly_connected(adjacency) == []
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]]


def test_builders_and_the_numpy_layers_load_without_jax():
    code = ("import sys, datasets_tfds.faces4d.faces4d, datasets_tfds.coma.coma, "
            "jaxface.mesh, jaxface.data, jaxface.baselines, jaxface.eval, jaxface.configs; "
            "print(sorted(m for m in ('jax', 'flax', 'optax', 'grain') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def _isort_key(name):
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def _packages():
    yield jaxface
    for info in pkgutil.walk_packages(jaxface.__path__, "jaxface."):
        if info.ispkg:
            yield importlib.import_module(info.name)


@pytest.mark.parametrize("package", [p.__name__ for p in _packages() if p is not jaxface])
def test_every_package_has_a_sorted_public_surface(package):
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{package} has no __all__"
    assert list(names) == sorted(names, key=_isort_key), f"{package}.__all__ is not sorted"
    assert len(set(names)) == len(names)
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{package}.__all__ names {missing} that it does not define"
