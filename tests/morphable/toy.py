"""A small random morphable model with FLAME's structure (an icosphere head, 5 joints)."""

import numpy as np
from scipy.spatial.transform import Rotation

from jaxface.mesh import primitives
from jaxface.morphable.model import BarycentricEmbedding, MorphableModel


def make_toy_model(seed: int = 0, *, num_shape: int = 6, num_expression: int = 4,
                   posedirs: bool = True, contour: bool = False) -> MorphableModel:
    """Random bases, weights and embeddings on a 42-vertex icosphere of radius 0.1 m."""
    rng = np.random.default_rng(seed)
    v, f = primitives.icosphere(1)
    v = v.astype(np.float64) * 0.1
    n, j = v.shape[0], 5
    j_regressor = rng.uniform(size=(j, n)) ** 4
    j_regressor /= j_regressor.sum(1, keepdims=True)
    weights = rng.uniform(size=(n, j)) ** 3
    weights /= weights.sum(1, keepdims=True)

    def embedding(*shape):
        bary = rng.uniform(size=(*shape, 3))
        return BarycentricEmbedding(rng.integers(0, f.shape[0], size=shape),
                                    bary / bary.sum(-1, keepdims=True))

    mp_index = rng.permutation(478)[:10]
    return MorphableModel(
        name="toy",
        v_template=v,
        faces=f,
        shapedirs=rng.normal(size=(n, 3, num_shape)) * 2e-3,
        exprdirs=rng.normal(size=(n, 3, num_expression)) * 2e-3,
        expression_names=tuple(f"e{i}" for i in range(num_expression)),
        eyelids=rng.normal(size=(2, n, 3)) * 1e-3,
        posedirs=rng.normal(size=(36, 3 * n)) * 1e-3 if posedirs else None,
        j_regressor=j_regressor,
        parents=np.array([-1, 0, 1, 1, 1]),
        lbs_weights=weights,
        landmarks68=embedding(68),
        mediapipe_landmarks=embedding(10),
        mediapipe_indices=mp_index,
        masks={"face": np.arange(0, n, 2), "lips": np.array([3, 1, 3])},
        face_mask_faces=f[np.all(f % 2 == 0, axis=1)],
        contour_embedding=embedding(79, 17) if contour else None,
    )


def lbs_numpy(v, pose, j_regressor, parents, weights, posedirs):
    """Skinning written out joint by joint (scipy rotations, 4x4 matrices, float64)."""
    rots = [Rotation.from_rotvec(p).as_matrix() for p in pose]
    joints = j_regressor @ v
    if posedirs is not None:
        feats = np.concatenate([(r - np.eye(3)).ravel() for r in rots[1:]])
        v = v + (feats @ posedirs).reshape(v.shape)
    world = []
    for j, parent in enumerate(parents):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0.0)
        world.append(local if parent < 0 else world[parent] @ local)
    out = np.zeros_like(v)
    for j in range(len(parents)):
        a = world[j].copy()
        a[:3, 3] -= world[j][:3, :3] @ joints[j]
        out += weights[:, j:j + 1] * (v @ a[:3, :3].T + a[:3, 3])
    return out, np.array([g[:3, 3] for g in world])


def morph_numpy(model, shape, expression, pose, jaw, eyelids):
    """FLAME's forward pass for one face in float64 numpy: ``(vertices, landmarks68,
    mediapipe)``; neck and eyes at zero."""
    v = (model.v_template.astype(np.float64) + model.shapedirs @ shape
         + model.exprdirs @ expression + np.tensordot(eyelids, model.eyelids, axes=1))
    full = np.zeros((5, 3))
    full[0], full[2] = pose, jaw
    verts, _ = lbs_numpy(v, full, model.j_regressor.astype(np.float64), model.parents.tolist(),
                         model.lbs_weights.astype(np.float64),
                         None if model.posedirs is None else model.posedirs.astype(np.float64))

    def points(emb):
        out = np.zeros((emb.faces.shape[0], 3))
        for i, (tri, bary) in enumerate(zip(emb.faces, emb.bary, strict=True)):
            for k in range(3):
                out[i] += bary[k] * verts[model.faces[tri, k]]
        return out

    return verts, points(model.landmarks68), points(model.mediapipe_landmarks)
