#!/usr/bin/env node
// Finds the LibTorch to build against. One discovery for both build systems:
// scripts/build-addon.mjs (cmake-js) and binding.gyp (node-gyp, via `<!(node ...)`).
//
// Order: LIBTORCH / Torch_DIR, a Python torch (torch.utils.cmake_prefix_path), the system.
// Usage: node scripts/find-libtorch.cjs [--json | --cmake-dir | --include | --libdir | --cxxflags | --cuda]
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const SYSTEM_CMAKE_DIRS = [
  '/usr/lib/x86_64-linux-gnu/cmake/Torch',
  '/usr/lib/aarch64-linux-gnu/cmake/Torch',
  '/usr/local/libtorch/share/cmake/Torch',
  '/opt/libtorch/share/cmake/Torch',
  '/usr/local/share/cmake/Torch',
  '/usr/share/cmake/Torch',
];

/** A candidate is a folder holding TorchConfig.cmake. */
function cmakeDirFromPrefix(prefix) {
  const candidates = [
    prefix,
    path.join(prefix, 'Torch'),
    path.join(prefix, 'share', 'cmake', 'Torch'),
    path.join(prefix, 'lib', 'cmake', 'Torch'),
  ];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'TorchConfig.cmake')));
}

function pythonTorchPrefix(python) {
  try {
    const out = execFileSync(python, ['-c', 'import torch, torch.utils; print(torch.utils.cmake_prefix_path)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 60_000,
    });
    return out.trim().split('\n').pop();
  } catch {
    return undefined;
  }
}

function discover() {
  const tried = [];
  const fromEnv = [
    ['LIBTORCH', process.env.LIBTORCH],
    ['Torch_DIR', process.env.Torch_DIR],
  ];
  for (const [name, value] of fromEnv) {
    if (!value) {
      tried.push(`${name}: not set`);
      continue;
    }
    const dir = cmakeDirFromPrefix(path.resolve(value));
    if (dir) return { cmakeDir: dir, source: name, tried };
    // An explicit setting that does not hold a LibTorch is an error, not something to skip.
    return {
      error: `${name}=${value} does not contain TorchConfig.cmake (looked in it, Torch/, share/cmake/Torch/, lib/cmake/Torch/)`,
      tried,
    };
  }

  const pythons = [process.env.PYTHON, 'python3', '/usr/bin/python3', 'python'].filter(Boolean);
  for (const python of [...new Set(pythons)]) {
    const prefix = pythonTorchPrefix(python);
    if (!prefix) {
      tried.push(`${python}: no importable torch`);
      continue;
    }
    const dir = cmakeDirFromPrefix(prefix);
    if (dir) return { cmakeDir: dir, source: `Python torch (${python})`, tried };
    tried.push(`${python}: torch found, but ${prefix} has no TorchConfig.cmake`);
  }

  for (const dir of SYSTEM_CMAKE_DIRS) {
    if (fs.existsSync(path.join(dir, 'TorchConfig.cmake'))) return { cmakeDir: dir, source: 'system', tried };
  }
  tried.push(`system: none of ${SYSTEM_CMAKE_DIRS.join(', ')}`);
  return { tried };
}

/**
 * The install prefix, as TorchConfig.cmake computes it: LibTorch zips and Python wheels put it
 * three folders above (<prefix>/share/cmake/Torch), Debian four (/usr/lib/<triplet>/cmake/Torch).
 */
function installPrefix(cmakeDir, config) {
  if (process.env.TORCH_INSTALL_PREFIX) return process.env.TORCH_INSTALL_PREFIX;
  const relative = /get_filename_component\(TORCH_INSTALL_PREFIX "\$\{CMAKE_CURRENT_LIST_DIR\}\/([./]+)"/.exec(config);
  if (relative) return path.resolve(cmakeDir, relative[1]);
  const candidates = [path.resolve(cmakeDir, '../../..'), path.resolve(cmakeDir, '../../../..')];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'include', 'torch'))) ?? candidates[1];
}

/** Fills in what a build without CMake (node-gyp) needs from a TorchConfig.cmake folder. */
function describe(cmakeDir) {
  const config = fs.readFileSync(path.join(cmakeDir, 'TorchConfig.cmake'), 'utf8');
  const prefix = installPrefix(cmakeDir, config);
  const include = [path.join(prefix, 'include'), path.join(prefix, 'include', 'torch', 'csrc', 'api', 'include')];
  // Debian puts the libraries beside cmake/ (lib/<triplet>), LibTorch zips and wheels in prefix/lib.
  const libCandidates = [path.join(prefix, 'lib'), path.resolve(cmakeDir, '../..')];
  const libdir = libCandidates.find((dir) => fs.existsSync(path.join(dir, 'libtorch.so'))) ?? libCandidates[0];
  const abi = /set\(TORCH_CXX_FLAGS "([^"]*)"\)/.exec(config);
  const cxxflags = abi ? abi[1] : '';
  const cuda = fs.existsSync(path.join(libdir, 'libtorch_cuda.so'));
  return { cmakeDir, prefix, include, libdir, cxxflags, cuda };
}

function failureMessage(result) {
  return [
    'dna-augment: no LibTorch found. Tried, in order:',
    ...result.tried.map((line) => `  - ${line}`),
    ...(result.error ? [`  - ${result.error}`] : []),
    'Get one of:',
    '  - Debian/Ubuntu: apt-get install libtorch-dev',
    '  - a LibTorch zip from pytorch.org, unpacked, then LIBTORCH=/path/to/libtorch npm install',
    '  - a Python torch (pip install torch), found through python3, or LIBTORCH=$(python3 -c "import torch; print(torch.utils.cmake_prefix_path)")',
  ].join('\n');
}

function main() {
  const result = discover();
  if (!result.cmakeDir) {
    process.stderr.write(failureMessage(result) + '\n');
    process.exit(1);
  }
  const info = { ...describe(result.cmakeDir), source: result.source };
  const mode = process.argv[2] ?? '--json';
  const outputs = {
    '--json': () => JSON.stringify(info, null, 2),
    '--cmake-dir': () => info.cmakeDir,
    '--include': () => info.include.join(' '),
    '--libdir': () => info.libdir,
    '--cxxflags': () => info.cxxflags,
    '--cuda': () => (info.cuda ? '1' : '0'),
  };
  if (!outputs[mode]) {
    process.stderr.write(`unknown option ${mode}; one of ${Object.keys(outputs).join(', ')}\n`);
    process.exit(2);
  }
  process.stdout.write(outputs[mode]() + '\n');
}

module.exports = { discover, describe, failureMessage };
if (require.main === module) main();
