// Class-stratified subsets and splits: the reduced datasets of a policy search (e.g. 4,000
// CIFAR-10 images) and their validation halves.
import { describe } from '../util/describe.js';
import { checkDataset, classCounts, subset, type ImageDataset } from './dataset.js';
import { checkSeed } from '../util/checks.js';
import { seededRandom, shuffleInPlace, STREAM } from './random.js';

/**
 * How many images of each class a stratified sample of `n` takes: n * count / total rounded
 * down, the images left over going to the largest remainders (ties: the lower class index).
 */
export function stratifiedQuotas(counts: number[], n: number): number[] {
  if (!Array.isArray(counts) || !counts.every((c) => Number.isSafeInteger(c) && c >= 0)) {
    throw new TypeError(
      `stratifiedQuotas: counts must be an array of class counts (non-negative integers), got ${describe(counts)}`,
    );
  }
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`stratifiedQuotas: n must be a non-negative integer, got ${describe(n)}`);
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return counts.map(() => 0);
  const quotas = counts.map((c) => Math.floor((n * c) / total));
  const remainders = counts.map((c) => (n * c) % total);
  let left = n - quotas.reduce((a, b) => a + b, 0);
  const order = counts.map((_, k) => k).sort((a, b) => remainders[b] - remainders[a] || a - b);
  for (const k of order) {
    if (left === 0) break;
    if (remainders[k] > 0) {
      quotas[k]++;
      left--;
    }
  }
  return quotas;
}

/** Indices (ascending) of a stratified sample of `n`, and of the rest (ascending). */
function stratifiedIndices(ds: ImageDataset, n: number, seed: number): [Int32Array, Int32Array] {
  const counts = classCounts(ds);
  const quotas = stratifiedQuotas(counts, n);
  const byClass = counts.map((c) => new Int32Array(c));
  const filled = counts.map(() => 0);
  for (let i = 0; i < ds.count; i++) {
    const label = ds.labels[i];
    byClass[label][filled[label]++] = i;
  }
  const random = seededRandom(seed, STREAM.subset);
  const chosen = new Uint8Array(ds.count);
  byClass.forEach((members, k) => {
    shuffleInPlace(members, random);
    for (let j = 0; j < quotas[k]; j++) chosen[members[j]] = 1;
  });
  const picked = new Int32Array(n);
  const rest = new Int32Array(ds.count - n);
  let p = 0;
  let r = 0;
  for (let i = 0; i < ds.count; i++) {
    if (chosen[i]) picked[p++] = i;
    else rest[r++] = i;
  }
  return [picked, rest];
}

/**
 * `n` images of `ds` with its class proportions (largest-remainder rounding), chosen at
 * random within each class, deterministically for `seed`; they keep their order in `ds`.
 * `n` must be an integer from the number of classes present in `ds` to `ds.count`: fewer
 * than one image per class cannot be stratified. A class rarer than 1 / n of the data may
 * still get no image (rounding); with balanced data (CIFAR, SVHN) every class gets n / K.
 */
export function stratifiedSubset(ds: ImageDataset, n: number, seed: number): ImageDataset {
  const where = 'stratifiedSubset';
  checkDataset(ds, where);
  checkSeed(seed, where);
  if (!Number.isInteger(n)) throw new TypeError(`${where}: n must be an integer, got ${describe(n)}`);
  if (n > ds.count) throw new RangeError(`${where}: n = ${n} is more than the ${ds.count} images of ${ds.name}`);
  const present = classCounts(ds).filter((c) => c > 0).length;
  if (n < present) {
    throw new RangeError(
      `${where}: n = ${n} is fewer than the ${present} classes present in ${ds.name}; a stratified subset needs at ` +
        `least one image per class`,
    );
  }
  const [picked] = stratifiedIndices(ds, n, seed);
  return subset(ds, picked, `${ds.name}[${n} stratified, seed ${seed}]`);
}

/**
 * Splits `ds` in two, both with its class proportions: the first part has
 * round(fraction * count) images chosen as `stratifiedSubset` would, the second the rest.
 * Deterministic for `seed`; images keep their order. `fraction` is in (0, 1) and both parts
 * must get at least one image.
 */
export function splitStratified(ds: ImageDataset, fraction: number, seed: number): [ImageDataset, ImageDataset] {
  const where = 'splitStratified';
  checkDataset(ds, where);
  checkSeed(seed, where);
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction < 1))
    throw new RangeError(`${where}: fraction must be in (0, 1), got ${describe(fraction)}`);
  const n = Math.round(fraction * ds.count);
  if (n === 0 || n === ds.count) {
    throw new RangeError(`${where}: a fraction of ${fraction} of ${ds.count} images leaves one part empty`);
  }
  const [picked, rest] = stratifiedIndices(ds, n, seed);
  return [
    subset(ds, picked, `${ds.name}[${fraction} split, seed ${seed}]`),
    subset(ds, rest, `${ds.name}[rest of ${fraction} split, seed ${seed}]`),
  ];
}
