// Data: every loader on small files written here in the published formats (CIFAR-10/100
// binary, IDX plain and gzip, SVHN MAT-files from scipy, PNG/JPEG folders), their errors on
// damaged files, the real Fashion-MNIST, stratified subsets and splits, shuffled batches.
import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';

import * as dna from '../lib/index.js';
import {
  CIFAR10_NAMES,
  cifarRecords,
  idxFile,
  idxImages,
  pixel,
  python,
  rgbBytes,
  writeCifar10,
  writePng,
  writeSvhn,
  type SvhnFile,
} from './helpers/data-files.js';

// ---- helpers ----

const root = mkdtempSync(join(tmpdir(), 'dna-data-test-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

let folders = 0;
/** A fresh folder under the test's temporary root. */
function folder(...parts: string[]): string {
  const dir = join(root, `case-${++folders}`, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Expects `promise` to reject with a DataFileError about `file` whose message matches `pattern`. */
async function rejectsAbout(
  t: ExecutionContext,
  promise: Promise<unknown>,
  file: string,
  pattern: RegExp,
): Promise<void> {
  const error = await t.throwsAsync(promise, { instanceOf: dna.DataFileError });
  t.true(error!.message.includes(file), `the message names ${file}: ${error!.message}`);
  t.is((error as dna.DataFileError).file, file);
  t.regex(error!.message, pattern);
}

/** Checks every pixel of `ds` against `pixel(source(n), ...)`, channel-major. */
function checkPixels(t: ExecutionContext, ds: dna.ImageDataset, source: (n: number) => number = (n) => n): void {
  const [C, H, W] = ds.shape;
  let wrong = 0;
  for (let n = 0; n < ds.count; n++) {
    for (let c = 0; c < C; c++) {
      for (let h = 0; h < H; h++) {
        for (let w = 0; w < W; w++) {
          if (ds.images[((n * C + c) * H + h) * W + w] !== pixel(source(n), c, h, w)) wrong++;
        }
      }
    }
  }
  t.is(wrong, 0, `${ds.name}: pixels in channel-major order`);
}

function requireScipy(t: ExecutionContext): boolean {
  try {
    python('import scipy.io, numpy');
    return true;
  } catch {
    t.fail(
      'these tests write MAT-files with scipy: apt-get install python3-scipy (it provides /usr/bin/python3 with ' +
        'scipy and numpy)',
    );
    return false;
  }
}

// ---- CIFAR-10 / CIFAR-100 ----

test('cifar10 reads the binary batches: labels, class names and channel-major pixels', async (t) => {
  const parent = folder();
  const dir = writeCifar10(parent);
  for (const where of [parent, dir]) {
    const train = await dna.datasets.cifar10(where);
    t.is(train.name, 'cifar10/train');
    t.is(train.count, 15);
    t.deepEqual(train.shape, [3, 32, 32]);
    t.deepEqual(train.classes, CIFAR10_NAMES);
    t.deepEqual(
      Array.from(train.labels),
      Array.from({ length: 15 }, (_, n) => (n * 3) % 10),
    );
    t.is(train.images.length, 15 * 3072);
    checkPixels(t, train);
  }
  const testSet = await dna.datasets.cifar10(parent, { split: 'test' });
  t.is(testSet.count, 4);
  t.deepEqual(Array.from(testSet.labels), [0, 1, 2, 3]);
  checkPixels(t, testSet, (n) => n + 100);
  await t.throwsAsync(dna.datasets.cifar10(parent, { split: 'valid' as 'test' }), {
    instanceOf: RangeError,
    message: /split must be 'train' or 'test'/,
  });
});

test('cifar10 names the file that is missing, truncated or holds a bad label', async (t) => {
  const dir = writeCifar10(folder());
  const batch3 = join(dir, 'data_batch_3.bin');
  const good = readFileSync(batch3);
  writeFileSync(batch3, good.subarray(0, good.length - 1));
  await rejectsAbout(t, dna.datasets.cifar10(dir), batch3, /3073-byte record.*truncated/);
  writeFileSync(batch3, new Uint8Array(0));
  await rejectsAbout(t, dna.datasets.cifar10(dir), batch3, /has 0 bytes/);
  const bad = Uint8Array.from(good);
  bad[3073] = 10; // the label of the second record
  writeFileSync(batch3, bad);
  await rejectsAbout(t, dna.datasets.cifar10(dir), batch3, /record 1 has label byte 0 = 10, expected 0\.\.9/);
  writeFileSync(batch3, good);
  await t.notThrowsAsync(dna.datasets.cifar10(dir));

  rmSync(join(dir, 'test_batch.bin'));
  await rejectsAbout(
    t,
    dna.datasets.cifar10(dir, { split: 'test' }),
    join(dir, 'test_batch.bin'),
    /missing .*cifar-10-batches-bin test file/,
  );
  const meta = join(dir, 'batches.meta.txt');
  writeFileSync(meta, 'cat\ndog\n');
  await rejectsAbout(t, dna.datasets.cifar10(dir), meta, /has 2 class names, expected 10/);
  rmSync(meta);
  await rejectsAbout(t, dna.datasets.cifar10(dir), meta, /missing/);
  await t.throwsAsync(dna.datasets.cifar10(folder()), { instanceOf: dna.DataFileError, message: /missing/ });
});

test('cifar100 reads fine labels (or coarse ones on request) and checks both label bytes', async (t) => {
  const dir = folder('cifar-100-binary');
  const fine = (n: number) => (n * 7) % 100;
  const coarse = (n: number) => n % 20;
  writeFileSync(
    join(dir, 'train.bin'),
    cifarRecords(0, 6, (n) => [coarse(n), fine(n)]),
  );
  writeFileSync(
    join(dir, 'test.bin'),
    cifarRecords(50, 2, (n) => [coarse(n), fine(n)]),
  );
  const fineNames = Array.from({ length: 100 }, (_, k) => `fine${k}`);
  const coarseNames = Array.from({ length: 20 }, (_, k) => `coarse${k}`);
  writeFileSync(join(dir, 'fine_label_names.txt'), fineNames.join('\n'));
  writeFileSync(join(dir, 'coarse_label_names.txt'), coarseNames.join('\r\n') + '\r\n');

  const train = await dna.datasets.cifar100(join(dir, '..'));
  t.is(train.name, 'cifar100/train');
  t.is(train.count, 6);
  t.deepEqual(train.classes, fineNames);
  t.deepEqual(Array.from(train.labels), [0, 1, 2, 3, 4, 5].map(fine));
  checkPixels(t, train);
  const testSet = await dna.datasets.cifar100(dir, { split: 'test' });
  t.deepEqual(Array.from(testSet.labels), [50, 51].map(fine));
  checkPixels(t, testSet, (n) => n + 50);
  const coarseSet = await dna.datasets.cifar100(dir, { labels: 'coarse' });
  t.deepEqual(coarseSet.classes, coarseNames);
  t.deepEqual(Array.from(coarseSet.labels), [0, 1, 2, 3, 4, 5].map(coarse));

  const file = join(dir, 'train.bin');
  const records = cifarRecords(0, 2, (n) => [coarse(n), fine(n)]);
  records[3074 + 1] = 100;
  writeFileSync(file, records);
  await rejectsAbout(t, dna.datasets.cifar100(dir), file, /record 1 has label byte 1 = 100, expected 0\.\.99/);
  records[3074 + 1] = 5;
  records[0] = 20;
  writeFileSync(file, records);
  await rejectsAbout(t, dna.datasets.cifar100(dir), file, /record 0 has label byte 0 = 20, expected 0\.\.19/);
  writeFileSync(
    file,
    cifarRecords(0, 2, (n) => [n]),
  );
  await rejectsAbout(t, dna.datasets.cifar100(dir), file, /3074-byte record/);
});

// ---- IDX (MNIST, Fashion-MNIST) ----

test('idx reads images and labels, plain or gzip (recognised by its bytes, whatever the name)', async (t) => {
  const dir = folder();
  const trainLabels = [3, 1, 4, 1, 5, 9, 2];
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idxImages(0, 7, 5, 6));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idxFile([7], Uint8Array.from(trainLabels)));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(idxImages(20, 3, 5, 6)));
  // gzip data under the plain name: still decompressed.
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), gzipSync(idxFile([3], Uint8Array.from([0, 9, 8]))));

  const train = await dna.datasets.idx(dir);
  t.is(train.name, 'idx/train');
  t.is(train.count, 7);
  t.deepEqual(train.shape, [1, 5, 6]);
  t.deepEqual(train.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  t.deepEqual(Array.from(train.labels), trainLabels);
  checkPixels(t, train);
  const testSet = await dna.datasets.idx(dir, {
    split: 'test',
    classes: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'],
    name: 'letters',
  });
  t.is(testSet.name, 'letters/test');
  t.is(testSet.count, 3);
  t.deepEqual(testSet.classes.slice(0, 2), ['a', 'b']);
  t.deepEqual(Array.from(testSet.labels), [0, 9, 8]);
  checkPixels(t, testSet, (n) => n + 20);
});

test('idx names the file with a wrong magic, a short or long body, a bad gzip or an out-of-range label', async (t) => {
  const dir = folder();
  const images = join(dir, 'train-images-idx3-ubyte');
  const labels = join(dir, 'train-labels-idx1-ubyte');
  const goodImages = idxImages(0, 4, 3, 3);
  const goodLabels = idxFile([4], Uint8Array.from([0, 1, 2, 3]));
  writeFileSync(images, goodImages);
  writeFileSync(labels, goodLabels);
  await t.notThrowsAsync(dna.datasets.idx(dir));

  writeFileSync(images, goodLabels); // a label file where the images should be
  await rejectsAbout(
    t,
    dna.datasets.idx(dir),
    images,
    /magic 0x00000801, expected 0x00000803 \(an idx3-ubyte image file\)/,
  );
  writeFileSync(images, goodImages.subarray(0, goodImages.length - 5));
  await rejectsAbout(
    t,
    dna.datasets.idx(dir),
    images,
    /truncated: its header says 4 x 3 x 3 = 36 bytes of data, only 31 are present/,
  );
  writeFileSync(images, goodImages.subarray(0, 10));
  await rejectsAbout(t, dna.datasets.idx(dir), images, /truncated/);
  writeFileSync(images, Uint8Array.of(...goodImages, 0, 0));
  await rejectsAbout(t, dna.datasets.idx(dir), images, /2 bytes after/);
  const gz = gzipSync(goodImages);
  writeFileSync(images, gz.subarray(0, gz.length - 12));
  await rejectsAbout(t, dna.datasets.idx(dir), images, /not a readable gzip file/);
  writeFileSync(images, goodImages);

  writeFileSync(labels, idxFile([3], Uint8Array.from([0, 1, 2])));
  await rejectsAbout(t, dna.datasets.idx(dir), labels, /has 3 labels but .* has 4 images/);
  writeFileSync(labels, idxFile([4], Uint8Array.from([0, 1, 12, 3])));
  await rejectsAbout(t, dna.datasets.idx(dir), labels, /label 2 is 12, expected 0\.\.9/);
  t.deepEqual(Array.from((await dna.datasets.idx(dir, { classes: 13 })).labels), [0, 1, 12, 3]);

  rmSync(labels);
  await rejectsAbout(t, dna.datasets.idx(dir), labels, /missing .*IDX labels/);
});

test("fashionMnist reads Debian's dataset-fashion-mnist: 60,000 + 10,000 balanced 28x28 images", async (t) => {
  const dir = dna.FASHION_MNIST_DIR;
  if (!existsSync(dir)) {
    t.fail(`${dir} is missing: apt-get install dataset-fashion-mnist (a declared test dependency)`);
    return;
  }
  const [train, testSet] = await Promise.all([
    dna.datasets.fashionMnist(),
    dna.datasets.fashionMnist({ split: 'test' }),
  ]);
  t.is(train.name, 'fashion-mnist/train');
  t.is(train.count, 60000);
  t.is(testSet.count, 10000);
  t.deepEqual(train.shape, [1, 28, 28]);
  t.is(train.images.length, 60000 * 784);
  t.deepEqual(train.classes, [
    'T-shirt/top',
    'Trouser',
    'Pullover',
    'Dress',
    'Coat',
    'Sandal',
    'Shirt',
    'Sneaker',
    'Bag',
    'Ankle boot',
  ]);
  t.deepEqual(dna.classCounts(train), new Array(10).fill(6000));
  t.deepEqual(dna.classCounts(testSet), new Array(10).fill(1000));

  // An independent reader (Python's gzip) agrees on the first labels and images.
  const reference = JSON.parse(
    python(
      `import gzip, json, sys
d = sys.argv[1]
img = gzip.open(d + '/train-images-idx3-ubyte.gz').read(16 + 3 * 784)[16:]
lab = gzip.open(d + '/train-labels-idx1-ubyte.gz').read(8 + 20)[8:]
print(json.dumps({'labels': list(lab), 'sums': [sum(img[k * 784:(k + 1) * 784]) for k in range(3)], 'row': list(img[14 * 28:15 * 28])}))`,
      dir,
    ),
  ) as { labels: number[]; sums: number[]; row: number[] };
  t.deepEqual(Array.from(train.labels.subarray(0, 20)), reference.labels);
  t.deepEqual(
    [0, 1, 2].map((k) => train.images.subarray(k * 784, (k + 1) * 784).reduce((a, b) => a + b, 0)),
    reference.sums,
  );
  t.deepEqual(Array.from(train.images.subarray(14 * 28, 15 * 28)), reference.row);

  const reduced = dna.stratifiedSubset(train, 4000, 0);
  t.deepEqual(dna.classCounts(reduced), new Array(10).fill(400));
});

test('fashionMnist says which package to install when its folder is absent', async (t) => {
  const absent = join(root, 'no-such-folder');
  const error = await t.throwsAsync(dna.datasets.fashionMnist(absent));
  t.is(
    error!.message,
    `fashionMnist: ${absent} is not a folder: install Debian's dataset-fashion-mnist (apt-get install ` +
      `dataset-fashion-mnist) or pass the folder`,
  );
});

// ---- SVHN (MAT-files written by scipy) ----

const svhnLabels = (count: number) => Array.from({ length: count }, (_, n) => (n % 10) + 1).map((y) => y % 10);

test('svhn reads scipy MAT-files, plain and compressed: column-major X to channel-major, label 10 to 0', async (t) => {
  if (!requireScipy(t)) return;
  const dir = folder();
  writeSvhn([
    [dir, 'train_32x32.mat', 12, false],
    [dir, 'test_32x32.mat', 11, true],
    [dir, 'extra_32x32.mat', 3, true, 'double-X-uint8-y'],
  ]);
  const train = await dna.datasets.svhn(dir);
  t.is(train.name, 'svhn/train');
  t.is(train.count, 12);
  t.deepEqual(train.shape, [3, 32, 32]);
  t.deepEqual(train.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  t.deepEqual(Array.from(train.labels), svhnLabels(12));
  t.is(train.labels[9], 0, 'label 10 is the digit 0');
  checkPixels(t, train);
  const testSet = await dna.datasets.svhn(dir, { split: 'test' });
  t.is(testSet.count, 11);
  t.deepEqual(Array.from(testSet.labels), svhnLabels(11));
  checkPixels(t, testSet);
  const extra = await dna.datasets.svhn(dir, { split: 'extra' });
  t.deepEqual(Array.from(extra.labels), svhnLabels(3));
  checkPixels(t, extra);
});

test('svhn names the MAT-file that is missing, truncated, not a MAT-file or lacks a proper X or y', async (t) => {
  if (!requireScipy(t)) return;
  const cases: Array<[string, RegExp]> = [
    ['no-y', /no variable 'y' \(found: X\)/],
    ['no-X', /no variable 'X' \(found: .*Xs.*\)/],
    ['flat-X', /X is 3072x4, expected height x width x 3 x N/],
    ['gray-X', /X is 32x32x1x4, expected/],
    ['short-y', /y is 3x1, expected 4x1/],
    ['bad-y', /y\(2\) = 11, expected a digit label 1\.\.10/],
    ['half-y', /y\(2\) = 2\.5/],
    ['char-X', /'X' is a char array, expected real numbers/],
    ['extra-var', /^$/],
  ];
  const plain = folder();
  const compressed = folder();
  const variants = cases.map(([variant]) => [variant, folder(), folder()] as const);
  writeSvhn([
    [plain, 'train_32x32.mat', 4, false],
    [compressed, 'train_32x32.mat', 4, true],
    ...variants.flatMap(([variant, a, b]): SvhnFile[] => [
      [a, 'train_32x32.mat', 4, false, variant],
      [b, 'train_32x32.mat', 4, true, variant],
    ]),
  ]);
  for (const [[variant, pattern], [, a, b]] of cases.map((c, k) => [c, variants[k]] as const)) {
    for (const dir of [a, b]) {
      if (variant === 'extra-var') t.is((await dna.datasets.svhn(dir)).count, 4, 'other variables are ignored');
      else await rejectsAbout(t, dna.datasets.svhn(dir), join(dir, 'train_32x32.mat'), pattern);
    }
  }

  const empty = folder();
  await rejectsAbout(t, dna.datasets.svhn(empty), join(empty, 'train_32x32.mat'), /missing .*X \(32x32x3xN uint8\)/);
  const file = join(compressed, 'train_32x32.mat');
  const corrupt = readFileSync(file);
  corrupt.fill(0x55, 600, 640); // inside the compressed X
  for (const dir of [plain, compressed]) {
    const file = join(dir, 'train_32x32.mat');
    const bytes = readFileSync(file);
    t.is((await dna.datasets.svhn(dir)).count, 4);
    for (const cut of [1000, 8, 1]) {
      writeFileSync(file, bytes.subarray(0, bytes.length - cut));
      await rejectsAbout(
        t,
        dna.datasets.svhn(dir),
        file,
        /truncated: variable [12] at byte \d+ claims \d+ bytes, only \d+ remain/,
      );
    }
    writeFileSync(file, bytes.subarray(0, 100));
    await rejectsAbout(t, dna.datasets.svhn(dir), file, /less than a MAT-file's 128-byte header/);
    const wrongMagic = Buffer.from(bytes);
    wrongMagic.write('XX', 126, 'latin1');
    writeFileSync(file, wrongMagic);
    await rejectsAbout(t, dna.datasets.svhn(dir), file, /not a level 5 MAT-file/);
  }
  writeFileSync(file, corrupt);
  await rejectsAbout(t, dna.datasets.svhn(compressed), file, /variable 1 does not decompress \(truncated or corrupt/);
  writeFileSync(file, Buffer.from('MATLAB 7.3 MAT-file, Platform: GLNXA64'.padEnd(128, ' ')));
  await rejectsAbout(t, dna.datasets.svhn(compressed), file, /MATLAB 7\.3 \(HDF5\)/);
});

// ---- Image folders ----

test('imageFolder decodes one subfolder per class to RGB, channel-major, classes in sorted order', async (t) => {
  const dir = folder('train');
  for (const name of ['dog', 'cat', 'bird/nested']) mkdirSync(join(dir, name), { recursive: true });
  await writePng(join(dir, 'dog', 'b.png'), 1, 4, 5);
  await writePng(join(dir, 'dog', 'a.PNG'), 0, 4, 5);
  await writePng(join(dir, 'cat', 'x.png'), 2, 4, 5);
  await writePng(join(dir, 'bird', 'nested', 'y.png'), 3, 4, 5);
  // RGBA: alpha dropped. Gray: repeated into three channels.
  const rgb = rgbBytes(4, 4, 5);
  const rgba = Buffer.alloc(4 * 5 * 4);
  for (let p = 0; p < 20; p++) {
    rgb.copy(rgba, p * 4, p * 3, p * 3 + 3);
    rgba[p * 4 + 3] = 100 + p;
  }
  await sharp(rgba, { raw: { width: 5, height: 4, channels: 4 } })
    .png()
    .toFile(join(dir, 'cat', 'y.png'));
  const gray = Buffer.from(Array.from({ length: 20 }, (_, p) => p * 12));
  await sharp(gray, { raw: { width: 5, height: 4, channels: 1 } })
    .png()
    .toFile(join(dir, 'cat', 'z.png'));
  writeFileSync(join(dir, 'cat', 'notes.txt'), 'not an image');
  writeFileSync(join(dir, 'cat', '.hidden.png'), 'not an image either');
  mkdirSync(join(dir, '.cache'));

  const ds = await dna.datasets.imageFolder(join(dir, '..'), { split: 'train' });
  t.deepEqual(ds.classes, ['bird', 'cat', 'dog']);
  t.is(ds.count, 6);
  t.deepEqual(ds.shape, [3, 4, 5]);
  t.deepEqual(Array.from(ds.labels), [0, 1, 1, 1, 2, 2]);
  // bird/nested/y, cat/x, cat/y (RGBA), cat/z (gray), dog/a.PNG, dog/b.
  const rgbOf = [3, 2, 4, -1, 0, 1];
  const grayImage = ds.images.subarray(3 * 60, 4 * 60);
  t.deepEqual(Array.from(grayImage), [...gray, ...gray, ...gray]);
  const colour = {
    ...ds,
    images: new Uint8Array([0, 1, 2, 4, 5].flatMap((k) => Array.from(ds.images.subarray(k * 60, (k + 1) * 60)))),
    count: 5,
  };
  checkPixels(t, colour, (n) => rgbOf[[0, 1, 2, 4, 5][n]]);
  t.deepEqual((await dna.datasets.imageFolder(dir)).labels, ds.labels);
});

test('imageFolder needs one size or a size option, and names files that are unreadable', async (t) => {
  const dir = folder();
  mkdirSync(join(dir, 'a'));
  mkdirSync(join(dir, 'b'));
  await writePng(join(dir, 'a', '1.png'), 0, 8, 8);
  await writePng(join(dir, 'b', '2.png'), 1, 6, 10);
  await sharp(rgbBytes(2, 8, 8), { raw: { width: 8, height: 8, channels: 3 } })
    .jpeg({ quality: 95 })
    .toFile(join(dir, 'b', '3.jpg'));
  await rejectsAbout(
    t,
    dna.datasets.imageFolder(dir),
    join(dir, 'b', '2.png'),
    /is 6x10 \(height x width\) but .*1\.png is 8x8: all images must have the same size; give a size to resize them to \(the size option, \[height, width\]; --size HxW on the command line\)$/,
  );

  const resized = await dna.datasets.imageFolder(dir, { size: [8, 8] });
  t.deepEqual(resized.shape, [3, 8, 8]);
  t.is(resized.count, 3);
  // The 8x8 PNG is not resized: exact pixels. The JPEG is close.
  checkPixels(t, { ...resized, count: 1, images: resized.images.subarray(0, 192) });
  const jpeg = resized.images.subarray(2 * 192);
  const expected = Array.from({ length: 192 }, (_, k) => pixel(2, Math.floor(k / 64), Math.floor(k / 8) % 8, k % 8));
  const meanError = expected.reduce((sum, v, k) => sum + Math.abs(v - jpeg[k]), 0) / 192;
  t.true(meanError < 40, `JPEG decodes close to its source (mean error ${meanError})`);

  const corrupt = join(dir, 'a', '0.png');
  writeFileSync(corrupt, readFileSync(join(dir, 'a', '1.png')).subarray(0, 40));
  await rejectsAbout(
    t,
    dna.datasets.imageFolder(dir, { size: [8, 8] }),
    corrupt,
    /cannot decode .*0\.png: Input buffer has corrupt header \(a corrupt or truncated \.png\/\.jpg\?\)$/,
  );
  rmSync(corrupt);
  mkdirSync(join(dir, 'c'));
  await rejectsAbout(
    t,
    dna.datasets.imageFolder(dir, { size: [8, 8] }),
    join(dir, 'c'),
    /no \.png, \.jpg or \.jpeg files/,
  );
  await rejectsAbout(t, dna.datasets.imageFolder(dir, { split: 'val' }), join(dir, 'val'), /missing folder/);
  await t.throwsAsync(dna.datasets.imageFolder(dir, { size: [8, 0] }), {
    instanceOf: TypeError,
    message: /size must be \[height, width\]/,
  });
});

// ---- Stratified subsets and splits ----

/** A dataset of `counts[k]` images of class k, interleaved; image i's bytes encode i and its label. */
function synthetic(counts: number[]): dna.ImageDataset {
  const labels: number[] = [];
  for (let round = 0; labels.length < counts.reduce((a, b) => a + b, 0); round++) {
    counts.forEach((c, k) => round < c && labels.push(k));
  }
  const count = labels.length;
  const images = new Uint8Array(count * 4);
  labels.forEach((label, i) => images.set([i & 255, i >> 8, label, 7], i * 4));
  return {
    name: 'synthetic',
    images,
    labels: Int32Array.from(labels),
    count,
    shape: [1, 2, 2],
    classes: counts.map((_, k) => `c${k}`),
  };
}

/** The original index of each image of a subset of `synthetic`, checking its bytes and label. */
function originals(t: ExecutionContext, part: dna.ImageDataset): number[] {
  return Array.from({ length: part.count }, (_, k) => {
    const [lo, hi, label, seven] = part.images.subarray(k * 4, k * 4 + 4);
    t.is(label, part.labels[k]);
    t.is(seven, 7);
    return lo + 256 * hi;
  });
}

test('stratifiedSubset keeps class proportions with largest-remainder rounding', (t) => {
  t.deepEqual(dna.stratifiedQuotas([50, 30, 15, 5], 10), [5, 3, 2, 0]); // 5, 3, 1.5, 0.5: the tie goes to the lower class
  t.deepEqual(dna.stratifiedQuotas([50, 30, 15, 5], 7), [4, 2, 1, 0]); // 3.5, 2.1, 1.05, 0.35
  t.deepEqual(dna.stratifiedQuotas([5000, 5000, 5000], 4000), [1334, 1333, 1333]);
  const ds = synthetic([50, 30, 15, 5]);
  for (const n of [4, 7, 10, 33, 99, 100]) {
    const part = dna.stratifiedSubset(ds, n, 3);
    t.is(part.count, n);
    t.deepEqual(dna.classCounts(part), dna.stratifiedQuotas([50, 30, 15, 5], n));
    const from = originals(t, part);
    t.deepEqual(
      from,
      [...from].sort((a, b) => a - b),
      'images keep their order',
    );
    t.is(new Set(from).size, n, 'no image twice');
    from.forEach((i, k) => t.is(ds.labels[i], part.labels[k]));
    t.deepEqual(part.classes, ds.classes);
    t.deepEqual(part.shape, ds.shape);
  }
  const balanced = synthetic([100, 100, 100, 100, 100]);
  t.deepEqual(dna.classCounts(dna.stratifiedSubset(balanced, 50, 0)), [10, 10, 10, 10, 10]);
});

test('stratifiedSubset is deterministic for a seed and differs between seeds', (t) => {
  const ds = synthetic([40, 30, 30]);
  const a = dna.stratifiedSubset(ds, 20, 11);
  const b = dna.stratifiedSubset(ds, 20, 11);
  t.deepEqual(a.images, b.images);
  t.deepEqual(a.labels, b.labels);
  const seeds = [0, 1, 2, 3, 2 ** 40].map((seed) => originals(t, dna.stratifiedSubset(ds, 20, seed)).join());
  t.is(new Set(seeds).size, seeds.length);
});

test('stratifiedSubset and splitStratified refuse impossible sizes', (t) => {
  const ds = synthetic([5, 5, 0, 5]);
  t.throws(() => dna.stratifiedSubset(ds, 16, 0), {
    instanceOf: RangeError,
    message: /n = 16 is more than the 15 images/,
  });
  t.throws(() => dna.stratifiedSubset(ds, 2, 0), {
    instanceOf: RangeError,
    message: /fewer than the 3 classes present/,
  });
  t.throws(() => dna.stratifiedSubset(ds, 2.5, 0), { instanceOf: TypeError, message: /n must be an integer/ });
  t.throws(() => dna.stratifiedSubset(ds, 5, 0.5), { instanceOf: TypeError, message: /seed must be an integer/ });
  t.is(dna.stratifiedSubset(ds, 3, 0).count, 3);
  t.is(dna.stratifiedSubset(ds, 15, 0).count, 15);
  t.throws(() => dna.splitStratified(ds, 1, 0), { instanceOf: RangeError, message: /fraction must be in \(0, 1\)/ });
  t.throws(() => dna.splitStratified(ds, 0.01, 0), { instanceOf: RangeError, message: /leaves one part empty/ });
  t.throws(() => dna.stratifiedSubset({ ...ds, count: 14 }, 3, 0), { instanceOf: RangeError, message: /15 labels/ });
});

test('splitStratified gives two disjoint stratified parts covering the dataset', (t) => {
  const ds = synthetic([40, 24, 16]);
  const [a, b] = dna.splitStratified(ds, 0.5, 5);
  t.is(a.count, 40);
  t.is(b.count, 40);
  t.deepEqual(dna.classCounts(a), [20, 12, 8]);
  t.deepEqual(dna.classCounts(b), [20, 12, 8]);
  const all = [...originals(t, a), ...originals(t, b)].sort((x, y) => x - y);
  t.deepEqual(
    all,
    Array.from({ length: 80 }, (_, i) => i),
  );
  const [a2] = dna.splitStratified(ds, 0.5, 5);
  t.deepEqual(a2.images, a.images);
  // The first part is the stratified subset of the same size and seed.
  t.deepEqual(dna.stratifiedSubset(ds, 40, 5).images, a.images);
  const [small, rest] = dna.splitStratified(ds, 0.25, 1);
  t.deepEqual(dna.classCounts(small), [10, 6, 4]);
  t.is(rest.count, 60);
});

// ---- Batches ----

function collect(ds: dna.ImageDataset, options: dna.BatchOptions): { order: number[]; sizes: number[] } {
  const order: number[] = [];
  const sizes: number[] = [];
  for (const batch of dna.batches(ds, options)) {
    order.push(...batch.indices);
    sizes.push(batch.indices.length);
    dna.dispose(batch);
  }
  return { order, sizes };
}

test('batches visit every image once per epoch, in an order fixed by (seed, epoch)', (t) => {
  const ds = synthetic([4, 3, 3]);
  const everything = Array.from({ length: 10 }, (_, i) => i);
  const e0 = collect(ds, { batchSize: 4, seed: 9 });
  t.deepEqual(e0.sizes, [4, 4, 2], 'the last batch is partial');
  t.deepEqual(
    [...e0.order].sort((a, b) => a - b),
    everything,
  );
  t.notDeepEqual(e0.order, everything, 'shuffled');
  t.deepEqual(collect(ds, { batchSize: 4, seed: 9, epoch: 0 }).order, e0.order, 'reproducible');
  t.deepEqual(collect(ds, { batchSize: 3, seed: 9 }).order, e0.order, 'the order does not depend on the batch size');
  t.deepEqual(Array.from(dna.epochOrder(10, { seed: 9 })), e0.order);
  const epochs = [0, 1, 2, 3, 4].map((epoch) => collect(ds, { batchSize: 4, seed: 9, epoch }).order);
  for (const order of epochs)
    t.deepEqual(
      [...order].sort((a, b) => a - b),
      everything,
    );
  t.is(new Set(epochs.map((o) => o.join())).size, 5, 'each epoch its own order');
  t.deepEqual(collect(ds, { batchSize: 4, seed: 9, epoch: 3 }).order, epochs[3], 'resuming at epoch 3 replays it');
  t.notDeepEqual(collect(ds, { batchSize: 4, seed: 10 }).order, e0.order);

  const resumed = collect(ds, { batchSize: 4, seed: 9, epoch: 2, startBatch: 1 });
  t.deepEqual(resumed.order, epochs[2].slice(4), 'startBatch resumes inside an epoch');
  const dropped = collect(ds, { batchSize: 4, seed: 9, dropLast: true });
  t.deepEqual(dropped.sizes, [4, 4]);
  t.deepEqual(dropped.order, e0.order.slice(0, 8));
  t.deepEqual(collect(ds, { batchSize: 4, shuffle: false }).order, everything);
  t.is(dna.batchCount(10, 4), 3);
  t.is(dna.batchCount(10, 4, true), 2);
});

test('batches are float32 [B, C, H, W] in [0, 1] and int64 labels, with no tensor left behind', (t) => {
  const ds = synthetic([7, 6]);
  const before = dna.liveTensors();
  const devices = dna.backend().cuda ? ['cpu', 'cuda'] : ['cpu'];
  for (const device of devices) {
    for (const batch of dna.batches(ds, { batchSize: 5, seed: 1, device })) {
      const B = batch.indices.length;
      t.is(batch.images.dtype, 'float32');
      t.deepEqual(batch.images.shape, [B, 1, 2, 2]);
      t.true(batch.images.device.startsWith(device));
      t.is(batch.labels.dtype, 'int64');
      t.deepEqual(batch.labels.shape, [B]);
      t.true(batch.labels.device.startsWith(device));
      const values = batch.images.data() as Float32Array;
      const labels = Array.from(batch.labels.data() as BigInt64Array, Number);
      batch.indices.forEach((i, k) => {
        t.is(labels[k], ds.labels[i]);
        for (let p = 0; p < 4; p++) t.true(Math.abs(values[k * 4 + p] - ds.images[i * 4 + p] / 255) < 1e-6);
      });
      dna.dispose(batch);
    }
  }
  t.is(dna.liveTensors(), before);
  // A batch consumed inside tidy() is freed with it.
  const iterator = dna.batches(ds, { batchSize: 13 });
  dna.tidy(() => {
    iterator.next();
  });
  t.is(dna.liveTensors(), before);
});

test('batches check their options before the first batch', (t) => {
  const ds = synthetic([2, 2]);
  t.throws(() => dna.batches(ds, { batchSize: 0 }), {
    instanceOf: RangeError,
    message: /batchSize must be a positive integer/,
  });
  t.throws(() => dna.batches(ds, { batchSize: 2, epoch: -1 }), { instanceOf: RangeError, message: /epoch must be/ });
  t.throws(() => dna.batches(ds, { batchSize: 2, seed: 1.5 }), {
    instanceOf: TypeError,
    message: /seed must be an integer/,
  });
  t.throws(() => dna.batches(ds, { batchSize: 2, startBatch: 3 }), {
    instanceOf: RangeError,
    message: /startBatch must be an integer in 0\.\.2/,
  });
  t.throws(() => dna.batches({ ...ds, images: ds.images.subarray(1) }, { batchSize: 2 }), {
    instanceOf: RangeError,
    message: /dataset.images has 15 bytes/,
  });
});
