// The training engine: it learns, it resumes to the same weights, it survives SIGKILL, it stops
// on NaN keeping the last good checkpoint, and the event loop stays responsive.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as dna from '../lib/index.js';
import { loadCheckpoint } from '../lib/engine/checkpoint.js';
import { CHECKPOINT_KIND, train } from '../lib/run/train.js';
import { evaluate } from '../lib/run/evaluate.js';
import { TrainingDivergedError } from '../lib/run/run-state.js';

const here = path.dirname(fileURLToPath(import.meta.url));

async function fashion(): Promise<{ train: dna.ImageDataset; test: dna.ImageDataset }> {
  const [full, fullTest] = await Promise.all([
    dna.datasets.fashionMnist({ split: 'train' }),
    dna.datasets.fashionMnist({ split: 'test' }),
  ]);
  return { train: dna.stratifiedSubset(full, 2000, 1), test: dna.stratifiedSubset(fullTest, 1000, 2) };
}

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'dna-train-'));
}

function parametersOf(model: dna.Module): number[][] {
  return model.parameters().map((p) => Array.from(p.data() as Float32Array));
}

test.serial('a small WRN learns Fashion-MNIST: well above chance after 2 epochs on 2,000 images', async (t) => {
  const data = await fashion();
  const result = await train({
    train: data.train,
    test: data.test,
    model: { ...dna.WRN_10_1 },
    epochs: 2,
    batchSize: 64,
    lr: 0.05,
    seed: 3,
  });
  t.log(`test accuracy ${result.testAccuracy} after ${result.steps} steps in ${result.seconds.toFixed(1)} s`);
  // Chance is 0.10; a linear classifier on these 2,000 images reaches about 0.75.
  t.true(result.testAccuracy! > 0.6, `test accuracy ${result.testAccuracy}`);
  const again = await evaluate({ model: result.model, data: data.test });
  t.is(again.count, 1000);
  t.is(again.accuracy, result.testAccuracy!);
  result.model.dispose();
});

test.serial('stopping after k steps and resuming gives the same weights as running straight through', async (t) => {
  const data = await fashion();
  const small = dna.stratifiedSubset(data.train, 320, 4);
  const common = {
    train: small,
    model: { ...dna.WRN_10_1 },
    epochs: 2,
    batchSize: 64,
    seed: 11,
    preprocess: { flip: 0.5, pad: 2, cutout: 8 },
    augmentation: 'trivialaugment' as const,
  };
  const straight = await train(common);
  const reference = parametersOf(straight.model);
  straight.model.dispose();

  const dir = await tempDir();
  const controller = new AbortController();
  const first = await train({
    ...common,
    outDir: dir,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.phase === 'step' && p.step === 7) controller.abort();
    },
  });
  t.true(first.aborted);
  t.is(first.steps, 7);
  first.model.dispose();
  const resumed = await train({ ...common, outDir: dir, resume: true });
  t.false(resumed.aborted);
  t.is(resumed.steps, 10);
  t.deepEqual(parametersOf(resumed.model), reference);
  resumed.model.dispose();
  await rm(dir, { recursive: true, force: true });
});

test.serial('a run killed with SIGKILL leaves a loadable checkpoint, and resume continues from it', async (t) => {
  const dir = await tempDir();
  const script = path.join(here, 'helpers', 'train-child.js');
  let previousStep = -1;
  for (let attempt = 0; attempt < 3; attempt++) {
    const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    // Wait for the first checkpoint, then kill at a random moment of the following epochs.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (existsSync(path.join(dir, 'train.last.ckpt')) || child.exitCode !== null) {
          clearInterval(poll);
          setTimeout(resolve, 50 + Math.random() * 400);
        }
      }, 20);
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const checkpoint = await loadCheckpoint(path.join(dir, 'train.last.ckpt'), { kind: CHECKPOINT_KIND });
    t.true(Object.keys(checkpoint.tensors).length > 10, `attempt ${attempt}: checkpoint loads`);
    // Each run resumes from the last one's checkpoint: the position never goes back.
    const step = (checkpoint.meta as { position: { step: number } }).position.step;
    t.true(step >= previousStep, `attempt ${attempt}: step ${step} after ${previousStep}`);
    previousStep = step;
    for (const tensor of Object.values(checkpoint.tensors)) tensor.dispose();
  }
  await rm(dir, { recursive: true, force: true });
});

test.serial('a timer keeps firing while a training run is in progress', async (t) => {
  const data = await fashion();
  const gaps: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 5);
  // The longest stretch between two steps' ends (from the start for the first one): what one step can block.
  let longestStep = 0;
  let stepEnded = performance.now();
  const result = await train({
    train: dna.stratifiedSubset(data.train, 640, 5),
    model: { ...dna.WRN_10_1 },
    epochs: 1,
    batchSize: 32,
    seed: 1,
    onProgress: (p) => {
      if (p.phase !== 'step') return;
      const now = performance.now();
      longestStep = Math.max(longestStep, now - stepEnded);
      stepEnded = now;
    },
  });
  clearInterval(timer);
  result.model.dispose();
  // The loop yields after every step: the timer fires about once per step, and no gap is
  // much longer than the longest step (whatever the load of the machine makes that); a loop
  // that did not yield would show one gap as long as the whole run of 20 steps.
  const longest = Math.max(...gaps);
  t.true(gaps.length >= result.steps - 2, `${gaps.length} ticks over ${result.steps} steps`);
  t.true(
    longest < 2 * longestStep + 250,
    `longest gap ${longest.toFixed(0)} ms, longest step ${longestStep.toFixed(0)} ms`,
  );
});

test.serial('a NaN loss stops the run with a clear message and keeps the last good checkpoint', async (t) => {
  const data = await fashion();
  const dir = await tempDir();
  const small = dna.stratifiedSubset(data.train, 128, 6);
  // An augmentation that turns the images into NaN from the third step on (the second epoch).
  let steps = 0;
  const poison = (images: dna.Tensor) => (++steps > 2 ? images.mul(Number.NaN) : images.clone());
  const error = await t.throwsAsync(
    train({
      train: small,
      model: { ...dna.WRN_10_1 },
      epochs: 3,
      batchSize: 64,
      seed: 2,
      outDir: dir,
      augmentation: poison,
    }),
    { instanceOf: TrainingDivergedError },
  );
  t.regex(error!.message, /the loss became (NaN|Infinity|-Infinity) at epoch 2/);
  t.regex(error!.message, /last good checkpoint is .*train\.last\.ckpt/);
  const kept = await loadCheckpoint(path.join(dir, 'train.last.ckpt'), { kind: CHECKPOINT_KIND });
  t.is((kept.meta as { position: { epoch: number } }).position.epoch, 1);
  for (const tensor of Object.values(kept.tensors)) tensor.dispose();
  await rm(dir, { recursive: true, force: true });
});

test.serial('bad options and a checkpoint of another model give clear Errors', async (t) => {
  const data = await fashion();
  const small = dna.stratifiedSubset(data.train, 64, 7);
  await t.throwsAsync(train({ train: small, model: { ...dna.WRN_10_1 }, epochs: 1, augmentation: 'mixup' as 'none' }), {
    message: /unknown augmentation policy 'mixup'/,
  });
  await t.throwsAsync(train({ train: small, model: { ...dna.WRN_10_1 }, epochs: 0 }), {
    message: /epochs must be a positive integer/,
  });
  await t.throwsAsync(
    train({ train: small, model: { ...dna.WRN_10_1 }, epochs: 1, preprocess: 'imagenet' as 'cifar' }),
    { message: /unknown preprocess preset/ },
  );
  const dir = await tempDir();
  const first = await train({ train: small, model: { ...dna.WRN_10_1 }, epochs: 1, batchSize: 32, outDir: dir });
  first.model.dispose();
  await t.throwsAsync(
    train({ train: small, model: { ...dna.WRN_16_1 }, epochs: 2, batchSize: 32, outDir: dir, resume: true }),
    {
      message: /checkpoint of another model/,
    },
  );
  await rm(dir, { recursive: true, force: true });
});

test.serial('an augmentation of its own gets each batch with its labels, image by image', async (t) => {
  // Image k is filled with 20 * its label, so the augmenter can check that labels[i] is image i's.
  const count = 48;
  const shape: [number, number, number] = [1, 8, 8];
  const size = shape[0] * shape[1] * shape[2];
  const labels = Int32Array.from({ length: count }, (_, k) => (k * 7) % 10);
  const images = new Uint8Array(count * size);
  labels.forEach((label, k) => images.fill(20 * label, k * size, (k + 1) * size));
  const data: dna.ImageDataset = {
    name: 'labelled',
    images,
    labels,
    count,
    shape,
    classes: Array.from({ length: 10 }, (_, k) => `class ${k}`),
  };
  const seen: number[] = [];
  let mismatches = 0;
  const result = await train({
    train: data,
    model: { ...dna.WRN_10_1 },
    epochs: 2,
    batchSize: 16,
    augmentation: (x, options) => {
      const given = options?.labels;
      if (given === undefined) throw new Error('no labels');
      t.deepEqual(given.shape, [x.shape[0]]);
      return dna.tidy(() => {
        const batchLabels = Array.from(given.toDtype('int32').data() as Int32Array);
        const floats = x.dtype === 'uint8' ? x.toDtype('float32').div(255) : x.mul(1);
        const pixels = floats.data() as Float32Array;
        batchLabels.forEach((label, i) => {
          if (Math.round(pixels[i * size] * 255) !== 20 * label) mismatches++;
        });
        seen.push(...batchLabels);
        return floats;
      });
    },
  });
  result.model.dispose();
  t.is(mismatches, 0);
  t.deepEqual(
    [...seen].sort((a, b) => a - b),
    [...labels, ...labels].sort((a, b) => a - b),
  );
});
