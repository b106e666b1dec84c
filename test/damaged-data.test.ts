// Damaged data files, systematically: every loader's files (CIFAR-10/100 binaries and class
// names, IDX plain and gzip, SVHN MAT-files plain and compressed, PNG and JPEG folders) cut at
// seeded offsets, with seeded bytes flipped, emptied and replaced by another file's bytes. Each
// load either succeeds (a flipped pixel is still a pixel) or rejects with a DataFileError that
// names the damaged file; nothing else is thrown and the process survives.
import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';

import * as dna from '../lib/index.js';
import {
  cifarRecords,
  idxFile,
  idxImages,
  python,
  rgbBytes,
  writeCifar10,
  writePng,
  writeSvhn,
} from './helpers/data-files.js';
import { mulberry32 } from './helpers/random.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'dna-damaged-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

/** A loader's good folder, and how to load it. */
interface Format {
  name: string;
  make: (dir: string) => Promise<string>;
  load: (dir: string) => Promise<dna.ImageDataset>;
}

const formats: Format[] = [
  {
    name: 'cifar10',
    make: async (dir) => writeCifar10(dir),
    load: async (dir) => {
      await dna.datasets.cifar10(dir, { split: 'test' });
      return dna.datasets.cifar10(dir);
    },
  },
  {
    name: 'cifar100',
    make: async (dir) => {
      const folder = path.join(dir, 'cifar-100-binary');
      mkdirSync(folder, { recursive: true });
      writeFileSync(
        path.join(folder, 'train.bin'),
        cifarRecords(0, 3, (n) => [n % 20, (n * 7) % 100]),
      );
      writeFileSync(
        path.join(folder, 'fine_label_names.txt'),
        Array.from({ length: 100 }, (_, k) => `fine${k}`).join('\n'),
      );
      writeFileSync(
        path.join(folder, 'coarse_label_names.txt'),
        Array.from({ length: 20 }, (_, k) => `coarse${k}`).join('\n'),
      );
      return folder;
    },
    load: (dir) => dna.datasets.cifar100(dir),
  },
  {
    name: 'idx (plain and gzip)',
    make: async (dir) => {
      writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idxImages(0, 6, 5, 5));
      writeFileSync(
        path.join(dir, 'train-labels-idx1-ubyte.gz'),
        gzipSync(idxFile([6], Uint8Array.from([0, 1, 2, 3, 4, 9]))),
      );
      return dir;
    },
    load: (dir) => dna.datasets.idx(dir),
  },
  {
    name: 'svhn (plain and compressed MAT-files)',
    make: async (dir) => {
      mkdirSync(path.join(dir, 'zip'));
      writeSvhn([
        [dir, 'train_32x32.mat', 3, false],
        [dir, 'test_32x32.mat', 2, true],
      ]);
      return dir;
    },
    load: async (dir) => {
      await dna.datasets.svhn(dir, { split: 'test' });
      return dna.datasets.svhn(dir);
    },
  },
  {
    name: 'imageFolder (PNG and JPEG)',
    make: async (dir) => {
      for (const label of ['a', 'b']) mkdirSync(path.join(dir, label));
      await writePng(path.join(dir, 'a', '0.png'), 0, 6, 6);
      await sharp(rgbBytes(1, 6, 6), { raw: { width: 6, height: 6, channels: 3 } })
        .jpeg()
        .toFile(path.join(dir, 'b', '1.jpg'));
      return dir;
    },
    load: (dir) => dna.datasets.imageFolder(dir),
  },
];

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? filesUnder(file) : [file];
  });
}

function scipyAvailable(): boolean {
  try {
    python('import scipy.io, numpy');
    return true;
  } catch {
    return false;
  }
}

for (const format of formats) {
  test(
    `${format.name}: cut, flipped, emptied or foreign files load or give a DataFileError ` + `naming the file`,
    async (t) => {
      if (format.name.startsWith('svhn') && !scipyAvailable()) {
        t.log('skipped: writing MAT-files needs scipy (apt-get install python3-scipy)');
        t.pass();
        return;
      }
      const dir = path.join(root, format.name.split(' ')[0]);
      mkdirSync(dir, { recursive: true });
      const folder = await format.make(dir);
      await t.notThrowsAsync(format.load(folder), 'the good files load');
      const rnd = mulberry32(format.name.length * 7919);
      const outcomes = { loaded: 0, refused: 0 };
      const problems: string[] = [];
      const foreign = Buffer.from('\x89PNG\r\n\x1a\n' + 'x'.repeat(200), 'latin1');
      for (const file of filesUnder(folder)) {
        const good = readFileSync(file);
        const damaged: Array<[string, Buffer]> = [
          ['empty', Buffer.alloc(0)],
          ['one byte', good.subarray(0, 1)],
          ['last byte cut', good.subarray(0, good.length - 1)],
          ['a byte appended', Buffer.concat([good, Buffer.from([7])])],
          ['foreign bytes', foreign],
        ];
        for (let k = 0; k < 12; k++) {
          const at = Math.floor(rnd() * good.length);
          damaged.push([`cut at ${at}`, good.subarray(0, at)]);
        }
        for (let k = 0; k < 24; k++) {
          // Flips in the first 256 bytes (headers, magic numbers, labels) and anywhere.
          const at = Math.floor(rnd() * (k % 2 === 0 ? Math.min(256, good.length) : good.length));
          const copy = Buffer.from(good);
          copy[at] ^= 1 + Math.floor(rnd() * 255);
          damaged.push([`byte ${at} flipped`, copy]);
        }
        for (const [what, bytes] of damaged) {
          writeFileSync(file, bytes);
          try {
            await format.load(folder);
            outcomes.loaded++;
          } catch (error) {
            outcomes.refused++;
            const named = error instanceof dna.DataFileError && error.file === file && error.message.includes(file);
            if (!named)
              problems.push(
                `${path.relative(folder, file)} ${what}: ` +
                  `${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
              );
          }
        }
        writeFileSync(file, good);
      }
      t.log(
        `${outcomes.loaded + outcomes.refused} damaged versions of ${filesUnder(folder).length} files: ` +
          `${outcomes.refused} refused, ${outcomes.loaded} loaded`,
      );
      t.deepEqual(problems.slice(0, 10), []);
      t.true(outcomes.refused > 0);
      // A missing file, and a folder where a file should be (the largest file: one the loader needs).
      const [first] = filesUnder(folder).sort((a, b) => statSync(b).size - statSync(a).size);
      rmSync(first);
      await t.throwsAsync(format.load(folder), { instanceOf: dna.DataFileError }, 'missing');
      mkdirSync(first);
      await t.throwsAsync(format.load(folder), { instanceOf: dna.DataFileError }, 'a folder');
    },
  );
}
