// Evaluation of a classifier on a dataset: accuracy and mean loss (and, when asked, the confusion
// matrix and the accuracy of each class), in evaluation mode, without augmentation; each batch's
// forward pass runs on the addon's step thread, and the sums stay on the device until the end
// (one host read). Progress comes per batch; an AbortSignal stops it between batches.
import { batchesAsync } from '../data/batches.js';
import { checkDataset, type ImageDataset } from '../data/dataset.js';
import { stack, zeros } from '../engine/creation.js';
import { Module, crossEntropy } from '../engine/models.js';
import { classifierStep } from '../engine/steps.js';
import { Tensor, dispose, noGrad, tidy, type Device } from '../engine/tensor.js';
import { describe, requiredOptions } from '../util/describe.js';
import { yieldToEventLoop } from '../util/event-loop.js';
import type { DistributedOptions } from '../distributed/environment.js';
import type { ProcessGroup } from '../distributed/group.js';
import { evaluationShard } from '../distributed/sampler.js';
import { onRunGroup } from './ranks.js';

export interface EvaluateOptions {
  model: Module;
  data: ImageDataset;
  batchSize?: number;
  device?: Device;
  /** Stops between batches; the result then covers the images done and says `aborted`. */
  signal?: AbortSignal;
  /** After every batch: images done, of how many (this rank's share in a distributed run). */
  onProgress?: (progress: { images: number; total: number }) => void;
  /** Also count the confusion matrix and each class's accuracy (a forward pass and a few small ops more per batch). */
  perClass?: boolean;
  /** The ranks that evaluate together (a process group, or options to join one); see RunOptions.distributed. */
  distributed?: boolean | DistributedOptions | ProcessGroup;
}

export interface EvaluateResult {
  accuracy: number;
  loss: number;
  /** Images evaluated (fewer than the data's when aborted). */
  count: number;
  aborted: boolean;
  /** With perClass: confusion[true][predicted] counts, and per class its images and accuracy (null without images). */
  confusion?: number[][];
  perClass?: { name: string; images: number; accuracy: number | null }[];
}

/**
 * Accuracy and mean loss of a model on a dataset (evaluation mode, no augmentation). As one rank
 * of a distributed run (`distributed`, or torchrun's variables), each rank evaluates its share of
 * the images and the counts are summed, so that every rank gets the figures of the whole dataset.
 */
export async function evaluate(options: EvaluateOptions): Promise<EvaluateResult> {
  const { model, data } = requiredOptions(options, 'evaluate', '{ model, data }');
  if (!(model instanceof Module))
    throw new TypeError(
      `evaluate: options.model must be a Module (from wideResNet or loadTrainedModel), got ${describe(model)}`,
    );
  checkDataset(data, 'evaluate');
  return onRunGroup(options.distributed, (group) => evaluateShard(options, group));
}

/** This rank's share of an evaluation, its counts summed over the ranks. */
async function evaluateShard(options: EvaluateOptions, group: ProcessGroup): Promise<EvaluateResult> {
  const { model, data, batchSize = 256, signal, onProgress, perClass = false } = options;
  const device = options.device ?? model.device;
  const classes = data.classes.length;
  const wasTraining = model.training;
  model.eval();
  const order = evaluationShard(data.count, group.rank, group.worldSize);
  const upcoming = batchesAsync(data, { batchSize, order, device });
  // Sums on the device, read once at the end; the next batch is made while a batch runs.
  let sums = zeros([2], { dtype: 'float64', device });
  let confusion = perClass ? zeros([classes, classes], { dtype: 'float64', device }) : undefined;
  let count = 0;
  let aborted = false;
  let next = upcoming.next();
  try {
    for (let current = await next; !current.done; current = await next) {
      const batch = current.value;
      const running = perClass
        ? noGrad(() => model.forwardAsync(batch.images))
        : noGrad(() => classifierStep(model, batch.images, batch.labels, { backward: false }));
      // The next batch is made (or read) while this one runs.
      next = upcoming.next();
      next.catch(() => {});
      try {
        const outcome = await running;
        const size = batch.indices.length;
        if (outcome instanceof Tensor) {
          // Logits: the loss, the hits and the confusion counts of the batch (labels^T x predictions as one-hots).
          const [added, counted] = tidy(() => {
            const predicted = outcome.argmax(1);
            const loss = noGrad(() => crossEntropy(outcome, batch.labels));
            const correct = predicted.eq(batch.labels).toDtype('float64').sum();
            const table = batch.labels
              .oneHot(classes)
              .toDtype('float64')
              .transpose(0, 1)
              .matmul(predicted.oneHot(classes).toDtype('float64'));
            return [sums.add(stack([loss.toDtype('float64').mul(size), correct])), confusion!.add(table)];
          });
          dispose([outcome, sums, confusion]);
          [sums, confusion] = [added, counted];
        } else {
          const { loss, correct } = outcome;
          const added = tidy(() => sums.add(stack([loss.toDtype('float64').mul(size), correct.toDtype('float64')])));
          dispose([loss, correct, sums]);
          sums = added;
        }
        count += size;
      } finally {
        dispose(batch);
      }
      onProgress?.({ images: count, total: order.length });
      if (signal?.aborted && count < order.length) {
        aborted = true;
        break;
      }
      await yieldToEventLoop();
    }
  } catch (error) {
    dispose([sums, confusion]);
    throw error;
  } finally {
    const left = await next.catch(() => undefined);
    if (left !== undefined && !left.done) dispose(left.value);
    await upcoming.return();
    model.train(wasTraining);
  }
  const local = sums.data() as Float64Array;
  sums.dispose();
  const table = confusion === undefined ? [] : (confusion.toArray() as number[][]).flat();
  confusion?.dispose();
  // Summed over the ranks; a rank stopped early makes the whole evaluation stopped.
  const [lossSum, correct, total, stopped, ...counts] = await group.sum([
    local[0],
    local[1],
    count,
    aborted ? 1 : 0,
    ...table,
  ]);
  const result: EvaluateResult = {
    accuracy: total === 0 ? 0 : correct / total,
    loss: total === 0 ? 0 : lossSum / total,
    count: total,
    aborted: stopped > 0,
  };
  if (perClass) {
    const matrix = Array.from({ length: classes }, (_, i) =>
      counts.slice(i * classes, (i + 1) * classes).map(Math.round),
    );
    result.confusion = matrix;
    result.perClass = matrix.map((row, k) => {
      const images = row.reduce((a, b) => a + b, 0);
      return { name: data.classes[k], images, accuracy: images === 0 ? null : row[k] / images };
    });
  }
  return result;
}
