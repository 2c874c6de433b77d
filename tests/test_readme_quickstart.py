"""The README's quickstart runs as written (on the packaged face template)."""

import os
import re

from jaxface.data.template import load_face_template
from jaxface.mesh.io import write_mesh

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_quickstart(tmp_path, monkeypatch):
    with open(README) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert blocks, "README has no python quickstart"
    template = load_face_template(1)  # 1790 vertices: room for 4 levels
    write_mesh(tmp_path / "template.ply", template.vertices, template.faces)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[0], "README quickstart", "exec"), scope)
    assert scope["y"].shape == (8, template.vertices.shape[0], 32)
    assert scope["fine"].shape == (8, template.vertices.shape[0], 16)
