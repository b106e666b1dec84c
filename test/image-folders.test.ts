// Image folders as people lay them out: flat (one folder per class), train/ beside test/ or val/,
// test images in a folder of their own, a held-out part of the training images; gray images stay
// one channel (so that a policy searched on IDX files works on the same images as PNG), RGB ones
// three, or what --channels asks; --size resizes; a wrong path says "not found".
import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import sharp from 'sharp';

import { loadData } from '../bin/cli/data.js';
import { UsageError } from '../bin/cli/options.js';
import * as dna from '../lib/index.js';
import { rgbBytes } from './helpers/data-files.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'dna-image-folders-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

let made = 0;
const fresh = (name: string) => path.join(root, `${++made}-${name}`);

/** Gray 6x6 images: pixel (h, w) of image n is (n * 40 + h * 6 + w) mod 256. */
function grayBytes(n: number, size = 6): Buffer {
  return Buffer.from(Array.from({ length: size * size }, (_, p) => (n * 40 + p) % 256));
}

async function writeGray(file: string, n: number, size = 6): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  await sharp(grayBytes(n, size), { raw: { width: size, height: size, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(file);
}

async function writeRgb(file: string, n: number): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  await sharp(rgbBytes(n, 6, 6), { raw: { width: 6, height: 6, channels: 3 } })
    .png()
    .toFile(file);
}

/** `count` gray images in each of the classes a and b under `dir`, numbered from `first`. */
async function classFolders(dir: string, count: number, first = 0): Promise<void> {
  for (let k = 0; k < count; k++) {
    await writeGray(path.join(dir, 'a', `${k}.png`), first + 2 * k);
    await writeGray(path.join(dir, 'b', `${k}.png`), first + 2 * k + 1);
  }
}

test('layouts: a flat folder, train/ with test/ or val/, and train/ alone', async (t) => {
  const flat = fresh('flat');
  await classFolders(flat, 2);
  t.deepEqual(await dna.imageFolderLayout(flat), { layout: 'flat', train: flat });
  for (const testName of ['test', 'val']) {
    const split = fresh(`split-${testName}`);
    await classFolders(path.join(split, 'train'), 2);
    await classFolders(path.join(split, testName), 1);
    t.deepEqual(await dna.imageFolderLayout(split), {
      layout: 'split',
      train: path.join(split, 'train'),
      test: path.join(split, testName),
    });
  }
  const trainOnly = fresh('train-only');
  await classFolders(path.join(trainOnly, 'train'), 1);
  t.deepEqual(await dna.imageFolderLayout(trainOnly), { layout: 'split', train: path.join(trainOnly, 'train') });
  // A class that happens to be called 'train' in a flat folder holds images, not class folders.
  const classCalledTrain = fresh('class-called-train');
  await writeGray(path.join(classCalledTrain, 'train', '0.png'), 0);
  await writeGray(path.join(classCalledTrain, 'test', '0.png'), 1);
  t.is((await dna.imageFolderLayout(classCalledTrain)).layout, 'flat');
});

test('gray images stay one channel, the same bytes as the IDX pixels they came from; RGB stays RGB', async (t) => {
  const gray = fresh('gray');
  await classFolders(gray, 2);
  const ds = await dna.datasets.imageFolder(gray);
  t.deepEqual(ds.shape, [1, 6, 6]);
  t.deepEqual(Array.from(ds.images.subarray(0, 36)), Array.from(grayBytes(0)));
  t.deepEqual(Array.from(ds.images.subarray(36, 72)), Array.from(grayBytes(2)));
  // Asked for three channels: the gray plane repeated.
  const rgb = await dna.datasets.imageFolder(gray, { channels: 3 });
  t.deepEqual(rgb.shape, [3, 6, 6]);
  t.deepEqual(Array.from(rgb.images.subarray(0, 108)), [...grayBytes(0), ...grayBytes(0), ...grayBytes(0)]);

  // One colour image makes the folder RGB; asked for one channel, RGB becomes PIL's luma.
  await writeRgb(path.join(gray, 'b', 'colour.png'), 3);
  const mixed = await dna.datasets.imageFolder(gray);
  t.deepEqual(mixed.shape, [3, 6, 6]);
  const luma = await dna.datasets.imageFolder(gray, { channels: 1 });
  t.deepEqual(luma.shape, [1, 6, 6]);
  // In sorted order: a/0, a/1, b/0, b/1, b/colour.
  const k = 4;
  const source = rgbBytes(3, 6, 6);
  const expected = Array.from({ length: 36 }, (_, p) =>
    Math.floor((source[3 * p] * 19595 + source[3 * p + 1] * 38470 + source[3 * p + 2] * 7471 + 0x8000) / 65536),
  );
  t.deepEqual(Array.from(luma.images.subarray(k * 36, (k + 1) * 36)), expected);
  await t.throwsAsync(dna.datasets.imageFolder(gray, { channels: 2 as 1 }), {
    message: /^imageFolder: channels must be 1 or 3, got 2$/,
  });
});

test('a missing folder is "not found", a file "not a folder"', async (t) => {
  const missing = path.join(root, 'no-such-folder');
  await t.throwsAsync(dna.datasets.imageFolder(missing), {
    instanceOf: dna.DataFileError,
    message: `imageFolder: ${missing} not found`,
  });
  const file = fresh('a-file');
  writeFileSync(file, 'x');
  await t.throwsAsync(dna.imageFolderLayout(file), { message: `imageFolderLayout: ${file} is a file, not a folder` });
});

test('the command line: split folders, --test-dir, --val-split, --size and what a flat folder lacks', async (t) => {
  const split = fresh('cli-split');
  await classFolders(path.join(split, 'train'), 3);
  await classFolders(path.join(split, 'val'), 1, 100);
  const both = await loadData({ data: split }, 'both', 0);
  t.is(both.train!.count, 6);
  t.is(both.test!.count, 2);
  t.deepEqual(both.test!.shape, [1, 6, 6]);

  const flat = fresh('cli-flat');
  await classFolders(flat, 5);
  const alone = await loadData({ data: flat }, 'both', 0);
  t.is(alone.train!.count, 10);
  t.is(alone.test, undefined);
  t.regex(alone.noTest!, /has no test images \(one folder per class\): name a folder of them with --test-dir DIR/);

  // A stratified fifth held out, the same for the same seed, disjoint from the training part.
  const held = await loadData({ data: flat, 'val-split': 0.2 }, 'both', 3);
  t.is(held.test!.count, 2);
  t.is(held.train!.count, 8);
  t.deepEqual(Array.from(held.test!.labels).sort(), [0, 1]);
  const again = await loadData({ data: flat, 'val-split': 0.2 }, 'test', 3);
  t.deepEqual(again.test!.images, held.test!.images);

  const testDir = fresh('cli-test-dir');
  await classFolders(testDir, 2, 50);
  const elsewhere = await loadData({ data: flat, 'test-dir': testDir, size: '4x5' }, 'both', 0);
  t.deepEqual(elsewhere.train!.shape, [1, 4, 5]);
  t.deepEqual(elsewhere.test!.shape, [1, 4, 5]);
  t.is(elsewhere.test!.count, 4);

  // The test images follow the training images' channels.
  await writeRgb(path.join(flat, 'a', 'colour.png'), 1);
  const coloured = await loadData({ data: flat, 'test-dir': testDir }, 'both', 0);
  t.deepEqual(coloured.train!.shape, [3, 6, 6]);
  t.deepEqual(coloured.test!.shape, [3, 6, 6]);

  const otherClasses = fresh('cli-other-classes');
  await writeGray(path.join(otherClasses, 'c', '0.png'), 0);
  await t.throwsAsync(loadData({ data: flat, 'test-dir': otherClasses }, 'both', 0), {
    message: /^the test images have the classes c, the training images a, b: the same class folders must be in both$/,
  });
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ data: flat, size: '32x' }, /^--size must be HxW or N \(e\.g\. 32x32 or 32\), got '32x'$/],
    [{ data: flat, 'val-split': 1.5 }, /^--val-split must be a fraction between 0 and 1 \(e\.g\. 0\.1\), got 1\.5$/],
    [{ data: flat, 'val-split': 0.1, 'test-dir': testDir }, /^--val-split and --test-dir exclude each other/],
    [{ data: 'fashion-mnist', 'test-dir': testDir }, /^--test-dir goes with an image folder; fashion-mnist is read as/],
    [{ data: 'fashion-mnist', size: '32' }, /^--size and --channels go with an image folder/],
  ];
  for (const [values, message] of cases)
    await t.throwsAsync(loadData(values as never, 'both', 0), { instanceOf: UsageError, message });
  const nowhere = path.join(root, 'nowhere');
  await t.throwsAsync(loadData({ data: nowhere }, 'both', 0), { message: `--data ${nowhere}: no such folder` });
});
