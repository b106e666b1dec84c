// A folder of images, one subfolder per class (the layout of torchvision's ImageFolder),
// decoded with sharp (libvips) to 8-bit RGB: all at once into memory, or, for a folder too big
// for that, batch by batch as a run reads them (a streamed dataset: only the paths and labels are
// kept; decoding runs off the main thread, in libvips' threads).
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';

import { describe, optionsObject } from '../util/describe.js';
import { DataFileError, type ImageDataset } from './dataset.js';
import { checkDirArgument, isDirectory } from './files.js';

export interface ImageFolderOptions {
  /** A subfolder of `dir` to read instead of `dir` itself, e.g. `'train'` or `'val'`. */
  split?: string;
  /** Resize every image whose size differs to [height, width] (stretching, sharp's default Lanczos-3 kernel). */
  size?: [number, number];
  /** Images decoded at once (default 8). */
  concurrency?: number;
  /**
   * Read the images from their files batch by batch instead of decoding them all now: true,
   * false, or 'auto' (default), which streams when the decoded images would take more than
   * `streamAbove` bytes.
   */
  stream?: boolean | 'auto';
  /** Where 'auto' starts streaming, in bytes of decoded images (default 1 GiB). */
  streamAbove?: number;
}

const STREAM_ABOVE = 2 ** 30;

const EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

type Sharp = typeof import('sharp').default;

async function loadSharp(): Promise<Sharp> {
  try {
    return (await import('sharp')).default;
  } catch (error) {
    throw new Error(
      `imageFolder: decoding images needs the sharp package (npm install sharp): ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** Image files under `folder`, at any depth, sorted by path. Hidden files and folders are skipped. */
async function imageFiles(folder: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (EXTENSIONS.has(extname(entry.name).toLowerCase())) found.push(path);
    }
  };
  await walk(folder);
  return found.sort();
}

interface Decoded {
  height: number;
  width: number;
  /** Channel-major RGB. */
  pixels: Uint8Array;
}

async function decode(sharp: Sharp, path: string, size: [number, number] | undefined): Promise<Decoded> {
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    // The bytes are read here and handed over: given a path, libvips may keep the file mapped
    // (its operation cache), and a file changed on disk meanwhile then crashes the process (SIGBUS).
    const bytes = await readFile(path);
    raw = await sharp(bytes, { failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (size && (raw.info.height !== size[0] || raw.info.width !== size[1])) {
      raw = await sharp(raw.data, {
        raw: { width: raw.info.width, height: raw.info.height, channels: raw.info.channels as 3 },
      })
        .resize(size[1], size[0], { fit: 'fill' })
        .raw()
        .toBuffer({ resolveWithObject: true });
    }
  } catch (error) {
    throw new DataFileError(path, `imageFolder: cannot decode ${path}: ${(error as Error).message}`, { cause: error });
  }
  const { width, height, channels } = raw.info;
  if (channels !== 3)
    throw new DataFileError(path, `imageFolder: ${path} decoded to ${channels} channels, expected RGB`);
  const plane = width * height;
  const pixels = new Uint8Array(3 * plane);
  const data = raw.data;
  for (let p = 0; p < plane; p++) {
    pixels[p] = data[3 * p];
    pixels[plane + p] = data[3 * p + 1];
    pixels[2 * plane + p] = data[3 * p + 2];
  }
  return { height, width, pixels };
}

/**
 * Images from `dir/<class>/...` (or `dir/<split>/<class>/...`): the sorted subfolder names are
 * the classes, every `.png`, `.jpg` or `.jpeg` below one (at any depth) is an image of it.
 * Images are decoded to RGB (gray ones repeated, alpha dropped). They must all have the same
 * size, unless `size` is given.
 */
export async function imageFolder(dir: string, options: ImageFolderOptions = {}): Promise<ImageDataset> {
  const where = 'imageFolder';
  checkDirArgument(where, dir);
  const { split, size, concurrency = 8, stream = 'auto', streamAbove = STREAM_ABOVE } = optionsObject(options, where);
  if (stream !== true && stream !== false && stream !== 'auto')
    throw new TypeError(`${where}: stream must be true, false or 'auto', got ${describe(stream)}`);
  if (!(typeof streamAbove === 'number' && streamAbove >= 0))
    throw new RangeError(`${where}: streamAbove must be a number of bytes, got ${describe(streamAbove)}`);
  if (split !== undefined && (typeof split !== 'string' || split === ''))
    throw new TypeError(`${where}: split must be a subfolder name, got ${describe(split)}`);
  if (
    size !== undefined &&
    !(Array.isArray(size) && size.length === 2 && size.every((d) => Number.isInteger(d) && d > 0))
  ) {
    throw new TypeError(`${where}: size must be [height, width] of positive integers, got ${describe(size)}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`${where}: concurrency must be a positive integer, got ${describe(concurrency)}`);
  const root = split === undefined ? dir : join(dir, split);
  if (!(await isDirectory(root)))
    throw new DataFileError(root, `${where}: missing folder ${root} (expected one subfolder of images per class)`);

  const entries = await readdir(root, { withFileTypes: true });
  const classes = entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
  if (classes.length === 0)
    throw new DataFileError(root, `${where}: ${root} has no class subfolders (expected ${root}/<class>/<image>.png)`);
  const files: string[] = [];
  const fileLabels: number[] = [];
  for (const [label, name] of classes.entries()) {
    const found = await imageFiles(join(root, name));
    if (found.length === 0)
      throw new DataFileError(
        join(root, name),
        `${where}: class folder ${join(root, name)} has no .png, .jpg or .jpeg files`,
      );
    files.push(...found);
    fileLabels.push(...found.map(() => label));
  }

  const sharp = await loadSharp();
  const first = await decode(sharp, files[0], size);
  const { height, width } = first;
  const bytes = 3 * height * width;
  const labels = Int32Array.from(fileLabels);
  const name = `imageFolder(${root})`;
  const shape: [number, number, number] = [3, height, width];
  const decodeInto = folderReader(sharp, files, size, first, concurrency);
  if (stream === true || (stream === 'auto' && files.length * bytes > streamAbove)) {
    const source = { read: (indices: Int32Array, into: Uint8Array) => decodeInto(indices, into) };
    return { name, images: new Uint8Array(0), source, labels, count: files.length, shape, classes };
  }
  const images = new Uint8Array(files.length * bytes);
  await decodeInto(
    Int32Array.from(files, (_, k) => k),
    images,
  );
  return { name, images, labels, count: files.length, shape, classes };
}

/**
 * Decodes the files at `indices` into `into` (channel-major, one after another), `concurrency` at
 * a time; every image must have the size of `first` (after the resize to `size`, when given).
 */
function folderReader(
  sharp: Sharp,
  files: string[],
  size: [number, number] | undefined,
  first: Decoded,
  concurrency: number,
): (indices: Int32Array, into: Uint8Array) => Promise<void> {
  const { height, width } = first;
  const bytes = 3 * height * width;
  return async (indices, into) => {
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < indices.length && !failed) {
        const k = next++;
        const file = files[indices[k]];
        try {
          const image = await decode(sharp, file, size);
          if (image.height !== height || image.width !== width) {
            throw new DataFileError(
              file,
              `imageFolder: ${file} is ${image.height}x${image.width} (height x width) but ${files[0]} is ` +
                `${height}x${width}: ` +
                'all images must have the same size, or pass { size: [height, width] } to resize them',
            );
          }
          into.set(image.pixels, k * bytes);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, indices.length) }, worker));
  };
}
