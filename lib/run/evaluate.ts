// Evaluation of a classifier on a dataset: accuracy and mean loss (and, when asked, the confusion
// matrix and the accuracy of each class), in evaluation mode, without augmentation; each batch's
// forward pass runs on the addon's step thread, and the sums stay on the device until the end
// (one host read). Progress comes per batch; an AbortSignal stops it between batches.
import { batches } from '../data/batches.js';
import { checkDataset, type ImageDataset } from '../data/dataset.js';
import { stack, zeros } from '../engine/creation.js';
import { Module, crossEntropy } from '../engine/models.js';
import { classifierStep } from '../engine/steps.js';
import { Tensor, dispose, noGrad, tidy, type Device } from '../engine/tensor.js';
import { describe, requiredOptions } from '../util/describe.js';
import { yieldToEventLoop } from '../util/event-loop.js';

export interface EvaluateOptions {
  model: Module;
  data: ImageDataset;
  batchSize?: number;
  device?: Device;
  /** Stops between batches; the result then covers the images done and says `aborted`. */
  signal?: AbortSignal;
  /** After every batch: images done, of how many. */
  onProgress?: (progress: { images: number; total: number }) => void;
  /** Also count the confusion matrix and each class's accuracy (a forward pass and a few small ops more per batch). */
  perClass?: boolean;
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

/** Accuracy and mean loss of a model on a dataset (evaluation mode, no augmentation). */
export async function evaluate(options: EvaluateOptions): Promise<EvaluateResult> {
  const {
    model,
    data,
    batchSize = 256,
    signal,
    device: on,
    onProgress,
    perClass = false,
  } = requiredOptions(options, 'evaluate', '{ model, data }');
  if (!(model instanceof Module))
    throw new TypeError(
      `evaluate: options.model must be a Module (from wideResNet or loadTrainedModel), got ${describe(model)}`,
    );
  checkDataset(data, 'evaluate');
  const device = on ?? model.device;
  const classes = data.classes.length;
  const wasTraining = model.training;
  model.eval();
  // Sums on the device, read once at the end; the next batch is made while a batch runs.
  const upcoming = batches(data, { batchSize, shuffle: false, device })[Symbol.iterator]();
  let sums = zeros([2], { dtype: 'float64', device });
  let confusion = perClass ? zeros([classes, classes], { dtype: 'float64', device }) : undefined;
  let count = 0;
  let aborted = false;
  let next = upcoming.next();
  try {
    while (!next.done) {
      const batch = next.value;
      const running = perClass
        ? noGrad(() => model.forwardAsync(batch.images))
        : noGrad(() => classifierStep(model, batch.images, batch.labels, { backward: false }));
      next = upcoming.next();
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
      onProgress?.({ images: count, total: data.count });
      if (signal?.aborted && !next.done) {
        aborted = true;
        break;
      }
      await yieldToEventLoop();
    }
  } catch (error) {
    dispose([sums, confusion]);
    throw error;
  } finally {
    if (!next.done) dispose(next.value);
    upcoming.return?.();
    model.train(wasTraining);
  }
  const [lossSum, correct] = sums.data() as Float64Array;
  sums.dispose();
  const result: EvaluateResult = {
    accuracy: count === 0 ? 0 : correct / count,
    loss: count === 0 ? 0 : lossSum / count,
    count,
    aborted,
  };
  if (confusion !== undefined) {
    const table = (confusion.toArray() as number[][]).map((row) => row.map(Math.round));
    confusion.dispose();
    result.confusion = table;
    result.perClass = table.map((row, k) => {
      const images = row.reduce((a, b) => a + b, 0);
      return { name: data.classes[k], images, accuracy: images === 0 ? null : row[k] / images };
    });
  }
  return result;
}
