// A folder of images, one subfolder per class (the layout of torchvision's ImageFolder),
// decoded with sharp (libvips) to 8-bit gray or RGB: all at once into memory, or, for a folder too
// big for that, batch by batch as a run reads them (a streamed dataset: only the paths and labels
// are kept; decoding runs off the main thread, in libvips' threads). And the layouts such folders
// come in: flat (DIR/<class>/...) or split (DIR/train/<class>/... beside DIR/test/ or DIR/val/).
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';

import { describe, optionsObject } from '../util/describe.js';
import { DataFileError, type ImageDataset } from './dataset.js';
import { checkDirArgument, isDirectory, requireFolder } from './files.js';

export interface ImageFolderOptions {
  /** A subfolder of `dir` to read instead of `dir` itself, e.g. `'train'` or `'val'`. */
  split?: string;
  /** Resize every image whose size differs to [height, width] (stretching, sharp's default Lanczos-3 kernel). */
  size?: [number, number];
  /**
   * 1 (gray) or 3 (RGB). Default: 1 when every image is gray (a streamed folder: when its first
   * image is), else 3 (gray images repeated), so that gray images give the same tensors as the IDX
   * files they came from.
   */
  channels?: 1 | 3;
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
  /** 1 (gray) or 3 (RGB) interleaved channels, as sharp gives them. */
  channels: 1 | 3;
  data: Uint8Array;
}

/** The first line of a decoder's message, without a dangling colon ("corrupt header:"), or what it means. */
function decoderMessage(error: unknown): string {
  const first = ((error as Error)?.message ?? '').split('\n')[0].replace(/[:\s]+$/, '');
  return first === '' ? 'not a readable image' : first;
}

async function decode(sharp: Sharp, path: string, size: [number, number] | undefined): Promise<Decoded> {
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    // The bytes are read here and handed over: given a path, libvips may keep the file mapped
    // (its operation cache), and a file changed on disk meanwhile then crashes the process (SIGBUS).
    const bytes = await readFile(path);
    const { space } = await sharp(bytes, { failOn: 'error' }).metadata();
    // Gray stays gray (one channel); everything else (palette, CMYK, 16 bits) becomes sRGB.
    const gray = space === 'b-w' || space === 'grey16';
    raw = await sharp(bytes, { failOn: 'error' })
      .removeAlpha()
      .toColourspace(gray ? 'b-w' : 'srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (size && (raw.info.height !== size[0] || raw.info.width !== size[1])) {
      raw = await sharp(raw.data, {
        raw: { width: raw.info.width, height: raw.info.height, channels: raw.info.channels as 1 | 3 },
      })
        .resize(size[1], size[0], { fit: 'fill' })
        .toColourspace(gray ? 'b-w' : 'srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
    }
  } catch (error) {
    throw new DataFileError(
      path,
      `imageFolder: cannot decode ${path}: ${decoderMessage(error)} (a corrupt or truncated .png/.jpg?)`,
      { cause: error },
    );
  }
  const { width, height, channels } = raw.info;
  if (channels !== 1 && channels !== 3)
    throw new DataFileError(path, `imageFolder: ${path} decoded to ${channels} channels, expected gray or RGB`);
  return { height, width, channels, data: raw.data };
}

/**
 * Writes `image` channel-major with `channels` channels at `into[offset]`: gray repeated into RGB,
 * or RGB made gray with PIL's luma (L = 0.299 R + 0.587 G + 0.114 B, as Image.convert('L') rounds it).
 */
function writePlanes(image: Decoded, channels: 1 | 3, into: Uint8Array, offset: number): void {
  const plane = image.width * image.height;
  const { data } = image;
  if (image.channels === 1) {
    for (let c = 0; c < channels; c++) into.set(data.subarray(0, plane), offset + c * plane);
  } else if (channels === 3) {
    for (let p = 0; p < plane; p++) {
      into[offset + p] = data[3 * p];
      into[offset + plane + p] = data[3 * p + 1];
      into[offset + 2 * plane + p] = data[3 * p + 2];
    }
  } else {
    for (let p = 0; p < plane; p++)
      into[offset + p] = (data[3 * p] * 19595 + data[3 * p + 1] * 38470 + data[3 * p + 2] * 7471 + 0x8000) >> 16;
  }
}

/** Where a folder's images are: all of it (flat), or a train/ folder beside a test/ or val/ one (split). */
export interface ImageFolderLayout {
  layout: 'flat' | 'split';
  /** The folders of the training and the test images, the test one absent in a flat folder. */
  train: string;
  test?: string;
}

/** Subfolders of `dir` that are not hidden, sorted. */
async function subfolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
}

/**
 * How `dir` holds its images: `dir/train/<class>/` with `dir/test/<class>/` or `dir/val/<class>/`
 * (a split folder; the test folder may be missing), else `dir/<class>/` (flat).
 */
export async function imageFolderLayout(dir: string): Promise<ImageFolderLayout> {
  checkDirArgument('imageFolderLayout', dir);
  await requireFolder('imageFolderLayout', dir);
  const top = await subfolders(dir);
  const holdsClasses = async (name: string) => top.includes(name) && (await subfolders(join(dir, name))).length > 0;
  if (!(await holdsClasses('train'))) return { layout: 'flat', train: dir };
  for (const name of ['test', 'val']) {
    if (await holdsClasses(name)) return { layout: 'split', train: join(dir, 'train'), test: join(dir, name) };
  }
  return { layout: 'split', train: join(dir, 'train') };
}

/**
 * Images from `dir/<class>/...` (or `dir/<split>/<class>/...`): the sorted subfolder names are
 * the classes, every `.png`, `.jpg` or `.jpeg` below one (at any depth) is an image of it.
 * Images are decoded to gray when all are gray, else to RGB (or to `channels`); alpha is
 * dropped. They must all have the same size, unless `size` is given.
 */
export async function imageFolder(dir: string, options: ImageFolderOptions = {}): Promise<ImageDataset> {
  const where = 'imageFolder';
  checkDirArgument(where, dir);
  const {
    split,
    size,
    channels: wanted,
    concurrency = 8,
    stream = 'auto',
    streamAbove = STREAM_ABOVE,
  } = optionsObject(options, where);
  if (wanted !== undefined && wanted !== 1 && wanted !== 3)
    throw new TypeError(`${where}: channels must be 1 or 3, got ${describe(wanted)}`);
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
  await requireFolder(where, dir);
  const root = split === undefined ? dir : join(dir, split);
  if (!(await isDirectory(root)))
    throw new DataFileError(root, `${where}: missing folder ${root} (expected one subfolder of images per class)`);

  const classes = await subfolders(root);
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
  const plane = height * width;
  const labels = Int32Array.from(fileLabels);
  const name = `imageFolder(${root})`;
  if (stream === true || (stream === 'auto' && files.length * 3 * plane > streamAbove)) {
    // Streamed: the channels are settled before the first batch (by the first image).
    const channels = wanted ?? first.channels;
    const decodeInto = folderReader(sharp, files, size, first, channels, concurrency);
    const source = { read: (indices: Int32Array, into: Uint8Array) => decodeInto(indices, into).then(() => {}) };
    const shape: [number, number, number] = [channels, height, width];
    return { name, images: new Uint8Array(0), source, labels, count: files.length, shape, classes };
  }
  // In memory: decoded as RGB (or as asked), made gray afterwards when every image was gray.
  const decodeInto = folderReader(sharp, files, size, first, wanted ?? 3, concurrency);
  let images = new Uint8Array(files.length * (wanted ?? 3) * plane);
  const { allGray } = await decodeInto(
    Int32Array.from(files, (_, k) => k),
    images,
  );
  const channels = wanted ?? (allGray ? 1 : 3);
  if (channels === 1 && wanted === undefined) {
    const gray = new Uint8Array(files.length * plane);
    for (let k = 0; k < files.length; k++) gray.set(images.subarray(3 * k * plane, (3 * k + 1) * plane), k * plane);
    images = gray;
  }
  return { name, images, labels, count: files.length, shape: [channels, height, width], classes };
}

/**
 * Decodes the files at `indices` into `into` (channel-major, `channels` channels, one after
 * another), `concurrency` at a time; every image must have the size of `first` (after the resize
 * to `size`, when given). Says whether every image was gray.
 */
function folderReader(
  sharp: Sharp,
  files: string[],
  size: [number, number] | undefined,
  first: Decoded,
  channels: 1 | 3,
  concurrency: number,
): (indices: Int32Array, into: Uint8Array) => Promise<{ allGray: boolean }> {
  const { height, width } = first;
  const bytes = channels * height * width;
  return async (indices, into) => {
    let next = 0;
    let failed = false;
    let allGray = true;
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
                'all images must have the same size; give a size to resize them to (the size option, ' +
                '[height, width]; --size HxW on the command line)',
            );
          }
          if (image.channels === 3) allGray = false;
          writePlanes(image, channels, into, k * bytes);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, indices.length) }, worker));
    return { allGray };
  };
}
