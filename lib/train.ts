// Training and evaluation of a classifier: seeded, resumable from atomic checkpoints, stoppable
// by an AbortSignal after the current step, and yielding to the event loop after every step.
import { mkdir, appendFile, access } from 'node:fs/promises';
import path from 'node:path';

import { applyCutout, preprocess as preprocessImages, preprocessConfig, PREPROCESS_PRESETS, type PreprocessConfig } from './augment.js';
import { checkpointPaths, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { batchCount, batches, type ImageDataset } from './data/index.js';
import { crossEntropy, wideResNet, type Module, type ModuleConfig, type WideResNetConfig } from './models.js';
import { cosineLr, sgd, type Optimizer } from './optim.js';
import { augmentationPolicy, type AugmentationName, type AugmentationPolicy } from './policies.js';
import { Generator, dispose as disposeBatch, noGrad, tidy, type Device, type Tensor } from './tensor.js';

export const CHECKPOINT_KIND = 'dna-augment/train';
const CHECKPOINT_VERSION = 1;

/** Augmentation of a batch of [0, 1] images, applied after flip/crop and before Cutout. */
export type Augmentation = AugmentationName | AugmentationPolicy;

export interface TrainOptions {
  train: ImageDataset;
  /** Evaluated after every epoch when given; the best accuracy picks best.ckpt. */
  test?: ImageDataset;
  /** The network; classes and inChannels default to the dataset's. */
  model: Partial<WideResNetConfig> & Pick<WideResNetConfig, 'depth' | 'widen'>;
  epochs: number;
  /** Default 128. */
  batchSize?: number;
  /** SGD: default lr 0.1, momentum 0.9, Nesterov, weight decay 2e-4; cosine to lrFloor (default 0). */
  lr?: number;
  lrFloor?: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /** Baseline preprocessing (SPEC 1.5): flip and pad + crop first, its Cutout after the augmentation. Default 'none'. */
  preprocess?: keyof typeof PREPROCESS_PRESETS | PreprocessConfig;
  /** Default 'none'. */
  augmentation?: Augmentation;
  /** Seeds the weights, the batch order and every augmentation draw. Default 0. */
  seed?: number;
  device?: Device;
  /** Where last.ckpt, best.ckpt and metrics.jsonl go; without it nothing is written. */
  outDir?: string;
  /** Continue from outDir/last.ckpt when it exists. */
  resume?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: TrainProgress) => void;
}

export interface TrainProgress {
  phase: 'step' | 'epoch';
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  loss: number;
  /** Training accuracy of the epoch so far. */
  accuracy: number;
  lr: number;
  imagesPerSecond: number;
  /** Test accuracy at the end of an epoch, when there is test data. */
  testAccuracy?: number;
}

export interface TrainResult {
  model: Module;
  epochs: number;
  steps: number;
  /** Last test accuracy (when there is test data) and the best one. */
  testAccuracy?: number;
  bestTestAccuracy?: number;
  /** Stopped by the AbortSignal (after saving last.ckpt). */
  aborted: boolean;
  seconds: number;
  checkpoints?: { last: string; best: string };
  metrics?: string;
}

/** Training stopped because the loss stopped being finite; the last good checkpoint is kept. */
export class TrainingDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}

interface Position {
  epoch: number;
  batch: number;
  step: number;
  bestTestAccuracy: number | null;
  testAccuracy: number | null;
}

/** A positive integer option, or a RangeError naming it and `where`. */
export function positiveInteger(value: unknown, name: string, where: string): number {
  if (!Number.isInteger(value) || (value as number) < 1) throw new RangeError(`${where}: ${name} must be a positive integer, got ${String(value)}`);
  return value as number;
}

function sameConfig(a: ModuleConfig, b: ModuleConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** Lets timers and I/O run between two steps of a long loop. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The tensors whose names start with `prefix`, without it. */
function withPrefix(tensors: Record<string, Tensor>, prefix: string): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(tensors).filter(([name]) => name.startsWith(prefix)).map(([name, t]) => [name.slice(prefix.length), t]));
}

/** The state a checkpoint holds: weights, optimiser, augmentation generator, position. */
function checkpointTensors(model: Module, optimizer: Optimizer, generator: Generator): { tensors: Record<string, Tensor>; optimizer: object } {
  const tensors: Record<string, Tensor> = {};
  for (const [name, value] of Object.entries(model.stateDict())) tensors[`model.${name}`] = value;
  const state = optimizer.state();
  for (const [name, value] of Object.entries(state.tensors)) tensors[`optimizer.${name}`] = value;
  tensors.generator = generator.state();
  return { tensors, optimizer: { kind: state.kind, parameters: state.parameters, options: state.options, numbers: state.numbers } };
}

async function writeCheckpoint(file: string, model: Module, optimizer: Optimizer, generator: Generator, position: Position, config: ModuleConfig, run: object): Promise<void> {
  const { tensors, optimizer: optimizerMeta } = checkpointTensors(model, optimizer, generator);
  try {
    await saveCheckpoint(file, {
      kind: CHECKPOINT_KIND,
      meta: { version: CHECKPOINT_VERSION, position, model: config, optimizer: optimizerMeta, run },
      tensors,
    });
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

async function restoreCheckpoint(file: string, model: Module, optimizer: Optimizer, generator: Generator, config: ModuleConfig): Promise<Position> {
  const checkpoint = await loadCheckpoint(file, { kind: CHECKPOINT_KIND });
  const meta = checkpoint.meta as { version: number; position: Position; model: ModuleConfig; optimizer: { kind: 'sgd' | 'adam'; parameters: number; options: Record<string, unknown>; numbers: Record<string, number> } };
  try {
    if (meta.version !== CHECKPOINT_VERSION) throw new Error(`${file}: checkpoint version ${meta.version}, this version reads ${CHECKPOINT_VERSION}`);
    if (!sameConfig(meta.model, config)) {
      throw new Error(`${file} is a checkpoint of another model (${JSON.stringify(meta.model)}), not of ${JSON.stringify(config)}`);
    }
    model.loadStateDict(withPrefix(checkpoint.tensors, 'model.'));
    optimizer.loadState({ ...meta.optimizer, tensors: withPrefix(checkpoint.tensors, 'optimizer.') });
    const state = checkpoint.tensors.generator;
    if (state === undefined) throw new Error(`${file}: the checkpoint has no generator state`);
    generator.setState(state);
    return meta.position;
  } finally {
    for (const t of Object.values(checkpoint.tensors)) t.dispose();
  }
}

/** The model a training checkpoint holds (weights and architecture), ready to evaluate. */
export async function loadTrainedModel(file: string, options: { device?: Device } = {}): Promise<Module> {
  const checkpoint = await loadCheckpoint(file, { kind: CHECKPOINT_KIND });
  try {
    const meta = checkpoint.meta as { version?: number; model?: ModuleConfig };
    if (meta.version !== CHECKPOINT_VERSION || meta.model === undefined || meta.model.kind !== 'wideResNet') {
      throw new Error(`${file}: not a training checkpoint this version can read (version ${String(meta.version)})`);
    }
    const { kind: _kind, ...config } = meta.model;
    const model = wideResNet(config);
    try {
      model.loadStateDict(withPrefix(checkpoint.tensors, 'model.'));
      return model.to(options.device ?? 'cpu');
    } catch (error) {
      model.dispose();
      throw error;
    }
  } finally {
    for (const t of Object.values(checkpoint.tensors)) t.dispose();
  }
}

/** Accuracy and mean loss of a model on a dataset (evaluation mode, no augmentation). */
export async function evaluate(options: { model: Module; data: ImageDataset; batchSize?: number; device?: Device; signal?: AbortSignal }): Promise<{ accuracy: number; loss: number; count: number }> {
  const { model, data, batchSize = 256, signal } = options;
  const device = options.device ?? model.device;
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
        disposeBatch(batch);
      }
      if (signal?.aborted) break;
      await yieldToEventLoop();
    }
  } finally {
    model.train(wasTraining);
  }
  return { accuracy: count === 0 ? 0 : correct / count, loss: count === 0 ? 0 : lossSum / count, count };
}

/**
 * Trains a WideResNet on a dataset with SGD + cosine, the chosen baseline preprocessing and
 * augmentation. With `outDir`: last.ckpt after every epoch (and when aborted), best.ckpt on the
 * best test accuracy, metrics.jsonl one line per epoch; `resume` continues from last.ckpt with
 * the same weights, optimiser, batch order and augmentation draws as an uninterrupted run.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const started = performance.now();
  const { train: data, test, signal, onProgress } = options;
  const epochs = positiveInteger(options.epochs, 'epochs', 'train');
  const batchSize = positiveInteger(options.batchSize ?? 128, 'batchSize', 'train');
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`train: seed must be a non-negative integer, got ${seed}`);
  const device = options.device ?? 'cpu';
  const augment = augmentationPolicy(options.augmentation ?? 'none');
  const baseline = preprocessConfig(options.preprocess, 'train: unknown preprocess preset');
  const beforePolicy: PreprocessConfig = { ...baseline, cutout: 0 };
  const lr = options.lr ?? 0.1;
  const lrFloor = options.lrFloor ?? 0;
  const [channels] = data.shape;
  if (test !== undefined && test.shape.join() !== data.shape.join()) {
    throw new RangeError(`train: test images are ${test.shape.join('x')} but training images are ${data.shape.join('x')}`);
  }
  if (test !== undefined && test.classes.length !== data.classes.length) {
    throw new RangeError(`train: the test data has ${test.classes.length} classes, the training data ${data.classes.length}`);
  }

  const model = wideResNet({ classes: data.classes.length, inChannels: channels, ...options.model, seed }).to(device);
  const config = model.config;
  if (config.classes !== data.classes.length) {
    model.dispose();
    throw new RangeError(`train: the model has ${config.classes} outputs but the data has ${data.classes.length} classes`);
  }
  const optimizer = sgd(model.parameters(), {
    lr,
    momentum: options.momentum ?? 0.9,
    nesterov: options.nesterov ?? true,
    weightDecay: options.weightDecay ?? 2e-4,
  });
  const generator = new Generator(seed, device);
  const stepsPerEpoch = batchCount(data.count, batchSize);
  const steps = epochs * stepsPerEpoch;

  const files = options.outDir === undefined ? undefined : checkpointPaths(options.outDir, 'train');
  const metricsFile = options.outDir === undefined ? undefined : path.join(options.outDir, 'metrics.jsonl');
  if (options.outDir !== undefined) await mkdir(options.outDir, { recursive: true });
  const run = { seed, epochs, batchSize, lr, lrFloor, augmentation: typeof options.augmentation === 'function' ? 'custom' : options.augmentation ?? 'none', preprocess: baseline, device };

  let position: Position = { epoch: 0, batch: 0, step: 0, bestTestAccuracy: null, testAccuracy: null };
  if (options.resume && files !== undefined && (await exists(files.last))) {
    position = await restoreCheckpoint(files.last, model, optimizer, generator, config);
  }

  const save = (file: string) => writeCheckpoint(file, model, optimizer, generator, position, config, run);
  const result = (aborted: boolean): TrainResult => ({
    model,
    epochs: position.epoch,
    steps: position.step,
    testAccuracy: position.testAccuracy ?? undefined,
    bestTestAccuracy: position.bestTestAccuracy ?? undefined,
    aborted,
    seconds: (performance.now() - started) / 1000,
    checkpoints: files,
    metrics: metricsFile,
  });

  model.train();
  try {
    while (position.epoch < epochs) {
      const epochStarted = performance.now();
      let seen = 0;
      let correct = 0;
      let lossSum = 0;
      for (const batch of batches(data, { batchSize, seed, epoch: position.epoch, startBatch: position.batch, device })) {
        if (signal?.aborted) {
          disposeBatch(batch);
          if (files !== undefined) await save(files.last);
          return result(true);
        }
        const stepLr = cosineLr(position.step, steps, lr, lrFloor);
        optimizer.lr = stepLr;
        let loss: number;
        let right: number;
        try {
          [loss, right] = tidy(() => {
            let images = preprocessImages(batch.images, beforePolicy, { generator });
            images = augment(images, { generator });
            images = applyCutout(images, baseline.cutout, { generator });
            const logits = model.forward(images);
            const objective = crossEntropy(logits, batch.labels);
            optimizer.zeroGrad();
            objective.backward();
            const value = objective.item();
            if (Number.isFinite(value)) optimizer.step();
            return [value, noGrad(() => logits.argmax(1).eq(batch.labels).sum().item())];
          });
        } finally {
          disposeBatch(batch);
        }
        if (!Number.isFinite(loss)) {
          const kept = files !== undefined && (await exists(files.last)) ? `; the last good checkpoint is ${files.last}` : '';
          throw new TrainingDivergedError(`train: the loss became ${loss} at epoch ${position.epoch + 1}, step ${position.step + 1}${kept}`);
        }
        const size = batch.indices.length;
        seen += size;
        correct += right;
        lossSum += loss * size;
        position = { ...position, batch: position.batch + 1, step: position.step + 1 };
        onProgress?.({
          phase: 'step',
          epoch: position.epoch,
          epochs,
          step: position.step,
          steps,
          stepInEpoch: position.batch,
          stepsPerEpoch,
          loss,
          accuracy: correct / seen,
          lr: stepLr,
          imagesPerSecond: seen / ((performance.now() - epochStarted) / 1000),
        });
        await yieldToEventLoop();
      }
      const trainSeconds = (performance.now() - epochStarted) / 1000;
      const testAccuracy = test === undefined ? null : (await evaluate({ model, data: test, device })).accuracy;
      const improved = testAccuracy !== null && (position.bestTestAccuracy === null || testAccuracy > position.bestTestAccuracy);
      position = {
        epoch: position.epoch + 1,
        batch: 0,
        step: position.step,
        testAccuracy,
        bestTestAccuracy: improved ? testAccuracy : position.bestTestAccuracy,
      };
      const line = {
        epoch: position.epoch,
        step: position.step,
        loss: seen === 0 ? null : lossSum / seen,
        trainAccuracy: seen === 0 ? null : correct / seen,
        testAccuracy,
        lr: cosineLr(Math.min(position.step, steps), steps, lr, lrFloor),
        seconds: (performance.now() - epochStarted) / 1000,
      };
      if (metricsFile !== undefined) await appendFile(metricsFile, JSON.stringify(line) + '\n');
      if (files !== undefined) {
        await save(files.last);
        if (improved) await save(files.best);
      }
      onProgress?.({
        phase: 'epoch',
        epoch: position.epoch,
        epochs,
        step: position.step,
        steps,
        stepInEpoch: stepsPerEpoch,
        stepsPerEpoch,
        loss: line.loss ?? Number.NaN,
        accuracy: line.trainAccuracy ?? Number.NaN,
        lr: line.lr,
        imagesPerSecond: seen / trainSeconds,
        testAccuracy: testAccuracy ?? undefined,
      });
    }
    return result(false);
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    optimizer.dispose();
  }
}
