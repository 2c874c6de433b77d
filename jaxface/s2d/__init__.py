"""S2D-Dec (Otberdout et al., CVPR 2022): landmark displacements -> dense 4D faces.

* :mod:`~jaxface.s2d.pairs` and :mod:`~jaxface.s2d.data`: (neutral, frame, landmark
  displacement) pairs of a dataset protocol and the device batches training consumes;
* :mod:`~jaxface.s2d.model`: the template topology and run template shared by training and
  inference;
* :mod:`~jaxface.s2d.train`: the optimizer, the jitted step, S2D-Dec and Neural3DMM runs;
* :mod:`~jaxface.s2d.experiment`: one protocol/fold trained and evaluated;
* :mod:`~jaxface.s2d.tables`: Tables 1-2 and Figures 3-4 (the method registry);
* :mod:`~jaxface.s2d.inference`: a trained run on your meshes (animate, transfer, neutralise).
"""

from jaxface.s2d.data import (
    ProtocolData,
    covered_pairs,
    load_pairs,
    load_protocol,
    loss_weights,
    protocol_name,
    training_batches,
)
from jaxface.s2d.experiment import train_and_evaluate
from jaxface.s2d.inference import S2DInference
from jaxface.s2d.model import build_topology, load_template, save_template
from jaxface.s2d.pairs import PairTransform, S2DFrames, S2DPairs, make_pairs
from jaxface.s2d.tables import ABLATIONS, METHODS, Method, run_tables
from jaxface.s2d.train import make_train_step, train_neural3dmm, train_s2d

__all__ = [
    "ABLATIONS",
    "METHODS",
    "Method",
    "PairTransform",
    "ProtocolData",
    "S2DFrames",
    "S2DInference",
    "S2DPairs",
    "build_topology",
    "covered_pairs",
    "load_pairs",
    "load_protocol",
    "load_template",
    "loss_weights",
    "make_pairs",
    "make_train_step",
    "protocol_name",
    "run_tables",
    "save_template",
    "train_and_evaluate",
    "train_neural3dmm",
    "train_s2d",
    "training_batches",
]
