// A classifier's loss step on the addon's step thread (native/nn/steps.cc): forward, per-image
// cross-entropy, backward and the optimiser's update in one asynchronous call, with its figures
// left on the device, so that a training loop neither blocks the event loop nor waits for the
// device every step.
import { Module } from './models.js';
import { native } from './native.js';
import type { Optimizer } from './optim.js';
import { Tensor, tensorHandle } from './tensor.js';
import { describe, optionsObject } from '../util/describe.js';

export interface ClassifierStepOptions {
  /** Backpropagate the mean loss (default true; false for evaluation). */
  backward?: boolean;
  /** Also return d loss / d images (the images taken as a leaf of their own). */
  inputGradient?: boolean;
  /** Also return the per-image losses [B]. */
  perImageLoss?: boolean;
  /** The optimiser whose gradients `zeroGrad` drops before the backward and which `step` applies after it. */
  optimizer?: Optimizer;
  zeroGrad?: boolean;
  /**
   * Update after the backward. On the CPU the update is skipped when the loss is not finite; on a
   * GPU it is not (checking would wait for the device): read the loss and stop the run instead.
   */
  step?: boolean;
}

/** A step's figures, on the images' device: read them when needed (each read is a host read). */
export interface ClassifierStepResult {
  /** The mean cross-entropy, a scalar. */
  loss: Tensor;
  /** How many images the argmax got right, an int64 scalar. */
  correct: Tensor;
  perImageLoss?: Tensor;
  inputGradient?: Tensor;
}

/**
 * Runs a classifier's loss step on the step thread: logits = model(images), cross-entropy against
 * `labels` (int64 [B]), and as asked the backward, the input gradient and the optimiser's update.
 * The model, the images, the labels and the optimiser are busy until the Promise settles.
 */
export async function classifierStep(
  model: Module,
  images: Tensor,
  labels: Tensor,
  options: ClassifierStepOptions = {},
): Promise<ClassifierStepResult> {
  if (!(model instanceof Module)) throw new TypeError(`classifierStep: model must be a Module, got ${describe(model)}`);
  const { optimizer, ...flags } = optionsObject(options, 'classifierStep');
  const result = await native.classifierStep(model.handle, tensorHandle(images), tensorHandle(labels), {
    ...flags,
    optimizer: optimizer?.handle,
  });
  return {
    loss: new Tensor(result.loss),
    correct: new Tensor(result.correct),
    perImageLoss: result.perImageLoss === undefined ? undefined : new Tensor(result.perImageLoss),
    inputGradient: result.inputGradient === undefined ? undefined : new Tensor(result.inputGradient),
  };
}
