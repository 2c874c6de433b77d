// Decodes a meshopt-compressed, quantised glTF binary (Face Cap's facecap.glb) to plain JSON.
//
// Used by build_arkit_basis.py. Needs Node.js (tested with 20) and the npm packages
// @gltf-transform/core, @gltf-transform/extensions and meshoptimizer in a folder of their own:
//
//   npm install --prefix /tmp/facecap-node @gltf-transform/core@4.5.1 \
//       @gltf-transform/extensions@4.5.1 meshoptimizer@1.3.0
//   node experiments/assets/decode_facecap.mjs facecap.glb facecap.json \
//       /tmp/facecap-node/node_modules
//
// The JSON holds, without any geometric processing:
//   nodes:      [{name, parent, mesh, translation [3], rotation [4] (x, y, z, w), scale [3]}]
//   meshes:     [{name, target_names, primitives: [{positions [V*3], indices [3F],
//                 targets: [[V*3] position deltas]}]}]
//               positions and deltas are accessor values (dequantised only by the accessor's
//               own normalisation; KHR_mesh_quantization's node scale/translation is left to
//               the caller)
//   animations: [{name, channels: [{node, path, interpolation, times [T], values [T*C]}]}]
//               values are denormalised to floats (normalised uint8/int16 → [0, 1] / [-1, 1])

import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [input, output, modules] = process.argv.slice(2);
if (!input || !output || !modules) {
  console.error('usage: node decode_facecap.mjs INPUT.glb OUTPUT.json NODE_MODULES_DIR');
  process.exit(2);
}
const req = createRequire(join(resolve(modules), '..', 'package.json'));
const load = async (name) => import(pathToFileURL(req.resolve(name)).href);
const { NodeIO } = await load('@gltf-transform/core');
const { ALL_EXTENSIONS } = await load('@gltf-transform/extensions');
const { MeshoptDecoder } = await load('meshoptimizer');
await MeshoptDecoder.ready;

const io = new NodeIO()
  .registerExtensions(ALL_EXTENSIONS)
  .registerDependencies({ 'meshopt.decoder': MeshoptDecoder });
const doc = await io.readBinary(new Uint8Array(readFileSync(input)));
const root = doc.getRoot();
const nodes = root.listNodes();
const meshes = root.listMeshes();

// Every element of an accessor, flattened, as floats (normalised integers are denormalised).
function values(accessor) {
  const n = accessor.getCount();
  const out = [];
  const el = [];
  for (let i = 0; i < n; i++) out.push(...accessor.getElement(i, el));
  return out;
}

const parentOf = new Map();
for (const [i, node] of nodes.entries()) {
  for (const child of node.listChildren()) parentOf.set(child, i);
}

const result = {
  nodes: nodes.map((node) => ({
    name: node.getName(),
    parent: parentOf.has(node) ? parentOf.get(node) : -1,
    mesh: node.getMesh() ? meshes.indexOf(node.getMesh()) : -1,
    translation: node.getTranslation(),
    rotation: node.getRotation(),
    scale: node.getScale(),
  })),
  meshes: meshes.map((mesh) => ({
    name: mesh.getName(),
    target_names: mesh.getExtras().targetNames ?? [],
    primitives: mesh.listPrimitives().map((prim) => ({
      positions: values(prim.getAttribute('POSITION')),
      indices: prim.getIndices() ? Array.from(prim.getIndices().getArray()) : [],
      targets: prim.listTargets().map((t) => values(t.getAttribute('POSITION'))),
    })),
  })),
  animations: root.listAnimations().map((anim) => ({
    name: anim.getName(),
    channels: anim.listChannels().map((ch) => ({
      node: ch.getTargetNode() ? nodes.indexOf(ch.getTargetNode()) : -1,
      path: ch.getTargetPath(),
      interpolation: ch.getSampler().getInterpolation(),
      times: values(ch.getSampler().getInput()),
      values: values(ch.getSampler().getOutput()),
    })),
  })),
};
writeFileSync(output, JSON.stringify(result));
const counts = `${meshes.length} meshes, ${result.animations.length} animations`;
console.error(`decoded ${counts} -> ${output}`);
