// dna bench: the package's benchmarks on this machine, quick or full, each against its baseline
// run in the same process or script (PyTorch, PIL), printing their tables.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Command } from '../cli/command.js';
import { UsageError } from '../cli/options.js';

const PYTHON = '/usr/bin/python3';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The benchmarks, what they measure and whether their baseline is PyTorch or PIL in Python. */
export const BENCHMARKS = {
  augment: { what: 'the fused augmentation against the per-image PIL pipeline', python: true },
  train: { what: 'a classifier training step against the same step in PyTorch', python: true },
  search: { what: 'a DNA search step against a plain training step', python: false },
  pipeline: { what: "a whole training epoch against PyTorch's DataLoader loop", python: true },
  streaming: { what: 'an epoch from a streamed image folder against the folder in memory', python: false },
} as const;
type BenchmarkName = keyof typeof BENCHMARKS;
const NAMES = Object.keys(BENCHMARKS) as BenchmarkName[];

/** Why PyTorch's and PIL's side cannot run here, or undefined when they can. */
function pythonMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, torchvision, PIL'], { encoding: 'utf8' });
  if (probe.status !== 0) return 'python3-torch, python3-torchvision or python3-pil is missing';
  return undefined;
}

function run(script: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure this machine: augmentation, training step, search step, training loop',
  usage: `dna bench [${NAMES.join('|')} ...] [--quick]`,
  description:
    `Runs the package's benchmarks and prints their tables: ${NAMES.map((name) => `${name} (${BENCHMARKS[name].what})`).join(', ')}. ` +
    'Every figure is a ratio against a baseline measured in the same run. The PyTorch and PIL baselines need ' +
    "Debian's python3-torch, python3-torchvision and python3-pil (apt-get install ...); without them those " +
    'benchmarks are skipped. Give names to run some of them; --quick runs small versions (minutes, not tens of minutes).',
  groups: [
    {
      title: 'Options',
      options: [
        { name: 'quick', kind: 'flag', help: 'small versions of each benchmark (rougher figures)' },
        { name: 'seed', kind: 'integer', min: 0, value: 'N', help: 'the benchmarks’ seed (default 0)' },
      ],
    },
  ],
  words: 'collect',
  async run(values, rest) {
    for (const name of rest) {
      if (!(NAMES as string[]).includes(name))
        throw new UsageError(`unknown benchmark '${name}' (one of ${NAMES.join(', ')})`);
    }
    const chosen = rest.length === 0 ? NAMES : (rest as BenchmarkName[]);
    const missing = pythonMissing();
    const args = [
      ...(values.quick ? ['--quick'] : []),
      ...(values.seed === undefined ? [] : ['--seed', String(values.seed)]),
    ];
    let failed = 0;
    for (const name of chosen) {
      const script = path.join(ROOT, 'dist', 'bench', `${name}.js`);
      if (!existsSync(script)) throw new Error(`dna bench: ${script} is missing from this installation`);
      if (BENCHMARKS[name].python && missing !== undefined) {
        console.log(`dna bench: skipping ${name}: its baseline needs Python (${missing})`);
        continue;
      }
      console.error(`dna bench: ${name}: ${BENCHMARKS[name].what}`);
      const status = await run(script, args);
      if (status !== 0) {
        console.error(`dna bench: ${name} failed (exit status ${status})`);
        failed++;
      }
    }
    return failed === 0 ? 0 : 1;
  },
};
