// The per-class policy report (SPEC 1.6): what a policy network does on a dataset, class by
// class. Sums over images are kept per class (so memory does not grow with the data) and turned
// into mean pi(x), the top sub-policies (the paper's Table 3), entropies, per-op apply mass,
// mean p and m, and the Jensen-Shannon distances between the classes' mean pi.
import { checkDataset, classCounts, type ImageDataset } from '../data/dataset.js';
import { describe, optionsObject, requiredOptions } from '../util/describe.js';
import { batchesAsync } from '../data/batches.js';
import { PolicyNetwork } from './policy-network.js';
import { type PolicyOutput } from './sampling.js';
import type { LoadedPolicy } from './frozen-policy.js';
import { subPolicyName, validateSearchSpace, type SearchSpace } from '../augment/search-space.js';
import { Tensor, dispose, keep, noGrad, tidy, type Device } from '../engine/tensor.js';
import { arange, cat, ones, zeros } from '../engine/creation.js';
import { positiveInteger } from '../util/checks.js';
import { yieldToEventLoop } from '../util/event-loop.js';

export const POLICY_REPORT_KIND = 'dna-augment/policy-report';
// 2: meanM is null for ops without a magnitude; the search space lists each op's identity magnitude.
const POLICY_REPORT_VERSION = 2;

/** Anything that maps a batch of [0, 1] images to (logits, p, m): a PolicyNetwork, or a hand-made policy. */
export interface PolicySource {
  readonly searchSpace: SearchSpace;
  forward(images: Tensor): PolicyOutput;
}

/** One sub-policy and its mean probability. */
export interface RankedSubPolicy {
  index: number;
  /** e.g. "Rotate+Invert". */
  name: string;
  probability: number;
}

/** What the policy does with one op, per image on average. */
export interface OpStatistics {
  name: string;
  /** Expected number of slots holding this op per image: E_x[sum of pi_s(x) over the slots (s, l) with op o]. */
  selected: number;
  /** Expected number of applications per image: E_x[sum of pi_s(x) * p_{s,l}(x) over those slots]. */
  applyMass: number;
  /**
   * Apply probability and magnitude averaged over those slots, weighted by pi_s(x); null when the
   * op is in no sub-policy (and m null for an op without a magnitude, whose m the op ignores).
   */
  meanP: number | null;
  meanM: number | null;
  /**
   * Magnitude ranges: the width averaged like meanM (null for point magnitudes, or when the op is
   * in no sub-policy). A draw takes m uniformly in meanM +- meanWidth / 2 (clamped to [0, 1]).
   */
  meanWidth: number | null;
}

/** The policy's behaviour over a group of images (one class, or all of them). */
export interface PolicyGroupStatistics {
  name: string;
  /** The class index; absent for the whole dataset. */
  label?: number;
  count: number;
  /** Mean pi(x) over the group, one value per sub-policy (sums to 1). */
  meanPi: number[];
  /** The sub-policies of highest mean pi, best first. */
  top: RankedSubPolicy[];
  /** Mean entropy of pi(x), in nats (log S when uniform, 0 when one-hot). */
  meanEntropy: number;
  /** Entropy of the mean pi, in nats. */
  entropyOfMean: number;
  /** One entry per op of the search space, in its order. */
  ops: OpStatistics[];
}

export interface PolicyReport {
  kind: typeof POLICY_REPORT_KIND;
  version: number;
  /** The dataset's name, when the report was made from one. */
  dataset?: string;
  /** Where the policy came from (a policy file's provenance). */
  policy?: Record<string, unknown>;
  images: number;
  /** Every class of the data, and how many images each had. */
  classes: string[];
  counts: number[];
  /**
   * The ops, the sub-policies' names, log S, and per op the magnitude m at which it does nothing
   * (null for an op without a magnitude, or without such a point).
   */
  searchSpace: {
    ops: string[];
    /** Each op's range of values (m = 0 .. 1), null for ops without a magnitude. */
    ranges: ([number, number] | null)[];
    subPolicies: string[];
    maxEntropy: number;
    identityAt: (number | null)[];
  };
  /** Whether the policy gives one magnitude per slot or a range (then each op has a meanWidth). */
  magnitudes: 'point' | 'range';
  /** One entry per class that had images, in label order. */
  perClass: PolicyGroupStatistics[];
  overall: PolicyGroupStatistics;
  /** Jensen-Shannon divergence (base 2, in [0, 1]) between the mean pi of the classes of `perClass`. */
  distance: { classes: string[]; matrix: number[][]; meanOffDiagonal: number | null };
}

function checkDistribution(distribution: unknown, where: string): void {
  const numbers = Array.isArray(distribution)
    ? distribution.every((q) => typeof q === 'number')
    : ArrayBuffer.isView(distribution) &&
      !(distribution instanceof DataView) &&
      !(distribution instanceof BigInt64Array) &&
      !(distribution instanceof BigUint64Array);
  if (!numbers)
    throw new TypeError(`${where}: a distribution must be an array of probabilities, got ${describe(distribution)}`);
}

/** Entropy of a distribution, in nats. */
export function entropy(distribution: ArrayLike<number>): number {
  checkDistribution(distribution, 'entropy');
  let sum = 0;
  for (let i = 0; i < distribution.length; i++) {
    const q = distribution[i];
    if (q > 0) sum -= q * Math.log(q);
  }
  return sum;
}

/** Jensen-Shannon divergence of two distributions, base 2 (0 for equal ones, 1 for disjoint ones). */
export function jensenShannon(a: ArrayLike<number>, b: ArrayLike<number>): number {
  checkDistribution(a, 'jensenShannon');
  checkDistribution(b, 'jensenShannon');
  if (a.length !== b.length)
    throw new RangeError(`jensenShannon: the distributions have ${a.length} and ${b.length} entries`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const middle = (a[i] + b[i]) / 2;
    if (a[i] > 0) sum += a[i] * Math.log2(a[i] / middle);
    if (b[i] > 0) sum += b[i] * Math.log2(b[i] / middle);
  }
  return Math.min(1, Math.max(0, sum / 2));
}

/** A tensor's shape as text ([2, 3]); anything else described. */
const shapeText = (value: unknown) => (value instanceof Tensor ? `[${value.shape.join(', ')}]` : describe(value));

/**
 * Per-class sums of the policy's outputs, added one batch at a time: images, pi(x), the entropy
 * of pi(x), pi_s * p_{s,l} and pi_s * m_{s,l}. `report()` turns them into a PolicyReport at any
 * time, so a search loop can watch entropy and apply mass per op as it goes. The sums of added
 * batches stay on the device until they are read (by `images` or `report()`, one host read),
 * which is also when labels outside the classes and outputs that are not finite are refused.
 */
export class PolicyStatistics {
  readonly searchSpace: SearchSpace;
  readonly classes: readonly string[];
  // Per class, one row of `width` sums: count, entropy, pi [S], pi*p [S, 2], pi*m [S, 2], pi*width [S, 2].
  readonly #sums: Float64Array;
  readonly #width: number;
  // Sums of batches added since the last read, [K, width] float64 on their device, and their images.
  #pending: Tensor | undefined;
  #pendingImages = 0;
  // Whether the outputs added had magnitude ranges (widths).
  #ranges: boolean | undefined;

  constructor(searchSpace: SearchSpace, classes: readonly string[]) {
    validateSearchSpace(searchSpace);
    if (!Array.isArray(classes) || classes.length === 0)
      throw new TypeError('PolicyStatistics: classes must be a non-empty array of names');
    this.searchSpace = searchSpace;
    this.classes = [...classes];
    this.#width = 2 + 7 * searchSpace.subPolicies.length;
    this.#sums = new Float64Array(this.classes.length * this.#width);
  }

  /** Images added so far. */
  get images(): number {
    this.#read();
    let total = 0;
    for (let k = 0; k < this.classes.length; k++) total += this.#sums[k * this.#width];
    return total;
  }

  /** Forgets everything added. */
  reset(): void {
    this.#pending?.dispose();
    this.#pending = undefined;
    this.#pendingImages = 0;
    this.#sums.fill(0);
    this.#ranges = undefined;
  }

  /** Frees the sums not read yet (they are read and freed by `images` and `report()` too). */
  dispose(): void {
    this.#pending?.dispose();
    this.#pending = undefined;
    this.#pendingImages = 0;
  }

  /** Adds the pending sums to the host's, checking them. */
  #read(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    const expected = this.#pendingImages;
    this.#pending = undefined;
    this.#pendingImages = 0;
    const where = 'PolicyStatistics';
    const K = this.classes.length;
    const sums = pending.data() as Float64Array;
    pending.dispose();
    let counted = 0;
    for (let k = 0; k < K; k++) counted += sums[k * this.#width];
    if (counted !== expected)
      throw new RangeError(`${where}: ${expected - counted} of the ${expected} labels added are outside 0..${K - 1}`);
    if (!sums.every(Number.isFinite)) throw new RangeError(`${where}: the policy's outputs added are not all finite`);
    for (let i = 0; i < sums.length; i++) this.#sums[i] += sums[i];
  }

  /** Adds one batch: the policy's outputs for it and the images' class indices (int [B]). */
  add(outputs: PolicyOutput, labels: Tensor): void {
    const where = 'PolicyStatistics.add';
    const S = this.searchSpace.subPolicies.length;
    const K = this.classes.length;
    const { logits, p, m, width } = outputs ?? ({} as PolicyOutput);
    if (!(labels instanceof Tensor) || labels.ndim !== 1)
      throw new TypeError(`${where}: labels must be a [B] tensor of class indices, got ${shapeText(labels)}`);
    const B = labels.shape[0];
    if (!(logits instanceof Tensor) || logits.shape.join() !== [B, S].join())
      throw new RangeError(
        `${where}: logits are ${shapeText(logits)}, expected [${B}, ${S}] (${B} labels, ${S} sub-policies)`,
      );
    for (const [name, value] of [['p', p], ['m', m], ...(width === undefined ? [] : [['width', width]])] as const) {
      if (!(value instanceof Tensor) || value.shape.join() !== [B, S, 2].join())
        throw new RangeError(`${where}: ${name} is ${shapeText(value)}, expected [${B}, ${S}, 2]`);
    }
    const ranges = width !== undefined;
    if (this.#ranges !== undefined && this.#ranges !== ranges)
      throw new RangeError(`${where}: outputs with and without magnitude ranges (widths) cannot be mixed`);
    const sums = noGrad(() =>
      tidy(() => {
        const alpha = logits.toDtype('float64');
        const pi = alpha.softmax(1);
        const entropies = pi.mul(alpha.logSoftmax(1)).sum(1, true).neg();
        const weighted = (values: Tensor) =>
          pi
            .unsqueeze(2)
            .mul(values.toDtype('float64'))
            .reshape([B, 2 * S]);
        // Labels outside 0..K-1 match no column: the count check below catches them.
        const member = labels
          .unsqueeze(1)
          .eq(arange(0, K, 1, { dtype: labels.dtype, device: labels.device }))
          .toDtype('float64');
        const rows = cat(
          [
            ones([B, 1], { dtype: 'float64', device: pi.device }),
            entropies,
            pi,
            weighted(p),
            weighted(m),
            width === undefined ? zeros([B, 2 * S], { dtype: 'float64', device: pi.device }) : weighted(width),
          ],
          1,
        );
        const batchSums = member.transpose(0, 1).matmul(rows);
        return keep(this.#pending === undefined ? batchSums : this.#pending.add(batchSums));
      }),
    );
    this.#pending?.dispose();
    this.#pending = sums;
    this.#pendingImages += B;
    this.#ranges = ranges;
  }

  /** The statistics of everything added so far; `top` sub-policies per group (default 5). */
  report(options: { top?: number; dataset?: string; policy?: Record<string, unknown> } = {}): PolicyReport {
    const { top: count, dataset, policy } = optionsObject(options, 'PolicyStatistics.report');
    const top = positiveInteger(count ?? 5, 'top', 'PolicyStatistics.report');
    this.#read();
    const K = this.classes.length;
    const counts = Array.from({ length: K }, (_, k) => this.#sums[k * this.#width]);
    const total = new Float64Array(this.#width);
    for (let k = 0; k < K; k++) for (let i = 0; i < this.#width; i++) total[i] += this.#sums[k * this.#width + i];
    if (total[0] === 0) throw new RangeError('PolicyStatistics.report: no images have been added');
    const perClass = counts.flatMap((count, k) =>
      count > 0
        ? [
            {
              ...this.#group(this.#sums.subarray(k * this.#width, (k + 1) * this.#width), this.classes[k], top),
              label: k,
            },
          ]
        : [],
    );
    const matrix = perClass.map(() => new Array<number>(perClass.length).fill(0));
    perClass.forEach((a, i) =>
      perClass.slice(0, i).forEach((b, j) => (matrix[i][j] = matrix[j][i] = jensenShannon(a.meanPi, b.meanPi))),
    );
    const offDiagonal = matrix.flatMap((row, i) => row.filter((_, j) => j !== i));
    const S = this.searchSpace.subPolicies.length;
    return {
      kind: POLICY_REPORT_KIND,
      version: POLICY_REPORT_VERSION,
      ...(dataset === undefined ? {} : { dataset }),
      ...(policy === undefined ? {} : { policy }),
      images: total[0],
      classes: [...this.classes],
      counts,
      searchSpace: {
        ops: this.searchSpace.ops.map((op) => op.name),
        ranges: this.searchSpace.ops.map((op) => (op.range === null ? null : [op.range[0], op.range[1]])),
        subPolicies: this.searchSpace.subPolicies.map((_, s) => subPolicyName(this.searchSpace, s)),
        maxEntropy: Math.log(S),
        identityAt: this.searchSpace.ops.map((op) => (op.range === null ? null : (op.identityAt ?? null))),
      },
      magnitudes: this.#ranges === true ? 'range' : 'point',
      perClass,
      overall: this.#group(total, 'all', top),
      distance: {
        classes: perClass.map((group) => group.name),
        matrix,
        meanOffDiagonal: offDiagonal.length === 0 ? null : offDiagonal.reduce((a, b) => a + b, 0) / offDiagonal.length,
      },
    };
  }

  /** The statistics of one row of sums (a class, or all images). */
  #group(row: Float64Array, name: string, top: number): PolicyGroupStatistics {
    const space = this.searchSpace;
    const S = space.subPolicies.length;
    const count = row[0];
    const meanPi = Array.from(row.subarray(2, 2 + S), (sum) => sum / count);
    const applied = row.subarray(2 + S, 2 + 3 * S);
    const magnitude = row.subarray(2 + 3 * S, 2 + 5 * S);
    const widths = row.subarray(2 + 5 * S, 2 + 7 * S);
    const ops = space.ops.map((op) => ({
      name: op.name,
      selected: 0,
      applyMass: 0,
      magnitudeMass: 0,
      widthMass: 0,
      magnitude: op.range !== null,
    }));
    space.subPolicies.forEach((pair, s) =>
      pair.forEach((o, slot) => {
        ops[o].selected += meanPi[s];
        ops[o].applyMass += applied[2 * s + slot] / count;
        ops[o].magnitudeMass += magnitude[2 * s + slot] / count;
        ops[o].widthMass += widths[2 * s + slot] / count;
      }),
    );
    const ranked = meanPi
      .map((probability, index) => ({ index, name: subPolicyName(space, index), probability }))
      .sort((a, b) => b.probability - a.probability || a.index - b.index);
    return {
      name,
      count,
      meanPi,
      top: ranked.slice(0, top),
      meanEntropy: row[1] / count,
      entropyOfMean: entropy(meanPi),
      ops: ops.map(({ name: opName, selected, applyMass, magnitudeMass, widthMass, magnitude }) => ({
        name: opName,
        selected,
        applyMass,
        meanP: selected > 0 ? applyMass / selected : null,
        meanM: selected > 0 && magnitude ? magnitudeMass / selected : null,
        meanWidth: selected > 0 && this.#ranges === true ? widthMass / selected : null,
      })),
    };
  }
}

export interface PolicyReportOptions {
  /** A policy network, a loaded policy file, or any PolicySource. */
  policy: PolicyNetwork | LoadedPolicy | PolicySource;
  data: ImageDataset;
  /** Default 256. */
  batchSize?: number;
  /** Where the batches go; default the policy network's device, or 'cpu'. */
  device?: Device;
  /** Sub-policies listed per class (default 5; all of them when the search space has fewer). */
  top?: number;
  /** Stops before the next batch; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  onProgress?: (progress: { images: number; total: number }) => void;
}

/** The PolicySource inside what the user passed, and the network to put in eval mode, if any. */
export function resolvePolicy(policy: PolicyReportOptions['policy']): {
  source: PolicySource;
  network?: PolicyNetwork;
  provenance?: Record<string, unknown>;
} {
  if (policy instanceof PolicyNetwork) return { source: policy, network: policy };
  const loaded = policy as Partial<LoadedPolicy>;
  if (loaded?.network instanceof PolicyNetwork)
    return {
      source: loaded.network,
      network: loaded.network,
      provenance: loaded.provenance && { ...loaded.provenance },
    };
  const source = policy as Partial<PolicySource>;
  if (typeof source?.forward === 'function' && source.searchSpace !== undefined)
    return { source: source as PolicySource };
  throw new TypeError(
    'policyReport: policy must be a PolicyNetwork, a loaded policy, or { searchSpace, forward(images) -> { ' +
      'logits, p, m } }',
  );
}

/**
 * Runs a policy over a dataset (evaluation mode, no gradients, in batches, yielding to the
 * event loop between them) and reports what it does per class: mean pi(x) and its top
 * sub-policies, entropies, per-op apply mass and mean p and m, and the distances between classes.
 */
export async function policyReport(options: PolicyReportOptions): Promise<PolicyReport> {
  const where = 'policyReport';
  const { data, signal, onProgress } = requiredOptions(options, where, '{ policy, data }');
  const batchSize = positiveInteger(options.batchSize ?? 256, 'batchSize', where);
  const top = positiveInteger(options.top ?? 5, 'top', where);
  const { source, network, provenance } = resolvePolicy(options.policy);
  validateSearchSpace(source.searchSpace);
  checkDataset(data, where);
  if (data.count === 0) throw new RangeError(`${where}: the dataset ${data.name} has no images`);
  classCounts(data); // every label names a class
  const channels = network?.network.config.inChannels;
  if (channels !== undefined && channels !== data.shape[0]) {
    throw new RangeError(
      `${where}: the policy network takes ${channels}-channel images, but ${data.name} has ` +
        `${data.shape[0]}-channel images`,
    );
  }
  const device = options.device ?? network?.network.device ?? 'cpu';
  const statistics = new PolicyStatistics(source.searchSpace, data.classes);
  const wasTraining = network?.network.training ?? false;
  network?.eval();
  try {
    for await (const batch of batchesAsync(data, { batchSize, shuffle: false, device })) {
      try {
        signal?.throwIfAborted();
        tidy(() =>
          statistics.add(
            noGrad(() => source.forward(batch.images)),
            batch.labels,
          ),
        );
      } finally {
        dispose(batch);
      }
      onProgress?.({ images: statistics.images, total: data.count });
      await yieldToEventLoop();
    }
  } finally {
    if (wasTraining) network?.train(true);
  }
  return statistics.report({ top, dataset: data.name, policy: provenance });
}
