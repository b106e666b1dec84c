// Evaluation of a classifier on a dataset: accuracy and mean loss, in evaluation mode, without
// augmentation; each batch's forward pass runs on the addon's step thread, and the sums stay on
// the device until the end (one host read).
import { batchesAsync } from '../data/batches.js';
import { checkDataset, type ImageDataset } from '../data/dataset.js';
import { stack, zeros } from '../engine/creation.js';
import { Module } from '../engine/models.js';
import { classifierStep } from '../engine/steps.js';
import { dispose, noGrad, tidy, type Device } from '../engine/tensor.js';
import { describe, requiredOptions } from '../util/describe.js';
import { yieldToEventLoop } from '../util/event-loop.js';
import type { DistributedOptions } from '../distributed/environment.js';
import type { ProcessGroup } from '../distributed/group.js';
import { evaluationShard } from '../distributed/sampler.js';
import { runGroup } from './ranks.js';

/**
 * Accuracy and mean loss of a model on a dataset (evaluation mode, no augmentation). As one rank
 * of a distributed run (`distributed`, or torchrun's variables), each rank evaluates its share of
 * the images and the counts are summed, so that every rank gets the figures of the whole dataset.
 */
export async function evaluate(options: {
  model: Module;
  data: ImageDataset;
  batchSize?: number;
  device?: Device;
  signal?: AbortSignal;
  /** The ranks that evaluate together (a process group, or options to join one); see RunOptions.distributed. */
  distributed?: boolean | DistributedOptions | ProcessGroup;
}): Promise<{ accuracy: number; loss: number; count: number }> {
  const { model, data, batchSize = 256, signal, device: on } = requiredOptions(options, 'evaluate', '{ model, data }');
  if (!(model instanceof Module))
    throw new TypeError(
      `evaluate: options.model must be a Module (from wideResNet or loadTrainedModel), got ${describe(model)}`,
    );
  checkDataset(data, 'evaluate');
  const device = on ?? model.device;
  // Sums on the device, read once at the end; the next batch is made while a batch runs.
  const { group, owned } = await runGroup(options.distributed);
  try {
    return await evaluateShard(model, data, batchSize, device, signal, group);
  } finally {
    if (owned) await group.destroy();
  }
}

/** This rank's share of an evaluation, its counts summed over the ranks. */
async function evaluateShard(
  model: Module,
  data: ImageDataset,
  batchSize: number,
  device: Device,
  signal: AbortSignal | undefined,
  group: ProcessGroup,
): Promise<{ accuracy: number; loss: number; count: number }> {
  const wasTraining = model.training;
  model.eval();
  const order = evaluationShard(data.count, group.rank, group.worldSize);
  const upcoming = batchesAsync(data, { batchSize, order, device });
  let sums = zeros([2], { dtype: 'float64', device });
  let count = 0;
  let next = upcoming.next();
  try {
    for (let current = await next; !current.done; current = await next) {
      const batch = current.value;
      const running = noGrad(() => classifierStep(model, batch.images, batch.labels, { backward: false }));
      // The next batch is made (or read) while this one runs.
      next = upcoming.next();
      next.catch(() => {});
      try {
        const { loss, correct } = await running;
        const size = batch.indices.length;
        const added = tidy(() => sums.add(stack([loss.toDtype('float64').mul(size), correct.toDtype('float64')])));
        dispose([loss, correct, sums]);
        sums = added;
        count += size;
      } finally {
        dispose(batch);
      }
      if (signal?.aborted) break;
      await yieldToEventLoop();
    }
  } catch (error) {
    sums.dispose();
    throw error;
  } finally {
    const left = await next.catch(() => undefined);
    if (left !== undefined && !left.done) dispose(left.value);
    await upcoming.return();
    model.train(wasTraining);
  }
  const local = sums.data() as Float64Array;
  sums.dispose();
  const [lossSum, correct, total] = await group.sum([local[0], local[1], count]);
  return { accuracy: total === 0 ? 0 : correct / total, loss: total === 0 ? 0 : lossSum / total, count: total };
}
