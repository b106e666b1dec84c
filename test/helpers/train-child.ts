// A training run for the SIGKILL test: trains until killed, writing checkpoints into argv[2].
import * as dna from '../../lib/index.js';
import { train } from '../../lib/run/train.js';

const dir = process.argv[2];
const full = await dna.datasets.fashionMnist({ split: 'train' });
const data = dna.stratifiedSubset(full, 192, 9);
await train({
  train: data,
  model: { ...dna.WRN_10_1 },
  epochs: 1000,
  batchSize: 32,
  seed: 5,
  outDir: dir,
  resume: true,
});
