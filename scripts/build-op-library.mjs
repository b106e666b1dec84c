#!/usr/bin/env node
// Builds a custom op library (a CMake project, such as examples/custom-op) against the LibTorch
// dna-augment uses, so that both share one dispatcher:
//
//   node scripts/build-op-library.mjs <source dir> <build dir>
//
// Same discovery and environment as the addon's build (LIBTORCH / Torch_DIR, DNA_CUDA=0|1); the
// project gets Torch_DIR and WITH_CUDA=ON|OFF, and ninja and ccache when present. A configured
// build folder is only rebuilt (incremental).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { cmakeDefines, hasCommand, torchSettings } from './cmake-settings.mjs';

const log = (message) => process.stderr.write(`build-op-library: ${message}\n`);

const [source, build] = process.argv.slice(2);
if (!source || !build) {
  log('usage: node scripts/build-op-library.mjs <source dir> <build dir>');
  process.exit(2);
}
if (!fs.existsSync(path.join(source, 'CMakeLists.txt'))) {
  log(`no CMakeLists.txt in ${path.resolve(source)}`);
  process.exit(2);
}

const run = (args) => {
  const result = spawnSync('cmake', args, { stdio: 'inherit' });
  if (result.status !== 0) {
    log(`cmake ${args[0]} ${args[1]} failed (see the output above)`);
    process.exit(result.status ?? 1);
  }
};

if (!fs.existsSync(path.join(build, 'CMakeCache.txt'))) {
  const settings = torchSettings(log);
  const defines = [...cmakeDefines(settings), `WITH_CUDA=${settings.cuda ? 'ON' : 'OFF'}`];
  if (process.env.DNA_CUDA_ARCH) defines.push(`CMAKE_CUDA_ARCHITECTURES=${process.env.DNA_CUDA_ARCH}`);
  run([
    '-S',
    source,
    '-B',
    build,
    ...(hasCommand('ninja') ? ['-G', 'Ninja'] : []),
    ...defines.map((define) => `-D${define}`),
  ]);
}
run(['--build', build, '--parallel', String(os.availableParallelism())]);
