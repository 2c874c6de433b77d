"""The open model: consistent with the template, the ARKit basis and its own build report."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.data.expression_basis import load_expression_basis
from jaxface.data.template import IBUG68_VERTICES, load_face_template
from jaxface.morphable.forward import FaceParams, morph
from jaxface.morphable.model import MorphableModelError
from jaxface.morphable.open_model import OPEN_MODEL_ASSET, load_open_model, model_from_arrays


@pytest.fixture(scope="module")
def model():
    return load_open_model()


@pytest.fixture(scope="module")
def arrays():
    import importlib.resources

    ref = importlib.resources.files("jaxface").joinpath("assets", OPEN_MODEL_ASSET)
    with ref.open("rb") as fh, np.load(fh) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def run(model):
    return jax.jit(functools.partial(morph, model))


def _with(model, **changes):
    return FaceParams.zeros(model).replace(
        **{k: jnp.asarray(v, jnp.float32)[None] for k, v in changes.items()})


def test_structure(model):
    template = load_face_template(0)
    assert model.name == "jaxface-open" and model.num_vertices == 468
    np.testing.assert_array_equal(model.faces, template.faces)
    assert model.num_joints == 5 and model.parents.tolist() == [-1, 0, 1, 1, 1]
    assert 50 <= model.num_shape <= 99 and model.num_expression == 46
    names = set(model.expression_names)
    assert not names & {"jawOpen", "jawLeft", "jawRight", "eyeBlink_L", "eyeBlink_R", "tongueOut"}
    assert {"mouthSmile_L", "browInnerUp", "jawForward"} <= names
    # The mean identity is the template's face to within a millimetre.
    rms = np.sqrt(np.mean(np.sum((model.v_template - template.vertices) ** 2, axis=1)))
    assert rms < 1e-3
    # Identity components: standard deviations of a few millimetres, decreasing.
    sd = np.sqrt(np.mean(np.sum(model.shapedirs ** 2, axis=1), axis=0))
    assert 2e-3 < sd[0] < 6e-3 and np.all(np.diff(sd) <= 1e-9)
    assert model.posedirs.shape == (36, 1404)
    assert np.all(model.posedirs[:9] == 0) and np.all(model.posedirs[18:] == 0)
    np.testing.assert_allclose(model.lbs_weights[:, [0, 3, 4]], 0.0)


def test_zero_parameters_give_the_template(model, run):
    out = run(FaceParams.zeros(model))
    np.testing.assert_allclose(np.asarray(out.vertices[0]), model.v_template, atol=1e-7)


def test_landmarks_are_the_template_vertices(model, run, rng):
    params = FaceParams.zeros(model, (8,)).replace(
        shape=jnp.asarray(rng.normal(size=(8, model.num_shape)), jnp.float32),
        expression=jnp.asarray(rng.uniform(size=(8, 46)) * 0.3, jnp.float32),
        jaw=jnp.asarray(rng.uniform(size=(8, 3)) * [0.3, 0.05, 0.05], jnp.float32),
        pose=jnp.asarray(rng.normal(size=(8, 3)) * 0.2, jnp.float32))
    out = run(params)
    v = np.asarray(out.vertices)
    np.testing.assert_allclose(np.asarray(out.landmarks68), v[:, list(IBUG68_VERTICES)],
                               atol=1e-7)
    np.testing.assert_array_equal(model.mediapipe_indices, np.arange(468))
    np.testing.assert_allclose(np.asarray(out.mediapipe), v, atol=1e-7)


def _rms(x):
    return float(np.sqrt(np.mean(np.sum(x ** 2, axis=-1))))


def test_jaw_rotation_reproduces_jaw_open(model, arrays, run):
    basis = load_expression_basis(0)
    angle, left, right = (float(a) for a in arrays["jaw_angles"])
    assert 0.3 < angle < 0.7 and left > 0 > right  # opening is +x, the chin to its left is +y
    opened = np.asarray(run(_with(model, jaw=[angle, 0, 0])).vertices[0])
    target = model.v_template + basis.displacements[basis.index("jawOpen")]
    assert np.abs(opened - target).max() < 1e-4  # exact up to the float16 storage
    # Half the angle is close to half the shape (the residual grows as sin t), and opens it.
    half = np.asarray(run(_with(model, jaw=[angle / 2, 0, 0])).vertices[0])
    assert _rms(half - model.v_template - 0.5 * basis.displacements[basis.index("jawOpen")]) \
        < 1.5e-3
    lower, upper, chin = IBUG68_VERTICES[66], IBUG68_VERTICES[62], IBUG68_VERTICES[8]
    gap = half[upper, 1] - half[lower, 1]
    closed = model.v_template[upper, 1] - model.v_template[lower, 1]
    assert gap > closed + 0.01  # the lower lip moves down by more than a centimetre
    assert half[chin, 1] < model.v_template[chin, 1] - 0.005
    np.testing.assert_allclose(half[IBUG68_VERTICES[27]], model.v_template[IBUG68_VERTICES[27]],
                               atol=1e-6)  # the nose bridge stays
    # Sideways: the chin goes to the subject's left (+x) for jawLeft; the shapes are matched up
    # to their common part (the chin coming forward), which jawForward carries.
    for yaw, name, sign in ((left, "jawLeft", 1.0), (right, "jawRight", -1.0)):
        v = np.asarray(run(_with(model, jaw=[0, yaw, 0])).vertices[0])
        shape = basis.displacements[basis.index(name)]
        assert _rms(v - model.v_template - shape) < 0.5 * _rms(shape)
        assert sign * (v[chin, 0] - model.v_template[chin, 0]) > 0.005
    assert np.abs(model.posedirs).max() < 0.05  # bounded correctives (metres per unit of R - I)


def test_eyelids_close_the_eyes(model, run):
    basis = load_expression_basis(0)
    closed = np.asarray(run(_with(model, eyelids=[1.0, 1.0])).vertices[0])
    open_ = model.v_template

    def opening(v, upper, lower):
        return np.mean(v[list(upper), 1] - v[list(lower), 1])

    for upper, lower in (((160, 158), (144, 153)), ((385, 387), (380, 373))):
        assert opening(open_, upper, lower) > 6e-3
        assert opening(closed, upper, lower) < 2e-3
    left_only = np.asarray(run(_with(model, eyelids=[1.0, 0.0])).vertices[0])
    np.testing.assert_allclose(left_only - open_, basis.displacements[basis.index("eyeBlink_L")],
                               atol=2e-5)
    assert opening(left_only, (160, 158), (144, 153)) > 6e-3  # the right eye stays open


def test_regions(model):
    template = load_face_template(0)
    masks = model.masks
    assert set(masks) >= {"face", "lips", "eye_region", "left_eye_region", "right_eye_region",
                          "nose", "forehead"}
    np.testing.assert_array_equal(masks["face"], np.arange(468))
    np.testing.assert_array_equal(model.face_mask_faces, model.faces)
    lm = np.array(IBUG68_VERTICES)
    assert set(lm[48:68]) <= set(masks["lips"]) and set(lm[36:48]) <= set(masks["eye_region"])
    assert set(lm[27:36]) <= set(masks["nose"]) and set(lm[17:27]) <= set(masks["eye_region"])
    assert not set(masks["lips"]) & set(masks["nose"])
    brow = template.vertices[lm[17:27]]
    order = np.argsort(brow[:, 0])
    forehead = template.vertices[masks["forehead"]]
    assert np.all(forehead[:, 1] > np.interp(forehead[:, 0], brow[order, 0], brow[order, 1]))
    for name in ("lips", "eye_region", "nose", "forehead"):  # symmetric regions
        np.testing.assert_array_equal(np.sort(template.mirror[masks[name]]), masks[name])
    np.testing.assert_array_equal(np.sort(template.mirror[masks["left_eye_region"]]),
                                  masks["right_eye_region"])
    assert np.all(template.vertices[masks["left_eye_region"], 0] > 0)  # x > 0: subject's left


def test_joint_regressor_is_affine(model, rng):
    np.testing.assert_allclose(model.j_regressor.sum(axis=1), 1.0, atol=1e-5)
    # Joints move with the face: a rigid motion of the mesh moves them the same way.
    rot = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    rot *= np.linalg.det(rot)
    moved = model.v_template @ rot.T + [0.01, -0.02, 0.03]
    np.testing.assert_allclose(model.j_regressor @ moved,
                               (model.j_regressor @ model.v_template) @ rot.T
                               + [0.01, -0.02, 0.03], atol=2e-6)


def test_missing_arrays_are_named(arrays):
    broken = {k: v for k, v in arrays.items() if k != "lbs_weights"}
    with pytest.raises(MorphableModelError, match="jaxface-open: missing array 'lbs_weights'"):
        model_from_arrays(broken)
