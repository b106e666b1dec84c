// The addon in several Node environments at once (worker threads): each environment keeps its
// own handle classes (tensors, generators, modules, optimisers), and one that exits leaves the
// others working.
import test from 'ava';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import * as dna from '../lib/index.js';

const index = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'index.js');

// Builds one of each handle kind, trains one step and reports the loss.
const work = `
import { parentPort } from 'node:worker_threads';
const dna = await import(${JSON.stringify(index)});
const model = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: 1 });
const optimizer = dna.sgd(model, { lr: 0.1 });
const generator = new dna.Generator(3);
const images = dna.rand([4, 1, 8, 8], { generator });
const loss = dna.crossEntropy(model.forward(images), dna.tensor([0, 1, 0, 1], [4], { dtype: 'int64' }));
loss.backward();
optimizer.step();
parentPort.postMessage(loss.item());
optimizer.dispose();
model.dispose();
`;

function runWorker(): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(work, { eval: true });
    let result: number | undefined;
    worker.on('message', (value: number) => (result = value));
    worker.on('error', reject);
    worker.on('exit', (code) =>
      code === 0 && result !== undefined ? resolve(result) : reject(new Error(`worker exited with ${code}`)),
    );
  });
}

test('two workers and the main thread use the addon at once; the main thread goes on after they exit', async (t) => {
  const model = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: 1 });
  const [a, b] = await Promise.all([runWorker(), runWorker()]);
  t.true(Number.isFinite(a));
  t.is(a, b, 'the same seeded step gives the same loss in each worker');
  // Handles of every kind are still made here after the workers' environments are gone.
  const optimizer = dna.sgd(model, { lr: 0.1 });
  const x = dna.rand([4, 1, 8, 8], { generator: new dna.Generator(3) });
  const loss = dna.crossEntropy(model.forward(x), dna.tensor([0, 1, 0, 1], [4], { dtype: 'int64' }));
  t.is(loss.item(), a, 'and the same loss here');
  dna.dispose([optimizer, model, x, loss]);
});
