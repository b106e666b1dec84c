// A two-layer perceptron without batch norm, written with tensor ops, for the gradient-sync test:
// with no batch statistics, the mean of the ranks' gradients over halves of a batch is the
// gradient over the whole batch, so world 2 with B/2 per rank must match one process with B.
import * as dna from '../../lib/index.js';
import { tinyDataset } from './tiny-data.js';

/** The full batch of the single-process reference; each of W ranks takes MLP_BATCH / W of it. */
export const MLP_BATCH = 16;
const data = tinyDataset(64);
const inputs = 64;
const hidden = 16;

/** W1 [64, 16], b1 [16], W2 [16, 2], b2 [2], the same on every call. */
export function mlpParameters(): dna.Tensor[] {
  const generator = new dna.Generator(11);
  const weights = (shape: number[], scale: number) =>
    dna.tidy(() => dna.randn(shape, { generator }).mul(scale)).requireGrad();
  return [
    weights([inputs, hidden], 0.2),
    dna.zeros([hidden]).requireGrad(),
    weights([hidden, 2], 0.2),
    dna.zeros([2]).requireGrad(),
  ];
}

/** Images [count, 64] in [0, 1] and labels [count] of step `step`'s batch, from its `start`-th image on. */
export function mlpBatch(step: number, start: number, count: number): { images: dna.Tensor; labels: dna.Tensor } {
  const pixels = new Float32Array(count * inputs);
  const labels = new BigInt64Array(count);
  for (let i = 0; i < count; i++) {
    const index = (step * MLP_BATCH + start + i) % data.count;
    for (let p = 0; p < inputs; p++) pixels[i * inputs + p] = data.images[index * inputs + p] / 255;
    labels[i] = BigInt(data.labels[index]);
  }
  return { images: dna.tensor(pixels, [count, inputs]), labels: dna.tensor(labels, [count]) };
}

/** The mean cross-entropy of the perceptron on a batch. */
export function mlpLoss([w1, b1, w2, b2]: dna.Tensor[], images: dna.Tensor, labels: dna.Tensor): dna.Tensor {
  return dna.crossEntropy(images.matmul(w1).add(b1).relu().matmul(w2).add(b2), labels);
}
