// Small data files in the published formats, for the loaders' tests: CIFAR-10/100 binary
// records, IDX files, SVHN MAT-files (written by scipy) and PNG images, every pixel a known value.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The value of pixel (channel c, row h, column w) of image n in the synthetic datasets. */
export const pixel = (n: number, c: number, h: number, w: number) => (n * 37 + c * 101 + h * 7 + w * 13) % 256;

export function python(script: string, ...args: string[]): string {
  return execFileSync('/usr/bin/python3', ['-c', script, ...args], { encoding: 'utf8' });
}

export const CIFAR10_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** CIFAR records: label bytes, then 3072 pixels R plane, G plane, B plane, each 32 rows of 32. */
export function cifarRecords(first: number, count: number, labelBytes: (n: number) => number[]): Uint8Array {
  const record = labelBytes(0).length + 3072;
  const out = new Uint8Array(count * record);
  for (let k = 0; k < count; k++) {
    const n = first + k;
    const labels = labelBytes(n);
    out.set(labels, k * record);
    for (let c = 0; c < 3; c++) {
      for (let h = 0; h < 32; h++) {
        for (let w = 0; w < 32; w++) out[k * record + labels.length + c * 1024 + h * 32 + w] = pixel(n, c, h, w);
      }
    }
  }
  return out;
}

export function writeCifar10(parent: string): string {
  const dir = join(parent, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  for (let b = 0; b < 5; b++)
    writeFileSync(
      join(dir, `data_batch_${b + 1}.bin`),
      cifarRecords(b * 3, 3, (n) => [(n * 3) % 10]),
    );
  writeFileSync(
    join(dir, 'test_batch.bin'),
    cifarRecords(100, 4, (n) => [n % 10]),
  );
  writeFileSync(join(dir, 'batches.meta.txt'), CIFAR10_NAMES.join('\n') + '\n\n');
  return dir;
}

export function idxFile(dims: number[], values: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  view.setUint32(0, 0x0800 | dims.length, false);
  dims.forEach((d, k) => view.setUint32(4 + 4 * k, d, false));
  const out = new Uint8Array(header.length + values.length);
  out.set(header);
  out.set(values, header.length);
  return out;
}

export function idxImages(first: number, count: number, rows: number, cols: number): Uint8Array {
  const values = new Uint8Array(count * rows * cols);
  for (let n = 0; n < count; n++) {
    for (let h = 0; h < rows; h++)
      for (let w = 0; w < cols; w++) values[(n * rows + h) * cols + w] = pixel(first + n, 0, h, w);
  }
  return idxFile([count, rows, cols], values);
}

/** What `writeSvhn` writes: a folder, a file name, the number of images, compressed or not, a variant. */
export type SvhnFile = [dir: string, name: string, count: number, compress: boolean, variant?: string];

export const SVHN_WRITER = `import json, sys, numpy as np, scipy.io as sio
for d, name, n, compress, variant in json.loads(sys.argv[1]):
    r, c, ch, k = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), np.arange(n), indexing='ij')
    X = ((k * 37 + ch * 101 + r * 7 + c * 13) % 256).astype(np.uint8)  # X(row, column, channel, image)
    y = (np.arange(n) % 10 + 1).astype(np.float64).reshape(n, 1)       # 1..10, 10 for the digit 0
    v = {'X': X, 'y': y}
    if variant == 'double-X-uint8-y': v = {'X': X.astype(np.float64), 'y': y.astype(np.uint8)}
    if variant == 'no-y': v = {'X': X}
    if variant == 'no-X': v = {'Xs': X, 'y': y}
    if variant == 'flat-X': v = {'X': X.reshape(32 * 32 * 3, n), 'y': y}
    if variant == 'gray-X': v = {'X': X[:, :, :1, :], 'y': y}
    if variant == 'short-y': v = {'X': X, 'y': y[:-1]}
    if variant == 'bad-y': y[1, 0] = 11
    if variant == 'half-y': y[1, 0] = 2.5
    if variant == 'char-X': v = {'X': 'not pixels', 'y': y}
    if variant == 'extra-var': v['note'] = np.array([[1.0, 2.0]])
    sio.savemat(d + '/' + name, v, do_compression=compress)`;

/** Writes SVHN-style MAT-files with scipy (one Python process for all of them). */
export function writeSvhn(files: SvhnFile[]): void {
  python(
    SVHN_WRITER,
    JSON.stringify(
      files.map(([dir, name, count, compress, variant = 'plain']) => [dir, name, count, compress, variant]),
    ),
  );
}

/** An RGB image of h x w whose pixel (c, y, x) is pixel(n, c, y, x), as interleaved bytes. */
export function rgbBytes(n: number, height: number, width: number): Buffer {
  const out = Buffer.alloc(height * width * 3);
  for (let h = 0; h < height; h++)
    for (let w = 0; w < width; w++) for (let c = 0; c < 3; c++) out[(h * width + w) * 3 + c] = pixel(n, c, h, w);
  return out;
}

export async function writePng(path: string, n: number, height: number, width: number): Promise<void> {
  // Loaded here, not with the module: tests that only use the IDX or tiny datasets run without sharp.
  const { default: sharp } = await import('sharp');
  await sharp(rgbBytes(n, height, width), { raw: { width, height, channels: 3 } })
    .png()
    .toFile(path);
}
