// Evaluation of a classifier on a dataset: accuracy and mean loss, in evaluation mode, without
// augmentation, yielding to the event loop between batches.
import { batches } from '../data/batches.js';
import { checkDataset, type ImageDataset } from '../data/dataset.js';
import { Module, crossEntropy } from '../engine/models.js';
import { dispose, noGrad, tidy, type Device } from '../engine/tensor.js';
import { describe, requiredOptions } from '../util/describe.js';
import { yieldToEventLoop } from '../util/event-loop.js';

/** Accuracy and mean loss of a model on a dataset (evaluation mode, no augmentation). */
export async function evaluate(options: {
  model: Module;
  data: ImageDataset;
  batchSize?: number;
  device?: Device;
  signal?: AbortSignal;
}): Promise<{ accuracy: number; loss: number; count: number }> {
  const { model, data, batchSize = 256, signal, device: on } = requiredOptions(options, 'evaluate', '{ model, data }');
  if (!(model instanceof Module))
    throw new TypeError(
      `evaluate: options.model must be a Module (from wideResNet or loadTrainedModel), got ${describe(model)}`,
    );
  checkDataset(data, 'evaluate');
  const device = on ?? model.device;
  const wasTraining = model.training;
  model.eval();
  let correct = 0;
  let lossSum = 0;
  let count = 0;
  try {
    for (const batch of batches(data, { batchSize, shuffle: false, device })) {
      try {
        const [right, loss] = noGrad(() =>
          tidy(() => {
            const logits = model.forward(batch.images);
            return [logits.argmax(1).eq(batch.labels).sum().item(), crossEntropy(logits, batch.labels).item()];
          }),
        );
        correct += right;
        lossSum += loss * batch.indices.length;
        count += batch.indices.length;
      } finally {
        dispose(batch);
      }
      if (signal?.aborted) break;
      await yieldToEventLoop();
    }
  } finally {
    model.train(wasTraining);
  }
  return { accuracy: count === 0 ? 0 : correct / count, loss: count === 0 ? 0 : lossSum / count, count };
}
