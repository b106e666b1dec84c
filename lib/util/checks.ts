// The checks of numbers the public functions take, in one place so that their messages read
// alike: "where: name must be a positive integer, got ...".
import { describe } from './describe.js';

/** A positive integer, or a RangeError naming it and `where`. */
export function positiveInteger(value: unknown, name: string, where: string): number {
  if (!Number.isInteger(value) || (value as number) < 1)
    throw new RangeError(`${where}: ${name} must be a positive integer, got ${describe(value)}`);
  return value as number;
}

/** A non-negative integer, or a RangeError naming it and `where`. */
export function nonNegativeInteger(value: unknown, name: string, where: string): number {
  if (!Number.isInteger(value) || (value as number) < 0)
    throw new RangeError(`${where}: ${name} must be a non-negative integer, got ${describe(value)}`);
  return value as number;
}

/** An integer in min..max (">= min" when there is no maximum), or a RangeError naming it and `where`. */
export function integerInRange(value: unknown, name: string, where: string, min: number, max = Infinity): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `>= ${min}` : `in ${min}..${max}`;
    throw new RangeError(`${where}: ${name} must be an integer ${range}, got ${describe(value)}`);
  }
  return value;
}

/**
 * A seed: an integer that a double holds exactly (a TypeError otherwise), which the data
 * functions hash; with `nonNegative` (the seeds of runs, which seed LibTorch's generators) a
 * non-negative one (a RangeError otherwise).
 */
export function checkSeed(seed: unknown, where: string, nonNegative = false): number {
  if (nonNegative) {
    if (!Number.isSafeInteger(seed) || (seed as number) < 0)
      throw new RangeError(`${where}: seed must be a non-negative integer, got ${describe(seed)}`);
  } else if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new TypeError(`${where}: seed must be an integer, got ${describe(seed)}`);
  }
  return seed as number;
}
