#!/usr/bin/env node
// `npm install` runs this: finds LibTorch, then builds native/ with cmake-js into build/Release,
// saying first what it builds and about how long that takes (a first build compiles every source
// against LibTorch's large headers: minutes, which a silent terminal would not explain).
// Environment: LIBTORCH / Torch_DIR (which LibTorch), DNA_CUDA=0|1 (force the CUDA path off/on),
// DNA_CUDA_ARCH (CUDA architectures), DNA_DEBUG=1 (debug build), DNA_SKIP_BUILD=1 (skip).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
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

/** The C++ and CUDA sources under native/, counted for the line that announces the build. */
function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(path.join(dir, entry.name)) : /\.(cc|cu)$/.test(entry.name) ? [entry.name] : [],
  );
}

const jobs = Number(process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? os.availableParallelism());
const count = sources(path.join(root, 'native')).length;
// Measured: about 10 core-seconds a source against Debian's LibTorch 1.13 (more with CUDA); ccache
// makes a rebuild of unchanged sources take seconds.
const minutes = Math.max(1, Math.round((count * 10 * (settings.cuda ? 2 : 1)) / Math.max(1, jobs) / 60));
// One line that fits 80 columns: the sources, the jobs (CMAKE_BUILD_PARALLEL_LEVEL), the time a
// first build takes when nothing else runs (a busy machine takes longer: 9 minutes at a load of 12
// on 2 cores).
log(
  `building the addon: ${count} C++${settings.cuda ? '/CUDA' : ''} sources, ${jobs} ` +
    `${jobs === 1 ? 'job' : 'jobs'}, about ${minutes} min if idle`,
);
const started = Date.now();

const env = {
  ...process.env,
  CMAKE_BUILD_PARALLEL_LEVEL: String(jobs),
};
const result = spawnSync(process.execPath, args, { stdio: 'inherit', env, cwd: root });
if (result.status !== 0) {
  log('building the native addon failed (see the compiler output above)');
  process.exit(result.status ?? 1);
}
log(`built the native addon in ${Math.round((Date.now() - started) / 1000)} s: build/Release/dna_native.node`);
