// A short DNA search with two custom transforms in the search space: the vignette of this
// folder's library (dispatcher operator dna_example::vignette, CPU and CUDA) and a gamma curve
// written in TypeScript (gamma.ts). Build the library, then run:
//
//   node scripts/build-op-library.mjs examples/custom-op build/examples/custom-op
//   npx tsc -p . && node dist/examples/custom-op/search.js [library.so] [out dir]
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// In your own project: from 'dna-augment'.
import {
  OPS,
  WRN_10_1,
  datasets,
  loadOpLibrary,
  registerOp,
  search,
  subPolicies,
  subPolicyName,
  tensor,
  tidy,
} from '../../lib/index.js';
import { gamma } from './gamma.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const library = process.argv[2] || path.join(root, 'build/examples/custom-op/libdna_example_ops.so');
const outDir = process.argv[3] || 'runs/custom-op';

console.log('operators:', loadOpLibrary(library).join(', '));
const vignette = registerOp({ name: 'Vignette', op: 'dna_example::vignette', range: [0, 1], identityAt: 0 });

// Three built-in ops and the two custom ones: 10 sub-policies.
const ops = [...OPS.filter((op) => ['Rotate', 'Contrast', 'Cutout'].includes(op.name)), vignette, gamma];
const searchSpace = { ops, subPolicies: subPolicies(ops) };

const train = await datasets.fashionMnist();
const result = await search({
  train,
  subset: 256,
  classifier: WRN_10_1,
  policy: WRN_10_1,
  epochs: 1,
  batchSize: 64,
  searchSpace,
  outDir,
  // A line per step (the epoch's end and the start are events too).
  onProgress: (p) => p.phase === 'step' && console.log(`step ${p.step}/${p.steps}: loss ${p.loss.toFixed(3)}`),
});
console.log(`policy file: ${result.policyFile}`);

// The sub-policies the searched policy prefers, on average over 64 images.
const preference = tidy(() => {
  const images = tensor(train.images.slice(0, 64 * 784), [64, 1, 28, 28])
    .float()
    .div(255);
  return Array.from(result.policy.forward(images).logits.softmax(1).mean(0).data() as Float32Array);
});
preference
  .map((share, s) => [share, subPolicyName(searchSpace, s)] as const)
  .sort((a, b) => b[0] - a[0])
  .slice(0, 3)
  .forEach(([share, name]) => console.log(`${name}: ${(100 * share).toFixed(1)}%`));
result.policy.dispose();
