// Optimisers: LibTorch's SGD and Adam over parameter tensors, their checkpointable state,
// gradient clipping, and the cosine learning-rate schedule.
import { describe, optionsObject, requiredOptions } from '../util/describe.js';
import { native, type NativeOptimizer, type NativeTensor } from './native.js';
import { Tensor } from './tensor.js';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  /** Default 0 (Nesterov needs 0). */
  dampening?: number;
  /** L2 penalty added to the gradient (PyTorch's weight_decay). */
  weightDecay?: number;
  nesterov?: boolean;
}

export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]; the DNA policy optimiser uses [0.5, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** L2 penalty added to the gradient (Adam, not AdamW). */
  weightDecay?: number;
}

/**
 * Everything an optimiser needs to resume exactly: its hyperparameters and, per parameter
 * (keyed `<index>.<name>`), the momentum buffer (SGD) or the step count and moment estimates
 * (Adam). The tensors are copies.
 */
export interface OptimizerState {
  kind: 'sgd' | 'adam';
  /** How many parameters the optimiser has; a state loads only into one with as many. */
  parameters: number;
  options: Record<string, unknown>;
  tensors: Record<string, Tensor>;
  numbers: Record<string, number>;
}

/** An optimiser over a fixed list of parameters. Call `zeroGrad()`, backward, then `step()`. */
export class Optimizer {
  readonly #handle: NativeOptimizer;

  /** @internal Use `sgd()` or `adam()`. */
  constructor(handle: NativeOptimizer) {
    this.#handle = handle;
  }

  /** @internal The native handle, for lib/ code that calls the addon directly. */
  get handle(): NativeOptimizer {
    return this.#handle;
  }

  get kind(): 'sgd' | 'adam' {
    return native.optimizerKind(this.#handle);
  }
  /** One update of every parameter that has a gradient. */
  step(): void {
    native.optimizerStep(this.#handle);
  }
  /** The same update on the addon's step thread; the optimiser is busy until the Promise settles. */
  async stepAsync(): Promise<void> {
    return native.optimizerStepAsync(this.#handle);
  }
  /** Drops the parameters' gradients (the next backward writes fresh ones). */
  zeroGrad(): void {
    native.optimizerZeroGrad(this.#handle);
  }
  get lr(): number {
    return native.optimizerGetLr(this.#handle);
  }
  set lr(value: number) {
    native.optimizerSetLr(this.#handle, value);
  }
  /** The hyperparameters in force (SgdOptions or AdamOptions, all fields filled in). */
  get options(): SgdOptions | AdamOptions {
    return native.optimizerOptions(this.#handle) as SgdOptions | AdamOptions;
  }
  /** Handles to the parameters it updates, in order. */
  parameters(): Tensor[] {
    return native.optimizerParameters(this.#handle).map((h) => new Tensor(h));
  }
  /** A snapshot of the state, for checkpoints. */
  state(): OptimizerState {
    const state = native.optimizerState(this.#handle);
    return {
      ...state,
      tensors: Object.fromEntries(Object.entries(state.tensors).map(([key, h]) => [key, new Tensor(h)])),
    };
  }
  /** Restores a state from `state()` (of an optimiser of the same kind over same-shaped parameters). */
  loadState(state: OptimizerState): void {
    if (state === null || typeof state !== 'object')
      throw new TypeError('loadState: the state must be an object from Optimizer.state()');
    const tensors =
      state.tensors !== null && typeof state.tensors === 'object'
        ? Object.fromEntries(Object.entries(state.tensors).map(([key, t]) => [key, t instanceof Tensor ? t.handle : t]))
        : state.tensors;
    native.optimizerLoadState(this.#handle, { ...state, tensors } as never);
  }
  /** Releases the optimiser's state (momentum buffers, moments); further calls throw. */
  dispose(): void {
    native.optimizerDispose(this.#handle);
  }
  get isDisposed(): boolean {
    return native.optimizerIsDisposed(this.#handle);
  }
}

function handles(params: Tensor[], where: string): NativeTensor[] {
  if (!Array.isArray(params))
    throw new TypeError(`${where}: params must be an array of Tensors (e.g. model.parameters())`);
  return params.map((p, i) => {
    if (!(p instanceof Tensor)) throw new TypeError(`${where}: params[${i}] is not a Tensor`);
    return p.handle;
  });
}

/** Something with parameters (a Module, a PolicyNetwork). */
export interface Parameterized {
  parameters(): Tensor[];
}

/** The optimiser over `params`; the parameter handles taken from a model are released at once. */
function build(
  params: Tensor[] | Parameterized,
  where: string,
  make: (handles: NativeTensor[]) => NativeOptimizer,
): Optimizer {
  if (Array.isArray(params) || typeof (params as Parameterized | null)?.parameters !== 'function')
    return new Optimizer(make(handles(params as Tensor[], where)));
  const owned = (params as Parameterized).parameters();
  try {
    return new Optimizer(make(handles(owned, where)));
  } finally {
    for (const p of owned) p.dispose();
  }
}

/**
 * Stochastic gradient descent with optional (Nesterov) momentum and weight decay, as
 * torch.optim.SGD, over a list of parameters or all parameters of a model.
 */
export function sgd(params: Tensor[] | Parameterized, options: SgdOptions): Optimizer {
  const checked = requiredOptions(options, 'sgd', '{ lr, momentum, ... }');
  return build(params, 'sgd', (h) => native.sgd(h, checked));
}

/** Adam, as torch.optim.Adam (weight decay as an L2 term in the gradient), over a list of parameters or a model. */
export function adam(params: Tensor[] | Parameterized, options: AdamOptions = {}): Optimizer {
  const checked = optionsObject(options, 'adam');
  return build(params, 'adam', (h) => native.adam(h, checked));
}

/**
 * Scales the gradients of `params` so that their total L2 norm is at most `maxNorm`; returns
 * the total norm before scaling. Parameters without a gradient are skipped.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  return native.clipGradNorm(handles(params, 'clipGradNorm'), maxNorm);
}

/**
 * The learning rate at `step` (0-based) of `totalSteps`: a linear warmup from baseLr/warmupSteps
 * to baseLr over the first `warmupSteps` steps, then a half cosine from baseLr down to floorLr,
 * which it reaches at step = totalSteps.
 */
export function cosineLr(step: number, totalSteps: number, baseLr: number, floorLr = 0, warmupSteps = 0): number {
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new RangeError(`cosineLr: ${message}`);
  };
  check(Number.isFinite(step) && step >= 0, `step must be a non-negative number, got ${describe(step)}`);
  check(Number.isFinite(totalSteps) && totalSteps > 0, `totalSteps must be positive, got ${describe(totalSteps)}`);
  check(Number.isFinite(baseLr) && baseLr >= 0, `baseLr must be a non-negative number, got ${describe(baseLr)}`);
  check(
    Number.isFinite(floorLr) && floorLr >= 0 && floorLr <= baseLr,
    `floorLr must be in [0, baseLr], got ${describe(floorLr)}`,
  );
  check(
    Number.isFinite(warmupSteps) && warmupSteps >= 0 && warmupSteps < totalSteps,
    `warmupSteps must be in [0, totalSteps), got ${describe(warmupSteps)}`,
  );
  if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
  const progress = Math.min(1, (step - warmupSteps) / (totalSteps - warmupSteps));
  return floorLr + ((baseLr - floorLr) * (1 + Math.cos(Math.PI * progress))) / 2;
}
