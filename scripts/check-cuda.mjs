#!/usr/bin/env node
// Compiles every .cu file under native/ and examples/ with nvcc (device code for sm_90 by
// default), and the NCCL backend of distributed runs where nccl.h is found, so that CUDA compile
// errors show up on machines without a GPU. DNA_CUDA_ARCH overrides the target
// (e.g. "80" or "90a"); NVCC the compiler.
//
// The C++ sources of the CUDA build (native/**/cuda/*.cc, which use LibTorch's CUDA headers) are
// checked too, with g++ -fsyntax-only against the headers of a torch 2.x wheel (the newest
// /opt/wheels/torch-2*.whl, or DNA_TORCH_WHEEL) and the CUDA toolkit's; without a wheel they are
// skipped, saying so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function findNvcc() {
  const candidates = [process.env.NVCC, process.env.CUDACXX, 'nvcc', '/usr/local/cuda/bin/nvcc'].filter(Boolean);
  return candidates.find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
}

function cudaSources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return cudaSources(full);
    return entry.name.endsWith('.cu') ? [full] : [];
  });
}

const nvcc = findNvcc();
if (!nvcc) {
  console.error('check:cuda: nvcc not found (set NVCC=/path/to/nvcc, or install the CUDA toolkit)');
  process.exit(1);
}
const sources = ['native', 'examples'].flatMap((dir) => cudaSources(path.join(root, dir)));
if (sources.length === 0) {
  console.log('check:cuda: no .cu sources under native/ or examples/');
  process.exit(0);
}

// The kernels are compiled with LibTorch's ABI flag, as in the real build.
let abi = [];
let torch;
try {
  const { discover, describe } = require('./find-libtorch.cjs');
  const found = discover();
  if (found.cmakeDir) {
    torch = describe(found.cmakeDir);
    abi = torch.cxxflags.split(/\s+/).filter(Boolean);
  }
} catch {
  // No LibTorch: the kernels do not include it, so compile without the flag.
}

// The toolkit's headers: CUDA_HOME or CUDA_PATH, else beside nvcc (bin/../include), else
// /usr/local/cuda. nvcc may be a wrapper script on the PATH, so its own location is a guess.
function toolkitInclude() {
  const nvccPath = nvcc.includes('/')
    ? nvcc
    : spawnSync('sh', ['-c', `command -v ${nvcc}`], { encoding: 'utf8' }).stdout.trim();
  const besideNvcc = nvccPath && path.dirname(path.dirname(fs.realpathSync(nvccPath)));
  return [process.env.CUDA_HOME, process.env.CUDA_PATH, besideNvcc, '/usr/local/cuda']
    .filter(Boolean)
    .map((dir) => path.join(dir, 'include'))
    .find((dir) => fs.existsSync(path.join(dir, 'cuda_runtime.h')));
}
const cudaInclude = toolkitInclude();

const arch = process.env.DNA_CUDA_ARCH || '90';
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dna-check-cuda-'));
let failed = 0;
for (const source of sources) {
  const object = path.join(out, path.basename(source) + '.o');
  const args = [
    '-std=c++17',
    `-arch=sm_${arch}`,
    '-O2',
    '-Xcompiler',
    '-fPIC',
    ...abi,
    '-I',
    path.join(root, 'native'),
    '-c',
    source,
    '-o',
    object,
  ];
  const result = spawnSync(nvcc, args, { stdio: 'inherit' });
  const name = path.relative(root, source);
  if (result.status === 0) console.log(`check:cuda: ok   ${name} (sm_${arch})`);
  else {
    console.error(`check:cuda: FAIL ${name}`);
    failed += 1;
  }
}
console.log(`check:cuda: ${sources.length - failed} of ${sources.length} CUDA sources compiled with ${nvcc}`);

// The CUDA build's host sources, against a wheel's LibTorch headers.
function newestWheel() {
  if (process.env.DNA_TORCH_WHEEL) return process.env.DNA_TORCH_WHEEL;
  const dir = '/opt/wheels';
  const wheels = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^torch-2.*\.whl$/.test(f)) : [];
  return wheels.length === 0 ? undefined : path.join(dir, wheels.sort().at(-1));
}
function hostSources(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return hostSources(full);
    return entry.name.endsWith('.cc') && full.split(path.sep).includes('cuda') ? [full] : [];
  });
}
const wheel = newestWheel();
const hosts = hostSources(path.join(root, 'native'));
if (wheel === undefined) {
  console.log(`check:cuda: no torch 2.x wheel (looked in /opt/wheels): ${hosts.length} CUDA host sources not checked`);
} else {
  const headers = path.join(out, 'wheel');
  const unzip = spawnSync('unzip', ['-q', '-o', wheel, 'torch/include/*', '-d', headers], { stdio: 'inherit' });
  if (unzip.status !== 0) {
    console.error(`check:cuda: FAIL could not unpack the headers of ${wheel}`);
    failed += 1;
  } else {
    // A CPU wheel lacks the one header its CUDA build generates; it only names the library's linkage.
    const generated = path.join(out, 'generated', 'c10', 'cuda', 'impl');
    fs.mkdirSync(generated, { recursive: true });
    fs.writeFileSync(path.join(generated, 'cuda_cmake_macros.h'), '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n');
    const include = path.join(headers, 'torch', 'include');
    const napi = require('node-addon-api').include_dir;
    const nodeHeaders = path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include');
    for (const source of hosts) {
      const args = [
        '-fsyntax-only',
        '-std=c++20',
        '-D_GLIBCXX_USE_CXX11_ABI=1',
        '-DDNA_WITH_CUDA=1',
        '-DNAPI_VERSION=8',
        '-DNAPI_CPP_EXCEPTIONS',
        `-I${path.join(out, 'generated')}`,
        `-I${include}`,
        `-I${path.join(include, 'torch', 'csrc', 'api', 'include')}`,
        ...(cudaInclude ? [`-I${cudaInclude}`] : []),
        `-I${path.join(root, 'native')}`,
        `-I${path.join(root, napi)}`,
        `-I${nodeHeaders}`,
        source,
      ];
      const result = spawnSync('g++', args, { stdio: ['ignore', 'ignore', 'inherit'] });
      const name = path.relative(root, source);
      if (result.status === 0) console.log(`check:cuda: ok   ${name} (against ${path.basename(wheel)}'s headers)`);
      else {
        console.error(`check:cuda: FAIL ${name}`);
        failed += 1;
      }
    }
  }
}
fs.rmSync(out, { recursive: true, force: true });

// The NCCL backend of distributed runs is host C++ (native/distributed/backends.cc, the one file
// with c10d's ProcessGroupNCCL.hpp): checked as a CUDA build compiles it, against the LibTorch
// found, CUDA's headers and NCCL's nccl.h. DNA_REQUIRE_NCCL makes the file refuse to compile
// without its NCCL part, so a header that is not found cannot pass unnoticed.
const ncclInclude = [
  process.env.NCCL_INCLUDE_DIR,
  process.env.NCCL_HOME && path.join(process.env.NCCL_HOME, 'include'),
  torch && path.resolve(torch.cmakeDir ?? '', '..', '..', '..', '..', 'nvidia', 'nccl', 'include'),
  cudaInclude,
  '/usr/include',
].find((dir) => dir && fs.existsSync(path.join(dir, 'nccl.h')));
if (!torch) {
  console.log('check:cuda: the NCCL backend was not compiled: no LibTorch found');
} else if (!ncclInclude) {
  console.log(
    'check:cuda: the NCCL backend (native/distributed/backends.cc) was not compiled: no nccl.h found (set NCCL_INCLUDE_DIR)',
  );
} else {
  const includes = [...torch.include, cudaInclude, ncclInclude, path.join(root, 'native')]
    .filter(Boolean)
    .flatMap((dir) => ['-I', dir]);
  const args = [
    '-std=c++17',
    '-fsyntax-only',
    '-DDNA_WITH_CUDA=1',
    '-DDNA_REQUIRE_NCCL=1',
    ...abi,
    ...includes,
    path.join(root, 'native', 'distributed', 'backends.cc'),
  ];
  const result = spawnSync(process.env.CXX || 'c++', args, { stdio: 'inherit' });
  if (result.status === 0)
    console.log(`check:cuda: ok   native/distributed/backends.cc with NCCL (nccl.h from ${ncclInclude})`);
  else {
    console.error('check:cuda: FAIL native/distributed/backends.cc with NCCL');
    failed += 1;
  }
}
process.exit(failed === 0 ? 0 : 1);
