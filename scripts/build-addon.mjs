#!/usr/bin/env node
// `npm install` runs this: finds LibTorch, then builds native/ with cmake-js into build/Release.
// Environment: LIBTORCH / Torch_DIR (which LibTorch), DNA_CUDA=0|1 (force the CUDA path off/on),
// DNA_CUDA_ARCH (CUDA architectures), DNA_DEBUG=1 (debug build), DNA_SKIP_BUILD=1 (skip).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { discover, describe, failureMessage } = require('./find-libtorch.cjs');

const log = (message) => process.stderr.write(`dna-augment: ${message}\n`);

if (process.env.DNA_SKIP_BUILD === '1') {
  log('DNA_SKIP_BUILD=1, not building the addon');
  process.exit(0);
}

const found = discover();
if (!found.cmakeDir) {
  process.stderr.write(failureMessage(found) + '\n');
  process.exit(1);
}
const torch = describe(found.cmakeDir);
let cuda = torch.cuda;
if (process.env.DNA_CUDA === '0') cuda = false;
if (process.env.DNA_CUDA === '1') {
  if (!torch.cuda) {
    log(`DNA_CUDA=1 but the LibTorch in ${torch.cmakeDir} has no CUDA (no libtorch_cuda.so in ${torch.libdir})`);
    process.exit(1);
  }
  cuda = true;
}
log(`LibTorch from ${found.source}: ${torch.cmakeDir} (${cuda ? 'CUDA' : 'CPU only'})`);

const hasCommand = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
const args = [
  require.resolve('cmake-js/bin/cmake-js'),
  'compile',
  '--directory', root,
  '--out', path.join(root, 'build'),
  `--CDTorch_DIR=${torch.cmakeDir}`,
  `--CDDNA_WITH_CUDA=${cuda ? 'ON' : 'OFF'}`,
];
if (process.env.DNA_DEBUG === '1') args.push('--debug');
if (hasCommand('ccache')) {
  args.push('--CDCMAKE_CXX_COMPILER_LAUNCHER=ccache');
  if (cuda) args.push('--CDCMAKE_CUDA_COMPILER_LAUNCHER=ccache');
}
if (cuda && !process.env.CUDACXX && !hasCommand('nvcc') && hasCommand('/usr/local/cuda/bin/nvcc')) {
  args.push('--CDCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc');
}

const env = {
  ...process.env,
  CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? String(os.availableParallelism()),
};
const result = spawnSync(process.execPath, args, { stdio: 'inherit', env, cwd: root });
if (result.status !== 0) {
  log('building the native addon failed (see the compiler output above)');
  process.exit(result.status ?? 1);
}
