"""The written ``.glb`` files pass the Khronos glTF validator with no error and no warning.

The validator (npm package ``gltf-validator``, the reference implementation of the glTF 2.0
specification's checks) is installed once into ``~/.cache/jaxface-tests/gltf-validator`` (or
``$JAXFACE_TEST_CACHE/gltf-validator``) with ``npm install --prefix`` and run by node on each file.
The test skips only when node or npm is missing or the npm registry cannot be reached.
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from filelock import FileLock

from jaxface.mesh.gltf import write_glb
from tests.mesh.motion import jaw_motion

VALIDATOR = "gltf-validator@2.0.0-dev.3.10"
_OFFLINE = ("ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET", "ENETUNREACH",
            "network", "getaddrinfo")
_SCRIPT = """
const validator = require(process.argv[1]);  // node -e: the arguments follow node
const fs = require("fs");
const results = [];
(async () => {
  for (const file of process.argv.slice(2)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)),
                                                 { maxIssues: 100 });
    results.push({ file, issues: report.issues });
  }
  console.log(JSON.stringify(results));
})().catch((err) => { console.error(err); process.exit(1); });
"""


@pytest.fixture(scope="module")
def validator_module():
    """The folder of the installed validator package (installed on first use)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the Khronos glTF validator; not found")
    root = os.environ.get("JAXFACE_TEST_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "jaxface-tests"))
    prefix = os.path.join(root, "gltf-validator")
    module = os.path.join(prefix, "node_modules", "gltf-validator")
    os.makedirs(root, exist_ok=True)
    with FileLock(os.path.join(root, "gltf-validator.lock")):
        if not os.path.isfile(os.path.join(module, "package.json")):
            done = subprocess.run(
                [npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "--silent",
                 VALIDATOR], capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                output = done.stdout + done.stderr
                if any(word in output for word in _OFFLINE):
                    pytest.skip(f"the npm registry is unreachable, cannot install {VALIDATOR}: "
                                f"{output.strip().splitlines()[-1] if output.strip() else ''}")
                raise AssertionError(f"npm install {VALIDATOR} failed:\n{output}")
    return module


def validate(module: str, paths: list) -> list[dict]:
    done = subprocess.run(["node", "-e", _SCRIPT, module, *map(str, paths)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_animated_still_and_exact_files_have_no_errors_and_no_warnings(validator_module,
                                                                        tmp_path):
    smooth, faces = jaw_motion(30)
    noisy, _ = jaw_motion(8, noise=2e-4)
    infos = [
        write_glb(tmp_path / "svd.glb", smooth, faces, fps=30.0, name="jaw"),
        write_glb(tmp_path / "frames.glb", noisy, faces, fps=24.0),
        write_glb(tmp_path / "no_normals.glb", noisy, faces, fps=30.0, normals=False),
        write_glb(tmp_path / "still.glb", smooth[:1], faces, fps=30.0),
        write_glb(tmp_path / "based.glb", smooth, faces, fps=60.0, base=np.mean(smooth, 0)),
    ]
    assert [i.encoding for i in infos] == ["svd", "frames", "frames", "static", "svd"]
    results = validate(validator_module, [i.path for i in infos])
    for result in results:
        issues = result["issues"]
        problems = [m for m in issues["messages"] if m["severity"] <= 1]
        assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, (result["file"], problems)
    assert len(results) == len(infos)
