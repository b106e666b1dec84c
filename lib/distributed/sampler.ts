// Sharding a dataset among the ranks with torch.utils.data.DistributedSampler's semantics, and
// the per-rank seeds of augmentation and sampling. Every rank computes the same epoch order
// from (seed, epoch), pads it by repeating its start to a multiple of the world size (or drops
// the tail), and takes every worldSize-th entry from its rank on: the shards are disjoint, cover
// the dataset, and have equal lengths, so every rank runs the same number of steps. Evaluation
// shards are not padded, so that summed counts count each image once.
import { describe, requiredOptions } from '../util/describe.js';
import { epochOrder } from '../data/batches.js';
import { checkSeed } from '../util/checks.js';
import { seededRandom, STREAM } from '../data/random.js';

export interface ShardOptions {
  rank: number;
  worldSize: number;
  /** The order's seed, the same on every rank (default 0). */
  seed?: number;
  /** Which epoch's order (default 0). */
  epoch?: number;
  /** Shuffle (default true); false shards the dataset's own order. */
  shuffle?: boolean;
  /** Drop the tail that does not divide among the ranks instead of padding (default false). */
  dropLast?: boolean;
}

function checkWorld(rank: unknown, worldSize: unknown, where: string): void {
  if (typeof worldSize !== 'number' || !Number.isInteger(worldSize) || worldSize < 1) {
    throw new RangeError(`${where}: worldSize must be a positive integer, got ${describe(worldSize)}`);
  }
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new RangeError(`${where}: rank must be an integer in 0..${worldSize - 1}, got ${describe(rank)}`);
  }
}

/** How many images each rank gets of `count`: ceil(count / worldSize), or floor with dropLast. */
export function shardLength(count: number, worldSize: number, dropLast = false): number {
  if (!Number.isInteger(count) || count < 0)
    throw new RangeError(`shardLength: count must be a non-negative integer, got ${describe(count)}`);
  checkWorld(0, worldSize, 'shardLength');
  return dropLast ? Math.floor(count / worldSize) : Math.ceil(count / worldSize);
}

/**
 * The indices of rank `rank`'s shard of an epoch of `count` images, in the order it visits them
 * (DistributedSampler's `order[rank::worldSize]` of the padded order). With `subset(ds, indices)`
 * and `batches(..., { shuffle: false })` it gives the rank's batches.
 */
export function shardIndices(count: number, options: ShardOptions): Int32Array {
  const where = 'shardIndices';
  const {
    rank,
    worldSize,
    seed = 0,
    epoch = 0,
    shuffle = true,
    dropLast = false,
  } = requiredOptions(options, where, '{ rank, worldSize, ... }');
  checkWorld(rank, worldSize, where);
  checkSeed(seed, where);
  const length = shardLength(count, worldSize, dropLast);
  const order = epochOrder(count, { shuffle, seed, epoch });
  const shard = new Int32Array(length);
  // Padding repeats the order from its start, as often as needed (count may be below worldSize).
  for (let i = 0; i < length; i++) shard[i] = order[(rank + i * worldSize) % count];
  return shard;
}

/**
 * Rank `rank`'s share of an evaluation over `count` images: every worldSize-th image from its
 * rank on, in order, neither padded nor cut (shards differ in length by at most one), so that
 * the counts summed over the ranks (`ProcessGroup.sum`) count every image exactly once.
 */
export function evaluationShard(count: number, rank: number, worldSize: number): Int32Array {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`evaluationShard: count must be a non-negative integer, got ${describe(count)}`);
  }
  checkWorld(rank, worldSize, 'evaluationShard');
  const shard = new Int32Array(Math.max(0, Math.ceil((count - rank) / worldSize)));
  for (let i = 0; i < shard.length; i++) shard[i] = rank + i * worldSize;
  return shard;
}

/**
 * The seed of rank `rank` for what must differ between ranks (augmentation draws, policy
 * sampling): rank 0 keeps `seed`, so a run of one rank draws what an undistributed run draws;
 * every other rank gets an independent seed derived from (seed, rank).
 */
export function rankSeed(seed: number, rank: number): number {
  checkSeed(seed, 'rankSeed');
  if (!Number.isInteger(rank) || rank < 0)
    throw new RangeError(`rankSeed: rank must be a non-negative integer, got ${describe(rank)}`);
  if (rank === 0) return seed;
  const random = seededRandom(seed, STREAM.rank, rank);
  return Math.floor(random() * Number.MAX_SAFE_INTEGER);
}
