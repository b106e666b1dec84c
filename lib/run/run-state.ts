// The state of a run in one checkpoint: the weights of its networks, the state of their
// optimisers, the generator behind every random draw, and where the run stands. `train` and
// `search` write it atomically and resume from it; resuming gives the same result as running
// straight through.
import { loadCheckpoint, saveCheckpoint, withPrefix } from '../engine/checkpoint.js';
import { exists } from '../util/files.js';
import type { Module, ModuleConfig } from '../engine/models.js';
import type { Optimizer, OptimizerState } from '../engine/optim.js';
import type { Generator } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';

/** Training stopped because the loss stopped being finite; the last good checkpoint is kept. */
export class TrainingDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}

/**
 * The error of a run whose loss became `loss` at `position` (or, in a distributed run, `elsewhere`:
 * on another rank, by that position), naming its last checkpoint when one exists.
 */
export async function divergedError(
  where: string,
  loss: number,
  position: { epoch: number; step: number },
  checkpoint: string | undefined,
  elsewhere?: string,
): Promise<TrainingDivergedError> {
  const kept =
    checkpoint !== undefined && (await exists(checkpoint)) ? `; the last good checkpoint is ${checkpoint}` : '';
  const what = elsewhere === undefined ? `the loss became ${loss}` : `the loss became non-finite ${elsewhere}`;
  const when = elsewhere === undefined ? 'at' : 'by';
  return new TrainingDivergedError(
    `${where}: ${what} ${when} epoch ${position.epoch + 1}, step ${position.step + 1}${kept}`,
  );
}

/** What a run is made of; names become tensor-name prefixes in the file (`model.`, `optimizer.`, ...). */
export interface RunParts {
  modules: Record<string, Module>;
  optimizers: Record<string, Optimizer>;
  generator: Generator;
}

interface RunMeta<P> {
  version: number;
  position: P;
  modules: Record<string, ModuleConfig>;
  optimizers: Record<string, Omit<OptimizerState, 'tensors'>>;
  run: unknown;
}

export { withPrefix } from '../engine/checkpoint.js';

function sameConfig(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Writes the run's state (atomically: temp file, fsync, rename). */
export async function saveRunState<P>(
  file: string,
  kind: string,
  version: number,
  parts: RunParts,
  position: P,
  run: unknown,
): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  const meta: RunMeta<P> = { version, position, modules: {}, optimizers: {}, run };
  try {
    for (const [name, module] of Object.entries(parts.modules)) {
      meta.modules[name] = module.config;
      for (const [key, value] of Object.entries(module.stateDict())) tensors[`${name}.${key}`] = value;
    }
    for (const [name, optimizer] of Object.entries(parts.optimizers)) {
      const { tensors: state, ...rest } = optimizer.state();
      meta.optimizers[name] = rest;
      for (const [key, value] of Object.entries(state)) tensors[`${name}.${key}`] = value;
    }
    tensors.generator = parts.generator.state();
    await saveCheckpoint(file, { kind, meta, tensors });
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

/**
 * Restores a run's state into freshly built parts and returns its position. The networks must
 * have the configurations the file records; anything else is an Error naming the file.
 */
export async function loadRunState<P>(
  file: string,
  kind: string,
  version: number,
  parts: RunParts,
): Promise<{ position: P; run: unknown }> {
  const checkpoint = await loadCheckpoint(file, { kind });
  try {
    const meta = checkpoint.meta as Partial<RunMeta<P>> | null;
    if (meta?.version !== version)
      throw new Error(`${file}: checkpoint version ${String(meta?.version)}, this version reads ${version}`);
    checkPosition(meta.position, file);
    const modules = meta.modules ?? {};
    const optimizers = meta.optimizers ?? {};
    for (const [name, module] of Object.entries(parts.modules)) {
      if (!sameConfig(modules[name], module.config)) {
        throw new Error(
          `${file} is a checkpoint of another ${name} (${JSON.stringify(modules[name] ?? null)}), not of ` +
            `${JSON.stringify(module.config)}`,
        );
      }
      module.loadStateDict(withPrefix(checkpoint.tensors, `${name}.`));
    }
    for (const [name, optimizer] of Object.entries(parts.optimizers)) {
      const state = optimizers[name];
      if (state === undefined) throw new Error(`${file}: the checkpoint has no state for the optimiser '${name}'`);
      optimizer.loadState({ ...state, tensors: withPrefix(checkpoint.tensors, `${name}.`) });
    }
    const generator = checkpoint.tensors.generator;
    if (generator === undefined) throw new Error(`${file}: the checkpoint has no generator state`);
    parts.generator.setState(generator);
    return { position: meta.position as P, run: meta.run };
  } finally {
    for (const t of Object.values(checkpoint.tensors)) t.dispose();
  }
}

/** Where a run stands: epoch, batch of the epoch and step, each a non-negative integer. */
function checkPosition(position: unknown, file: string): void {
  const fields = position as Record<string, unknown> | null;
  for (const name of ['epoch', 'batch', 'step']) {
    const value = fields?.[name];
    if (!Number.isSafeInteger(value) || (value as number) < 0) {
      throw new Error(
        `${file}: the checkpoint's position.${name} is ${JSON.stringify(value) ?? 'missing'}, not a ` +
          `non-negative integer`,
      );
    }
  }
}

/** The configuration of the module `name` that a run checkpoint records, for rebuilding it. */
export function recordedModule(meta: unknown, name: string, version: number): ModuleConfig | undefined {
  const m = meta as Partial<RunMeta<unknown>> | null;
  if (m?.version !== version) return undefined;
  return m.modules?.[name];
}
