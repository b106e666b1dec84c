// A reader for the part of MATLAB's level 5 MAT-file format that datasets use: top-level
// numeric matrices (miMATRIX), plain or zlib-compressed (miCOMPRESSED), either byte order.
// Format: MathWorks, "MAT-File Format" (matfile_format.pdf), level 5 chapter.
import { inflate } from 'node:zlib';
import { promisify } from 'node:util';

import { DataFileError } from './dataset.js';

const inflateAsync = promisify(inflate);

/** A numeric MATLAB array, column-major as stored. */
export interface MatArray {
  name: string;
  /** MATLAB class: 'double', 'uint8', ... (or 'cell', 'struct', 'char', ... for arrays whose data are not read). */
  className: string;
  dims: number[];
  /**
   * The values, column-major: a view of the file's bytes when stored as uint8, else float64.
   * Absent for non-numeric classes.
   */
  data?: Uint8Array | Float64Array;
  complex: boolean;
}

const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
};
const ELEMENT_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };
const CLASS_NAMES: Record<number, string> = {
  1: 'cell',
  2: 'struct',
  3: 'object',
  4: 'char',
  5: 'sparse',
  6: 'double',
  7: 'single',
  8: 'int8',
  9: 'uint8',
  10: 'int16',
  11: 'uint16',
  12: 'int32',
  13: 'uint32',
  14: 'int64',
  15: 'uint64',
};
const NUMERIC_CLASSES = new Set([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

interface Element {
  type: number;
  data: Uint8Array;
  /** Offset of the next element. */
  next: number;
}

class Reader {
  constructor(
    readonly where: string,
    readonly file: string,
    readonly littleEndian: boolean,
  ) {}

  fail(message: string): never {
    throw new DataFileError(this.file, `${this.where}: ${this.file}: ${message}`);
  }

  /** The data element at `offset` of `bytes` (`context` says where, for messages). */
  element(bytes: Uint8Array, offset: number, context: string): Element {
    if (offset + 8 > bytes.length)
      this.fail(`truncated: ${context} needs an 8-byte tag at byte ${offset}, the data end at ${bytes.length}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 8);
    const first = view.getUint32(0, this.littleEndian);
    if (first >>> 16 !== 0) {
      // Small data element: type and size share the first word, up to 4 bytes of data follow.
      const size = first >>> 16;
      if (size > 4) this.fail(`corrupt: ${context} at byte ${offset} is a small element of ${size} bytes (at most 4)`);
      return { type: first & 0xffff, data: bytes.subarray(offset + 4, offset + 4 + size), next: offset + 8 };
    }
    const size = view.getUint32(4, this.littleEndian);
    const start = offset + 8;
    if (start + size > bytes.length) {
      this.fail(`truncated: ${context} at byte ${offset} claims ${size} bytes, only ${bytes.length - start} remain`);
    }
    // Elements are padded to 8 bytes, compressed ones are not.
    const padded = first === MI.COMPRESSED ? size : Math.ceil(size / 8) * 8;
    return { type: first, data: bytes.subarray(start, start + size), next: Math.min(start + padded, bytes.length) };
  }

  integers(element: Element, context: string): number[] {
    const values = this.numbers(element, context);
    return Array.from(values, Number);
  }

  /** The values of a numeric data element, as float64 (or a uint8 view when stored as uint8). */
  numbers(element: Element, context: string): Uint8Array | Float64Array {
    const size = ELEMENT_SIZE[element.type];
    if (size === undefined) this.fail(`corrupt: ${context} has data type ${element.type}, not a numeric MAT type`);
    if (element.data.length % size !== 0)
      this.fail(`corrupt: ${context} has ${element.data.length} bytes, not a multiple of ${size}`);
    if (element.type === MI.UINT8) return element.data;
    const n = element.data.length / size;
    const view = new DataView(element.data.buffer, element.data.byteOffset, element.data.length);
    const out = new Float64Array(n);
    const le = this.littleEndian;
    const read: (k: number) => number = {
      [MI.INT8]: (k: number) => view.getInt8(k),
      [MI.INT16]: (k: number) => view.getInt16(k * 2, le),
      [MI.UINT16]: (k: number) => view.getUint16(k * 2, le),
      [MI.INT32]: (k: number) => view.getInt32(k * 4, le),
      [MI.UINT32]: (k: number) => view.getUint32(k * 4, le),
      [MI.SINGLE]: (k: number) => view.getFloat32(k * 4, le),
      [MI.DOUBLE]: (k: number) => view.getFloat64(k * 8, le),
      [MI.INT64]: (k: number) => Number(view.getBigInt64(k * 8, le)),
      [MI.UINT64]: (k: number) => Number(view.getBigUint64(k * 8, le)),
    }[element.type]!;
    for (let k = 0; k < n; k++) out[k] = read(k);
    return out;
  }

  /** A miMATRIX element's contents: flags, dimensions, name, real part (numeric classes only). */
  matrix(bytes: Uint8Array, context: string): MatArray | undefined {
    if (bytes.length === 0) return undefined; // an empty array
    const flags = this.element(bytes, 0, `${context} array flags`);
    const flagWords = this.integers(flags, `${context} array flags`);
    if (flagWords.length < 1) this.fail(`corrupt: ${context} has no array flags`);
    const classId = flagWords[0] & 0xff;
    const className = CLASS_NAMES[classId] ?? `class ${classId}`;
    const complex = (flagWords[0] & 0x0800) !== 0;
    if (classId === 2 || classId === 3 || classId === 5) {
      // struct, object and sparse have other layouts; only their (unknown) name could be read.
      return { name: '', className, dims: [], complex };
    }
    const dimsElement = this.element(bytes, flags.next, `${context} dimensions`);
    const dims = this.integers(dimsElement, `${context} dimensions`);
    if (dims.length < 2 || dims.some((d) => !Number.isInteger(d) || d < 0))
      this.fail(`corrupt: ${context} has dimensions [${dims.join(', ')}]`);
    const nameElement = this.element(bytes, dimsElement.next, `${context} name`);
    const name = new TextDecoder('latin1').decode(nameElement.data);
    if (!NUMERIC_CLASSES.has(classId)) return { name, className, dims, complex };
    const label = `${context} '${name}'`;
    const real = this.element(bytes, nameElement.next, `${label} data`);
    const data = this.numbers(real, `${label} data`);
    const numel = dims.reduce((a, b) => a * b, 1);
    if (data.length !== numel) {
      this.fail(`truncated or corrupt: ${label} is ${dims.join('x')} (${numel} values) but holds ${data.length}`);
    }
    return { name, className, dims, data, complex };
  }
}

/**
 * The top-level variables of a level 5 MAT-file (MATLAB -v6 / -v7, scipy.io.savemat), by
 * name. Numeric arrays come with their data; other classes only with name, class and dims.
 * A MATLAB 7.3 (HDF5) file is refused with a message saying so.
 */
export async function readMat(where: string, file: string, bytes: Uint8Array): Promise<Map<string, MatArray>> {
  if (bytes.length < 128) {
    throw new DataFileError(
      file,
      `${where}: ${file} has ${bytes.length} bytes, less than a MAT-file's 128-byte header (truncated or not ` +
        `a MAT-file)`,
    );
  }
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, 116));
  if (text.startsWith('MATLAB 7.3')) {
    throw new DataFileError(
      file,
      `${where}: ${file} is a MATLAB 7.3 (HDF5) file; save it as a level 5 MAT-file (MATLAB -v7, or scipy.io.savemat)`,
    );
  }
  const endian = String.fromCharCode(bytes[126], bytes[127]);
  if (endian !== 'IM' && endian !== 'MI') {
    throw new DataFileError(
      file,
      `${where}: ${file} is not a level 5 MAT-file (no 'IM'/'MI' endian indicator at byte 126; header: ` +
        `${JSON.stringify(text.slice(0, 40))})`,
    );
  }
  const reader = new Reader(where, file, endian === 'IM');
  const version = new DataView(bytes.buffer, bytes.byteOffset + 124, 2).getUint16(0, reader.littleEndian);
  if (version !== 0x0100)
    reader.fail(`unsupported MAT-file version 0x${version.toString(16)} (expected 0x0100, level 5)`);

  const variables = new Map<string, MatArray>();
  let offset = 128;
  for (let index = 0; offset < bytes.length; index++) {
    if (bytes.length - offset < 8 && bytes.subarray(offset).every((b) => b === 0)) break; // trailing padding
    const context = `variable ${index + 1}`;
    const start = offset;
    const element = reader.element(bytes, offset, context);
    offset = element.next;
    let matrix: Uint8Array;
    if (element.type === MI.COMPRESSED) {
      let inflated: Buffer;
      try {
        inflated = await inflateAsync(element.data);
      } catch (error) {
        throw new DataFileError(
          file,
          `${where}: ${file}: ${context} does not decompress (truncated or corrupt: ${(error as Error).message})`,
          { cause: error },
        );
      }
      const inner = reader.element(
        new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength),
        0,
        context,
      );
      if (inner.type !== MI.MATRIX) continue;
      matrix = inner.data;
    } else if (element.type === MI.MATRIX) {
      matrix = element.data;
    } else if (element.type === 0 && element.data.length === 0) {
      continue; // padding
    } else {
      return reader.fail(
        `corrupt: ${context} at byte ${start} has data type ${element.type}, expected a matrix (14) or ` +
          `compressed data (15)`,
      );
    }
    const array = reader.matrix(matrix, context);
    if (array && array.name !== '') variables.set(array.name, array);
  }
  return variables;
}
