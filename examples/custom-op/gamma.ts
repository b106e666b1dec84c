// A transform written in TypeScript, as a module the command line imports: registering it makes
// the op 'Gamma' known, so that `dna search --import <this module's .js> --custom-op Gamma` adds it
// to the search space, and `dna train` and `dna report` run a policy that uses it.
//
//   npx tsc -p . && npx dna search --data fashion-mnist --model wrn-10-1 --epochs 1 --subset 256 \
//     --import dist/examples/custom-op/gamma.js --custom-op Gamma --out runs/gamma

// In your own project: from 'dna-augment'.
import { registerOp } from '../../lib/index.js';

/** A gamma curve: each image's pixels raised to its value, from 0.5 (brighter) to 2 (darker); 1 at m = 1/3. */
export const gamma = registerOp({
  name: 'Gamma',
  transform: (images, values) => images.pow(values.reshape([-1, 1, 1, 1])),
  range: [0.5, 2],
  identityAt: 1 / 3,
});
