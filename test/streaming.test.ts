// Image folders streamed from their files: the same batches as the folder decoded into memory
// (so the same training, weight for weight), subsets and splits that read from the files too, a
// damaged file named when it is read, and 'auto' choosing by the decoded size.
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

import * as dna from '../lib/index.js';

dna.setThreads(1);
const root = mkdtempSync(path.join(os.tmpdir(), 'dna-stream-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

const SIDE = 12;

/** A folder of `perClass` PNGs in each of three classes, every image different. */
async function makeFolder(name: string, perClass: number): Promise<string> {
  const dir = path.join(root, name);
  for (const [label, cls] of ['a', 'b', 'c'].entries()) {
    mkdirSync(path.join(dir, cls), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const pixels = Buffer.from(
        Array.from({ length: SIDE * SIDE * 3 }, (_, p) => (p * 7 + i * 13 + label * 71 + ((p * i) % 17)) % 256),
      );
      await sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 3 } })
        .png()
        .toFile(path.join(dir, cls, `${String(i).padStart(3, '0')}.png`));
    }
  }
  return dir;
}

/** The pixels and labels of every batch of an epoch, read through batchesAsync. */
async function epochOf(ds: dna.ImageDataset, batchSize: number): Promise<number[][]> {
  const out: number[][] = [];
  for await (const batch of dna.batchesAsync(ds, { batchSize, seed: 3, epoch: 1 })) {
    out.push([...(batch.images.data() as Float32Array), ...Array.from(batch.labels.data() as BigInt64Array, Number)]);
    dna.dispose(batch);
  }
  return out;
}

test('a streamed folder gives the batches of the folder in memory; batches() points to batchesAsync', async (t) => {
  const dir = await makeFolder('same', 10);
  const memory = await dna.datasets.imageFolder(dir, { stream: false });
  const streamed = await dna.datasets.imageFolder(dir, { stream: true });
  t.false(dna.isStreamed(memory));
  t.true(dna.isStreamed(streamed));
  t.is(streamed.images.length, 0);
  t.deepEqual(streamed.shape, memory.shape);
  t.deepEqual(Array.from(streamed.labels), Array.from(memory.labels));
  t.deepEqual(await epochOf(streamed, 7), await epochOf(memory, 7));
  t.throws(() => dna.batches(streamed, { batchSize: 4 }), { message: /streamed from its files; use batchesAsync\(\)/ });
  // Subsets and stratified splits of a streamed folder read the right files.
  const [half, rest] = dna.splitStratified(streamed, 0.5, 2);
  const [memoryHalf] = dna.splitStratified(memory, 0.5, 2);
  t.true(dna.isStreamed(half) && dna.isStreamed(rest));
  t.is(half.count + rest.count, 30);
  t.deepEqual(await epochOf(half, 4), await epochOf(memoryHalf, 4));
});

test("'auto' streams when the decoded images would exceed streamAbove", async (t) => {
  const dir = await makeFolder('auto', 2);
  const bytes = 6 * 3 * SIDE * SIDE;
  t.false(dna.isStreamed(await dna.datasets.imageFolder(dir)));
  t.false(dna.isStreamed(await dna.datasets.imageFolder(dir, { streamAbove: bytes })));
  t.true(dna.isStreamed(await dna.datasets.imageFolder(dir, { streamAbove: bytes - 1 })));
  await t.throwsAsync(dna.datasets.imageFolder(dir, { stream: 'yes' as never }), {
    message: /stream must be true, false or 'auto', got 'yes'/,
  });
});

test('training on a streamed folder gives the weights of training on it in memory', async (t) => {
  const dir = await makeFolder('train', 8);
  const run = async (stream: boolean) => {
    const data = await dna.datasets.imageFolder(dir, { stream });
    const result = await dna.train({
      train: data,
      model: dna.WRN_10_1,
      epochs: 2,
      batchSize: 8,
      preprocess: 'cifar',
      augmentation: 'trivialaugment',
      seed: 4,
    });
    const weights = dna.tidy(() =>
      Object.values(result.model.stateDict()).map((w) => Array.from(w.data() as Float32Array, Number)),
    );
    result.model.dispose();
    return weights;
  };
  t.deepEqual(await run(true), await run(false));
});

test('a file damaged after the folder was opened is named when it is read, and the run stops', async (t) => {
  const dir = await makeFolder('damaged', 4);
  const data = await dna.datasets.imageFolder(dir, { stream: true });
  const broken = path.join(dir, 'b', '002.png');
  writeFileSync(broken, 'not a png any more');
  const error = await t.throwsAsync(dna.train({ train: data, model: dna.WRN_10_1, epochs: 1, batchSize: 4, seed: 1 }), {
    instanceOf: dna.DataFileError,
  });
  t.is((error as dna.DataFileError).file, broken);
  t.regex(error!.message, /cannot decode .*002\.png/);
});
