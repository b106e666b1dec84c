// The epoch loop that `train` and `search` share: batches in the seeded order of each epoch
// (from where a resumed run stands), prefetched while the step before runs; the cosine learning
// rate per step; a stop after the current step on abort (saving first); the divergence check;
// running loss and accuracy; progress events; and per epoch a line of metrics and a save. What a
// step does and what an epoch adds (an evaluation, the collapse monitor) are the caller's.
//
// In a distributed run each rank runs its shard of every epoch (DistributedSampler's order),
// decisions that end a run (an abort, a loss that is not finite) are taken by all ranks together,
// the epoch's figures are summed over the ranks, and rank 0 alone writes the metrics.
//
// Steps are asynchronous and leave their loss and hit count on the device; the loop reads them
// every `syncEvery` steps (and before every save), in one host read, so that on a GPU a step
// never waits for the device. Every step still gets its progress event, with its own figures,
// when they are read; a loss that is not finite stops the run at that read, naming the step.
import { appendFile } from 'node:fs/promises';

import { batchCount, batchesAsync, type Batch } from '../data/batches.js';
import type { ImageDataset } from '../data/dataset.js';
import type { Execution } from '../engine/models.js';
import { stack } from '../engine/creation.js';
import { cosineLr, type Optimizer } from '../engine/optim.js';
import { dispose, tidy, type Device, type Tensor } from '../engine/tensor.js';
import type { DistributedOptions } from '../distributed/environment.js';
import type { ProcessGroup } from '../distributed/group.js';
import { shardIndices, shardLength } from '../distributed/sampler.js';
import { yieldToEventLoop } from '../util/event-loop.js';
import { divergedError } from './run-state.js';

/** Where a run stands: the epoch, the batch of that epoch and the step overall. */
export interface LoopPosition {
  epoch: number;
  batch: number;
  step: number;
}

/**
 * What a step reports, on the device: the mean loss of its batch (a non-finite one stops the
 * run) and how many it got right. The loop reads them later and disposes them.
 */
export interface StepOutcome {
  loss: Tensor;
  correct: Tensor;
}

/** Host reads of the step figures: every step on the CPU (they cost nothing there), every 25 on a GPU. */
export function defaultSyncEvery(device: Device): number {
  return device.startsWith('cuda') ? 25 : 1;
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
  /**
   * Read the steps' loss and accuracy every this many steps (default: every step on the CPU, every
   * 25 on a GPU). Progress events and the divergence check come with the reads.
   */
  syncEvery?: number;
  /** Batches assembled ahead of the step that runs (default 1). */
  prefetch?: number;
  /**
   * Data-parallel over several processes (lib/distributed): true or options to join a process
   * group, false for none, or a group already joined; left out, the run joins one when torchrun's
   * variables are set (`dna launch`, torchrun).
   */
  distributed?: boolean | DistributedOptions | ProcessGroup;
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

/** A step whose figures are still on the device. */
interface PendingStep extends StepOutcome {
  size: number;
  lr: number;
  /** Where the run stood before the step, and after it. */
  before: { epoch: number; step: number };
  at: LoopPosition;
  time: number;
}

/** An epoch's running figures: what has been read, and the steps not read yet. */
interface EpochFigures {
  started: number;
  seen: number;
  correct: number;
  lossSum: number;
  pending: PendingStep[];
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
  syncEvery: number;
  prefetch: number;
  /** The ranks this run is one of (a world of one when not distributed). */
  group: ProcessGroup;
  /** One JSON line per epoch goes here when given. */
  metricsFile?: string;
  /** The checkpoint a diverged run names as the last good one. */
  checkpoint?: string;
  /** Saves the run at the loop's position: when aborted, and at the end of every epoch. */
  save(): Promise<void>;
  /** One training step on a batch (the loop disposes the batch when it settles). */
  step(batch: Batch, lr: number): Promise<StepOutcome>;
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
    this.stepsPerEpoch = batchCount(shardLength(options.data.count, options.group.worldSize), options.batchSize);
    this.steps = options.epochs * this.stepsPerEpoch;
  }

  /**
   * Reads the pending steps' figures (one host read), stops the run at the first one that is not
   * finite, adds them to the epoch's and sends their progress events.
   */
  async #settle(epoch: EpochFigures): Promise<void> {
    const o = this.#options;
    const steps = epoch.pending.splice(0);
    if (steps.length === 0) return;
    let values: Float64Array;
    try {
      values = tidy(
        () =>
          stack(steps.flatMap((s) => [s.loss.toDtype('float64'), s.correct.toDtype('float64')])).data() as Float64Array,
      );
    } finally {
      for (const step of steps) dispose([step.loss, step.correct]);
    }
    // Together: a rank whose loss became non-finite stops every rank at this read.
    const bad = steps.findIndex((_, k) => !Number.isFinite(values[2 * k]));
    const { nonFinite } = await o.group.anyRank({ nonFinite: bad >= 0 });
    if (nonFinite) {
      if (bad >= 0) throw await divergedError(o.where, values[2 * bad], steps[bad].before, o.checkpoint);
      throw await divergedError(o.where, Number.NaN, steps.at(-1)!.before, o.checkpoint, 'on another rank');
    }
    for (const [k, step] of steps.entries()) {
      const loss = values[2 * k];
      epoch.seen += step.size;
      epoch.correct += values[2 * k + 1];
      epoch.lossSum += loss * step.size;
      o.onProgress?.({
        phase: 'step',
        epoch: step.at.epoch,
        epochs: o.epochs,
        step: step.at.step,
        steps: this.steps,
        stepInEpoch: step.at.batch,
        stepsPerEpoch: this.stepsPerEpoch,
        loss,
        accuracy: epoch.correct / epoch.seen,
        lr: step.lr,
        imagesPerSecond: epoch.seen / ((step.time - epoch.started) / 1000),
      } as LoopProgress & Partial<E>);
    }
  }

  #lr(step: number): number {
    return cosineLr(Math.min(step, this.steps), this.steps, this.#options.lr, this.#options.lrFloor ?? 0);
  }

  /** Runs to the last epoch, or until the signal aborts (after saving); says which. */
  async run(): Promise<{ aborted: boolean }> {
    const o = this.#options;
    while (this.position.epoch < o.epochs) {
      const epoch: EpochFigures = { started: performance.now(), seen: 0, correct: 0, lossSum: 0, pending: [] };
      // This rank's shard of the epoch (the whole epoch's seeded order for a world of one).
      const { rank, worldSize } = o.group;
      const order = {
        batchSize: o.batchSize,
        order: shardIndices(o.data.count, { rank, worldSize, seed: o.seed, epoch: this.position.epoch }),
        startBatch: this.position.batch,
        device: o.device,
      };
      const upcoming = batchesAsync(o.data, order);
      // Batches asked for and not run yet: the next one, and up to `prefetch` more while a step
      // runs (a streamed dataset reads them meanwhile). A failed read surfaces when it is awaited.
      const queue: Promise<IteratorResult<Batch, void>>[] = [];
      const fill = (count: number) => {
        while (queue.length < count) {
          const next = upcoming.next();
          next.catch(() => {});
          queue.push(next);
        }
      };
      try {
        for (;;) {
          fill(1);
          const next = await queue.shift()!;
          if (next.done) break;
          const batch = next.value;
          // Every rank stops at the same step (one of them alone would wait in a collective forever).
          const { stop } = await o.group.anyRank({ stop: o.signal?.aborted ?? false });
          if (stop) {
            dispose(batch);
            await this.#settle(epoch);
            await o.save();
            return { aborted: true };
          }
          const lr = this.#lr(this.position.step);
          for (const optimizer of o.optimizers) optimizer.lr = lr;
          const before = { epoch: this.position.epoch, step: this.position.step };
          const running = o.step(batch, lr);
          // The next batches are made while this step runs on the step thread.
          fill(o.prefetch);
          let outcome: StepOutcome;
          try {
            outcome = await running;
          } finally {
            dispose(batch);
          }
          this.position = { ...this.position, batch: this.position.batch + 1, step: this.position.step + 1 };
          epoch.pending.push({
            ...outcome,
            size: batch.indices.length,
            lr,
            before,
            at: { ...this.position },
            time: performance.now(),
          });
          if (epoch.pending.length >= o.syncEvery) await this.#settle(epoch);
          await yieldToEventLoop();
        }
        await this.#settle(epoch);
      } finally {
        for (const step of epoch.pending) dispose([step.loss, step.correct]);
        for (const asked of queue.splice(0)) {
          const next = await asked.catch(() => undefined);
          if (next !== undefined && !next.done) dispose(next.value);
        }
        await upcoming.return();
      }
      const { started } = epoch;
      const seconds = (performance.now() - started) / 1000;
      // The epoch's figures over every rank.
      const [seen, correct, lossSum] = await o.group.sum([epoch.seen, epoch.correct, epoch.lossSum]);
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
      if (o.metricsFile !== undefined && o.group.isMain) {
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
