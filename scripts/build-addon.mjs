#!/usr/bin/env node
// `npm install` runs this: finds LibTorch, then builds native/ with cmake-js into build/Release.
// Environment: LIBTORCH / Torch_DIR (which LibTorch), DNA_CUDA=0|1 (force the CUDA path off/on),
// DNA_CUDA_ARCH (CUDA architectures), DNA_DEBUG=1 (debug build), DNA_SKIP_BUILD=1 (skip).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { cmakeDefines, torchSettings } from './cmake-settings.mjs';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const log = (message) => process.stderr.write(`dna-augment: ${message}\n`);

if (process.env.DNA_SKIP_BUILD === '1') {
  log('DNA_SKIP_BUILD=1, not building the addon');
  process.exit(0);
}

const settings = torchSettings(log);
log(`LibTorch from ${settings.source}: ${settings.torch.cmakeDir} (${settings.cuda ? 'CUDA' : 'CPU only'})`);

const args = [
  require.resolve('cmake-js/bin/cmake-js'),
  'compile',
  '--directory',
  root,
  '--out',
  path.join(root, 'build'),
  `--CDDNA_WITH_CUDA=${settings.cuda ? 'ON' : 'OFF'}`,
  ...cmakeDefines(settings).map((define) => `--CD${define}`),
];
if (process.env.DNA_DEBUG === '1') args.push('--debug');

const env = {
  ...process.env,
  CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? String(os.availableParallelism()),
};
const result = spawnSync(process.execPath, args, { stdio: 'inherit', env, cwd: root });
if (result.status !== 0) {
  log('building the native addon failed (see the compiler output above)');
  process.exit(result.status ?? 1);
}
