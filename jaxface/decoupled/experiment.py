"""One training run of the decoupled face GAN with a first look at its samples."""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from jaxface.decoupled.codes import gan_code_model
from jaxface.decoupled.data import load_faces
from jaxface.decoupled.metrics import diversity, specificity
from jaxface.decoupled.sheet import label_grid
from jaxface.decoupled.train import train_decoupled
from jaxface.files import write_json
from jaxface.viz.render import save_png

__all__ = ["train_and_sample"]


def train_and_sample(config, workdir: str) -> dict[str, Any]:
    """Trains (or resumes) the configured model in ``workdir`` and looks at its samples.

    Writes ``contact_sheet.png`` (rows: identity labels' codes, columns: expression labels'
    codes) and ``results.json``: the training summary, the diversity (global, identity,
    expression; mm) and the specificity (mm) of the samples (``config.metrics`` counts).

    Returns:
      The content of ``results.json``.
    """
    workdir = os.path.abspath(workdir)
    data = load_faces(config)
    gan, state, info = train_decoupled(config, workdir, data)
    model = gan_code_model(gan, state.gen_params)
    t = config.tables
    sheet = label_grid(model, np.asarray(state.identity_codes),
                       np.asarray(state.expression_codes), data.view.faces,
                       data.identity_names, data.expression_names,
                       identities=t.sheet_identities, expressions=t.sheet_expressions,
                       size=t.render_size)
    save_png(os.path.join(workdir, "contact_sheet.png"), sheet)
    key = jax.random.key(int(config.seed) + 1)
    k_div, k_spec = jax.random.split(key)
    m = config.metrics
    samples = model.meshes(*model.sample_codes(k_spec, int(m.specificity_samples)),
                           batch_size=config.eval_batch_size)
    results = {
        **info,
        "train_meshes": len(data.train),
        "identities": data.num_identities,
        "expressions": data.num_expressions,
        "diversity_mm": diversity(model, k_div, int(m.diversity_pairs), config.eval_batch_size),
        "specificity_mm": specificity(samples, data.train.vertices),
    }
    write_json(os.path.join(workdir, "results.json"), results)
    return results
