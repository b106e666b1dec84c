// What a run does as one rank of several (data-parallel over lib/distributed): the group it
// joins, its own seed for augmentation and sampling, the same weights as rank 0's after it is
// built or resumed, and a resume that knows the world size it was saved with.
import { ProcessGroup, processGroupFor } from '../distributed/group.js';
import type { DistributedOptions } from '../distributed/environment.js';
import { rankSeed } from '../distributed/sampler.js';
import type { Module } from '../engine/models.js';
import { Generator } from '../engine/random.js';
import type { Device } from '../engine/tensor.js';

/** The group of a run's `distributed` option (a world of one without it), or a group given as it is. */
export async function runGroup(distributed: boolean | DistributedOptions | ProcessGroup | undefined): Promise<{
  group: ProcessGroup;
  owned: boolean;
}> {
  if (distributed instanceof ProcessGroup) return { group: distributed, owned: false };
  return { group: await processGroupFor(distributed), owned: true };
}

/** Runs `run` on the group of `distributed`, and leaves that group afterwards when it joined it itself. */
export async function onRunGroup<R>(
  distributed: boolean | DistributedOptions | ProcessGroup | undefined,
  run: (group: ProcessGroup) => Promise<R>,
): Promise<R> {
  const { group, owned } = await runGroup(distributed);
  try {
    return await run(group);
  } finally {
    if (owned) await group.destroy();
  }
}

/**
 * The generator of a rank's augmentation and sampling draws: the run's seed on rank 0 (so that a
 * world of one draws what an undistributed run draws), a seed of its own on every other rank.
 * `step` (a resumed run's position) gives the other ranks fresh draws after a resume: only rank
 * 0's generator state is in the checkpoint.
 */
export function rankGenerator(seed: number, group: ProcessGroup, device: Device, step = 0): Generator {
  return new Generator(group.rank === 0 ? seed : rankSeed(seed + step, group.rank), device);
}

/** Makes every rank's networks (parameters and buffers) rank 0's. */
export async function shareWeights(group: ProcessGroup, ...modules: Module[]): Promise<void> {
  for (const module of modules) await group.broadcastModule(module);
}

/**
 * Refuses to resume in the middle of an epoch with another number of ranks (the shards of the
 * epoch, and so its remaining batches, depend on it); at an epoch's start any world size works.
 */
export function checkResumedWorld(
  where: string,
  file: string,
  saved: unknown,
  group: ProcessGroup,
  position: { batch: number },
): void {
  const recorded = (saved as { worldSize?: unknown } | null)?.worldSize ?? 1;
  if (recorded !== group.worldSize && position.batch !== 0) {
    throw new Error(
      `${where}: ${file} was saved by ${String(recorded)} rank(s) in the middle of an epoch; resume it with ` +
        `${String(recorded)} rank(s) (this run has ${group.worldSize}), or from a checkpoint at an epoch's end`,
    );
  }
}
