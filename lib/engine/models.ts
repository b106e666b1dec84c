// Models: WideResNets built natively (pre-activation, Zagoruyko & Komodakis 2016) behind a
// `Module` class, the presets of the paper, and the classification loss.
//
// A model takes images in [0, 1] (float32, NCHW) and normalises them itself (per-channel mean
// and std from its config), so augmentation never has to know the normalisation.
import { describe, optionsObject } from '../util/describe.js';
import { native, type NativeModule } from './native.js';
import { Tensor, tensorHandle, type Device } from './tensor.js';

export interface WideResNetConfig {
  /** 6n+4: 10, 16, 22, 28, 40, ... (n blocks in each of the three groups). */
  depth: number;
  /** The width multiplier k: the groups have 16k, 32k and 64k channels. */
  widen: number;
  /** Outputs (logits); a policy network uses one per policy parameter. */
  classes: number;
  /** 1 (gray) or 3 (RGB). */
  inChannels: number;
  /** Dropout between the two convolutions of each block, in [0, 1); default 0. */
  dropout?: number;
  /** Per-channel normalisation applied to the [0, 1] input: (x - mean) / std. Default 0.5, 0.5. */
  mean?: number | number[];
  std?: number | number[];
  /** Start the final linear layer at zero, so that every output starts at 0 (a neutral head). */
  zeroHead?: boolean;
  /** Seed of the initial weights; when omitted, drawn from LibTorch's default generator (see manualSeed). */
  seed?: number | bigint;
}

/** A configuration as a built model reports it (normalisation as arrays, defaults filled in). */
export interface ModuleConfig extends Required<Omit<WideResNetConfig, 'seed' | 'mean' | 'std'>> {
  kind: 'wideResNet';
  mean: number[];
  std: number[];
}

/**
 * How a model runs, apart from its weights. Both settings change speed, not the model: a
 * checkpoint written under one loads under the other.
 */
export interface Execution {
  /**
   * 'channelsLast' keeps the input, the activations and the convolution weights in NHWC, which
   * is what tensor-core convolutions want; 'contiguous' (NCHW) is the default.
   */
  memoryFormat?: MemoryFormat;
  /**
   * 'bfloat16' runs the forward pass under autocast: convolutions and matmuls in bfloat16,
   * reductions and batch norm statistics in float32. Parameters, gradients and the logits stay
   * float32, so optimisers and losses are unchanged. 'float32' (the default) is plain float32.
   */
  precision?: Precision;
}
export type MemoryFormat = 'contiguous' | 'channelsLast';
export type Precision = 'float32' | 'bfloat16';

const MEMORY_FORMATS: readonly MemoryFormat[] = ['contiguous', 'channelsLast'];
/** The precisions a model runs in (`Execution.precision`). */
export const PRECISIONS: readonly Precision[] = Object.freeze(['float32', 'bfloat16']);

/** `execution` checked and completed with the defaults; `where` names the caller in messages. */
export function executionOptions(execution: Execution | undefined, where: string): Required<Execution> {
  if (execution === undefined) return { memoryFormat: 'contiguous', precision: 'float32' };
  if (execution === null || typeof execution !== 'object' || Array.isArray(execution)) {
    throw new TypeError(
      `${where}: the execution settings must be an object { memoryFormat, precision }, got ${describe(execution)}`,
    );
  }
  const memoryFormat = execution.memoryFormat ?? 'contiguous';
  const precision = execution.precision ?? 'float32';
  if (!MEMORY_FORMATS.includes(memoryFormat)) {
    throw new RangeError(
      `${where}: memoryFormat must be one of ${MEMORY_FORMATS.join(', ')}, got ${describe(memoryFormat)}`,
    );
  }
  if (!PRECISIONS.includes(precision)) {
    throw new RangeError(`${where}: precision must be one of ${PRECISIONS.join(', ')}, got ${describe(precision)}`);
  }
  return { memoryFormat, precision };
}

/** The architecture part of a config; complete it with `classes` and `inChannels`. */
export type WideResNetPreset = Readonly<Pick<WideResNetConfig, 'depth' | 'widen'>>;

/** The paper's CIFAR network: about 2.2 M parameters. */
export const WRN_40_2: WideResNetPreset = Object.freeze({ depth: 40, widen: 2 });
/** The paper's SVHN network: about 36.5 M parameters. */
export const WRN_28_10: WideResNetPreset = Object.freeze({ depth: 28, widen: 10 });
/** A smaller network of the same family: about 1.47 M parameters. */
export const WRN_28_2: WideResNetPreset = Object.freeze({ depth: 28, widen: 2 });
/** Small networks for tests and demos (about 0.18 M and 0.08 M parameters). */
export const WRN_16_1: WideResNetPreset = Object.freeze({ depth: 16, widen: 1 });
export const WRN_10_1: WideResNetPreset = Object.freeze({ depth: 10, widen: 1 });

/**
 * The trainable values of a WideResNet, counted from its config without building it: the first
 * conv, three groups of blocks (bn, 3x3 conv, bn, 3x3 conv, a 1x1 shortcut where the width or the
 * stride changes), the final bn and the linear head.
 */
export function wideResNetParameterCount({
  depth,
  widen,
  classes,
  inChannels,
}: Pick<WideResNetConfig, 'depth' | 'widen' | 'classes' | 'inChannels'>): number {
  const blocks = (depth - 4) / 6;
  let count = 16 * inChannels * 9;
  let channels = 16;
  [16 * widen, 32 * widen, 64 * widen].forEach((out, group) => {
    const shortcut = channels !== out || group > 0 ? out * channels : 0;
    const first = 2 * channels + 9 * out * channels + 2 * out + 9 * out * out + shortcut;
    const rest = 4 * out + 18 * out * out;
    count += first + (blocks - 1) * rest;
    channels = out;
  });
  return count + 2 * channels + channels * classes + classes;
}

/**
 * Refuses, before it is built, a network recorded in a file that the file's tensors cannot fill:
 * a crafted architecture (depth 1000, widen 64) would otherwise allocate memory and time without
 * bound. Loading the weights afterwards checks every name and shape.
 */
export function checkRecordedNetwork(
  config: Pick<WideResNetConfig, 'depth' | 'widen' | 'classes' | 'inChannels'>,
  tensors: Record<string, Tensor>,
  file: string,
): void {
  const stored = Object.values(tensors).reduce((sum, t) => sum + t.numel, 0);
  const needed = wideResNetParameterCount(config);
  if (needed > stored) {
    throw new RangeError(
      `${file}: the network it records (depth ${String(config.depth)}, widen ${String(config.widen)}, ` +
        `${String(config.classes)} outputs) has ${needed} parameters, but the file holds ${stored} values`,
    );
  }
}

/**
 * A WideResNet, e.g. `wideResNet({ ...WRN_40_2, classes: 10, inChannels: 3, seed: 1 })`.
 * Built on the CPU in training mode; move it with `.to(device)`.
 */
export function wideResNet(config: WideResNetConfig): Module {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new TypeError(
      `wideResNet: config must be an object, e.g. { ...WRN_40_2, classes: 10, inChannels: 3 }, got ${describe(config)}`,
    );
  }
  for (const key of ['depth', 'widen', 'classes', 'inChannels'] as const) {
    if (config[key] === undefined) {
      throw new TypeError(
        `wideResNet: config.${key} is missing (a preset such as WRN_40_2 gives depth and widen; add classes and ` +
          `inChannels)`,
      );
    }
  }
  const { seed, ...architecture } = config;
  return new Module(native.wideResNet(architecture, seed ?? null));
}

/** The architecture of `mlp`: Linear(inputs, hidden), ReLU, Linear(hidden, outputs). */
export interface MlpConfig {
  inputs: number;
  hidden: number;
  outputs: number;
  /** The last layer starts at zero (outputs start at zero). Default false. */
  zeroHead?: boolean;
  /** Seeds the initial weights (default: from LibTorch's default generator). */
  seed?: number | bigint;
}

/** A small MLP over feature vectors [B, inputs]: a head on another network's `features`. */
export function mlp(config: MlpConfig): Module {
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw new TypeError(`mlp: config must be an object { inputs, hidden, outputs }, got ${describe(config)}`);
  const { seed, ...architecture } = config;
  return new Module(native.mlp(architecture, seed ?? null));
}

/**
 * A native network. Its parameters are LibTorch tensors that the optimisers update in place;
 * `parameters()` hands out new Tensor handles to them (disposing those frees nothing).
 * `dispose()` releases the network itself.
 */
export class Module {
  readonly #handle: NativeModule;

  /** @internal Wraps a native handle; use `wideResNet()` to make models. */
  constructor(handle: NativeModule) {
    this.#handle = handle;
  }

  /** @internal */
  get handle(): NativeModule {
    return this.#handle;
  }

  /** Logits [B, classes] for images [B, C, H, W] in [0, 1]; recorded by autograd unless under noGrad. */
  forward(x: Tensor): Tensor {
    return new Tensor(native.moduleForward(this.#handle, tensorHandle(x)));
  }

  /**
   * The forward pass on the addon's step thread: the event loop goes on meanwhile, and the module
   * and `x` are busy (any other use throws) until the Promise settles.
   */
  async forwardAsync(x: Tensor): Promise<Tensor> {
    return new Tensor(await native.moduleForwardAsync(this.#handle, tensorHandle(x)));
  }

  /** `features` with the pass on the addon's step thread, like `forwardAsync`. */
  async featuresAsync(x: Tensor): Promise<Tensor> {
    return new Tensor(await native.moduleFeaturesAsync(this.#handle, tensorHandle(x)));
  }

  /**
   * What the network's last layer reads, [B, F] (a WideResNet: its pooled activations, F = 64 *
   * widen); recorded by autograd unless under noGrad.
   */
  features(x: Tensor): Tensor {
    return new Tensor(native.moduleFeatures(this.#handle, tensorHandle(x)));
  }

  /**
   * How batch norm updates its running statistics in training mode: the weight of each new batch
   * (default 0.1), or null for the plain average of every batch since the last reset (or since
   * momentum became null).
   */
  setBatchNormMomentum(momentum: number | null): this {
    native.moduleSetBatchNormMomentum(this.#handle, momentum);
    return this;
  }

  /** Running means 0, variances 1 and no batches counted, in every batch-norm layer. */
  resetBatchNormStatistics(): this {
    native.moduleResetBatchNormStatistics(this.#handle);
    return this;
  }

  /** Training mode (batch statistics, running averages updated, dropout on); returns this. */
  train(on = true): this {
    native.moduleTrain(this.#handle, on);
    return this;
  }
  /** Evaluation mode (running averages, no dropout); returns this. */
  eval(): this {
    return this.train(false);
  }
  get training(): boolean {
    return native.moduleIsTraining(this.#handle);
  }

  /** The parameters, in a fixed order (the one `parameterNames` lists). */
  parameters(): Tensor[] {
    return native.moduleParameters(this.#handle).map((h) => new Tensor(h));
  }
  get parameterNames(): string[] {
    return native.moduleParameterNames(this.#handle);
  }
  /** The parameters by name, e.g. `conv1.weight`, `group2.0.bn1.bias`, `fc.weight`. */
  namedParameters(): Record<string, Tensor> {
    const names = this.parameterNames;
    const tensors = this.parameters();
    return Object.fromEntries(names.map((name, i) => [name, tensors[i]]));
  }
  /** The number of trainable values. */
  get parameterCount(): number {
    return native.moduleParameterCount(this.#handle);
  }
  /** Batch-norm running statistics and the input normalisation: state that is not trained by gradients. */
  buffers(): Tensor[] {
    return native.moduleBuffers(this.#handle).map((h) => new Tensor(h));
  }
  get bufferNames(): string[] {
    return native.moduleBufferNames(this.#handle);
  }
  namedBuffers(): Record<string, Tensor> {
    const names = this.bufferNames;
    const tensors = this.buffers();
    return Object.fromEntries(names.map((name, i) => [name, tensors[i]]));
  }

  /** Copies of every parameter and buffer by name: a snapshot for checkpoints. */
  stateDict(): Record<string, Tensor> {
    const dict = native.moduleStateDict(this.#handle);
    return Object.fromEntries(Object.entries(dict).map(([name, h]) => [name, new Tensor(h)]));
  }
  /**
   * Copies the values of a state dict in. Every name, shape and dtype kind must match this
   * model: otherwise an Error says what does not fit, and nothing is changed.
   */
  loadStateDict(dict: Record<string, Tensor>): void {
    if (dict === null || typeof dict !== 'object' || Array.isArray(dict))
      throw new TypeError('loadStateDict: the state dict must be an object of Tensors by name');
    const handles = Object.fromEntries(
      Object.entries(dict).map(([name, t]) => [name, t instanceof Tensor ? t.handle : t]),
    );
    native.moduleLoadStateDict(this.#handle, handles as never);
  }

  /** Moves the parameters and buffers to `device`, in place (handles to them follow); returns this. */
  to(device: Device): this {
    native.moduleTo(this.#handle, device);
    return this;
  }
  get device(): Device {
    return native.moduleDevice(this.#handle);
  }
  /**
   * Sets how the model runs (see `Execution`): the memory format of its convolution weights
   * changes in place, and later `forward` calls follow. Unset fields return to their defaults.
   * Returns this.
   */
  setExecution(execution: Execution): this {
    const { memoryFormat, precision } = executionOptions(execution, 'setExecution');
    native.moduleSetExecution(this.#handle, memoryFormat === 'channelsLast', precision);
    return this;
  }
  get execution(): Required<Execution> {
    const { channelsLast, precision } = native.moduleExecution(this.#handle);
    return { memoryFormat: channelsLast ? 'channelsLast' : 'contiguous', precision: precision as Precision };
  }
  /** The architecture, to store beside the weights and rebuild with `wideResNet(config)`. */
  get config(): ModuleConfig {
    return native.moduleConfig(this.#handle) as unknown as ModuleConfig;
  }

  /** Releases the network; further calls throw. Idempotent. */
  dispose(): void {
    native.moduleDispose(this.#handle);
  }
  get isDisposed(): boolean {
    return native.moduleIsDisposed(this.#handle);
  }
}

export interface CrossEntropyOptions {
  /** Mixes the one-hot target with the uniform distribution: (1 - s) * onehot + s / classes. */
  labelSmoothing?: number;
}

/** The mean cross-entropy of logits [B, classes] against int64 labels [B] (a scalar tensor). */
export function crossEntropy(logits: Tensor, labels: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const { labelSmoothing } = optionsObject(options, 'crossEntropy');
  return new Tensor(native.crossEntropy(tensorHandle(logits), tensorHandle(labels), labelSmoothing ?? null));
}
