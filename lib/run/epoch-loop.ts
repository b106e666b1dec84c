// The epoch loop that `train` and `search` share: batches in the seeded order of each epoch
// (from where a resumed run stands), the cosine learning rate per step, a stop after the current
// step on abort (saving first), the divergence check, running loss and accuracy, progress events,
// a turn for the event loop after every step, and per epoch a line of metrics and a save.
// What a step does and what an epoch adds (an evaluation, the collapse monitor) are the
// caller's.
import { appendFile } from 'node:fs/promises';

import { batchCount, batches, type Batch } from '../data/batches.js';
import type { ImageDataset } from '../data/dataset.js';
import { cosineLr, type Optimizer } from '../engine/optim.js';
import type { Execution } from '../engine/models.js';
import { dispose, type Device } from '../engine/tensor.js';
import { yieldToEventLoop } from '../util/event-loop.js';
import { divergedError } from './run-state.js';

/** Where a run stands: the epoch, the batch of that epoch and the step overall. */
export interface LoopPosition {
  epoch: number;
  batch: number;
  step: number;
}

/** What a step reports: the loss of its batch (a non-finite one stops the run) and how many it got right. */
export interface StepOutcome {
  loss: number;
  correct: number;
}

/** The options every run (train, search) takes beside its own; P is its progress event. */
export interface RunOptions<P> {
  /** Seeds the weights, the batch order and every draw. Default 0. */
  seed?: number;
  device?: Device;
  /**
   * Memory format and precision of the networks (see `Execution`); default NCHW float32. They
   * change speed and rounding, not what is saved.
   */
  execution?: Execution;
  /** Where the run's checkpoints and metrics go; without it nothing is written. */
  outDir?: string;
  /** Continue from the run's last checkpoint in outDir when it exists. */
  resume?: boolean;
  /** Stops the run after its current step (it saves first). */
  signal?: AbortSignal;
  onProgress?: (progress: P) => void;
}

/** Progress of a run, after every step and at the end of every epoch. */
export interface LoopProgress {
  phase: 'step' | 'epoch';
  /** Epochs done (at 'epoch': including this one). */
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  /** The step's loss ('step'), or the epoch's mean ('epoch'). */
  loss: number;
  /** Accuracy over the epoch so far, on the images the step trained on. */
  accuracy: number;
  lr: number;
  imagesPerSecond: number;
}

/** An epoch's figures, handed to `endEpoch` after the position has moved to the next epoch. */
export interface EpochSummary {
  /** The mean loss and accuracy over the epoch's steps, null when it had none (a resumed, finished epoch). */
  loss: number | null;
  accuracy: number | null;
  /** The learning rate after the epoch's last step. */
  lr: number;
  images: number;
  /** When the epoch started (performance.now()) and how long its steps took, in seconds. */
  started: number;
  seconds: number;
}

/** What an epoch adds: its line of metrics (beside epoch and step) and fields of its progress event. */
export interface EpochEnd<E> {
  record: Record<string, unknown>;
  progress: E;
}

export interface EpochLoopOptions<E> {
  /** The function whose errors these are ('train', 'search'). */
  where: string;
  data: ImageDataset;
  batchSize: number;
  /** Seeds the batch order of every epoch. */
  seed: number;
  device: Device;
  epochs: number;
  /** Cosine from lr to lrFloor over all steps, set on these optimisers before each step. */
  lr: number;
  lrFloor?: number;
  optimizers: Optimizer[];
  signal?: AbortSignal;
  /** One JSON line per epoch goes here when given. */
  metricsFile?: string;
  /** The checkpoint a diverged run names as the last good one. */
  checkpoint?: string;
  /** Saves the run at the loop's position: when aborted, and at the end of every epoch. */
  save(): Promise<void>;
  /** One training step on a batch (the loop disposes the batch afterwards). */
  step(batch: Batch, lr: number): StepOutcome;
  /** The end of an epoch: evaluations, monitors, extra checkpoints; its record and progress fields. */
  endEpoch(summary: EpochSummary): Promise<EpochEnd<E>>;
  onProgress?(progress: LoopProgress & Partial<E>): void;
}

/**
 * Runs the epochs from `position` on. `position` is where the run stands now: the loop moves it
 * as steps finish, so that a save at any time records the right place, and a caller may add
 * fields of its own to it (the loop keeps them).
 */
export class EpochLoop<P extends LoopPosition, E extends object = object> {
  position: P;
  readonly stepsPerEpoch: number;
  readonly steps: number;
  readonly #options: EpochLoopOptions<E>;

  constructor(options: EpochLoopOptions<E>, position: P) {
    this.#options = options;
    this.position = position;
    this.stepsPerEpoch = batchCount(options.data.count, options.batchSize);
    this.steps = options.epochs * this.stepsPerEpoch;
  }

  #lr(step: number): number {
    return cosineLr(Math.min(step, this.steps), this.steps, this.#options.lr, this.#options.lrFloor ?? 0);
  }

  /** Runs to the last epoch, or until the signal aborts (after saving); says which. */
  async run(): Promise<{ aborted: boolean }> {
    const o = this.#options;
    while (this.position.epoch < o.epochs) {
      const started = performance.now();
      let seen = 0;
      let correct = 0;
      let lossSum = 0;
      const order = {
        batchSize: o.batchSize,
        seed: o.seed,
        epoch: this.position.epoch,
        startBatch: this.position.batch,
        device: o.device,
      };
      for (const batch of batches(o.data, order)) {
        if (o.signal?.aborted) {
          dispose(batch);
          await o.save();
          return { aborted: true };
        }
        const lr = this.#lr(this.position.step);
        for (const optimizer of o.optimizers) optimizer.lr = lr;
        const size = batch.indices.length;
        let outcome: StepOutcome;
        try {
          outcome = o.step(batch, lr);
        } finally {
          dispose(batch);
        }
        if (!Number.isFinite(outcome.loss))
          throw await divergedError(o.where, outcome.loss, this.position, o.checkpoint);
        seen += size;
        correct += outcome.correct;
        lossSum += outcome.loss * size;
        this.position = { ...this.position, batch: this.position.batch + 1, step: this.position.step + 1 };
        o.onProgress?.({
          phase: 'step',
          epoch: this.position.epoch,
          epochs: o.epochs,
          step: this.position.step,
          steps: this.steps,
          stepInEpoch: this.position.batch,
          stepsPerEpoch: this.stepsPerEpoch,
          loss: outcome.loss,
          accuracy: correct / seen,
          lr,
          imagesPerSecond: seen / ((performance.now() - started) / 1000),
        } as LoopProgress & Partial<E>);
        await yieldToEventLoop();
      }
      const seconds = (performance.now() - started) / 1000;
      this.position = { ...this.position, epoch: this.position.epoch + 1, batch: 0 };
      const summary: EpochSummary = {
        loss: seen === 0 ? null : lossSum / seen,
        accuracy: seen === 0 ? null : correct / seen,
        lr: this.#lr(this.position.step),
        images: seen,
        started,
        seconds,
      };
      const end = await o.endEpoch(summary);
      if (o.metricsFile !== undefined) {
        await appendFile(
          o.metricsFile,
          JSON.stringify({ epoch: this.position.epoch, step: this.position.step, ...end.record }) + '\n',
        );
      }
      await o.save();
      o.onProgress?.({
        phase: 'epoch',
        epoch: this.position.epoch,
        epochs: o.epochs,
        step: this.position.step,
        steps: this.steps,
        stepInEpoch: this.stepsPerEpoch,
        stepsPerEpoch: this.stepsPerEpoch,
        loss: summary.loss ?? Number.NaN,
        accuracy: summary.accuracy ?? Number.NaN,
        lr: summary.lr,
        imagesPerSecond: seen / seconds,
        ...end.progress,
      });
    }
    return { aborted: false };
  }
}
