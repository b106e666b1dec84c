// What the CMake builds (the addon, custom op libraries) pass to CMake: which LibTorch, whether
// to build CUDA, and the compiler launchers. Environment: LIBTORCH / Torch_DIR (which
// LibTorch), DNA_CUDA=0|1 (force the CUDA path off/on).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { discover, describe, failureMessage } = require('./find-libtorch.cjs');

export const hasCommand = (command) =>
  spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;

/**
 * The LibTorch to build against and whether to build CUDA: { torch, source, cuda }. Exits the
 * process with the discovery message when no LibTorch is found.
 */
export function torchSettings(log) {
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
  return { torch, source: found.source, cuda };
}

/** CMake cache entries (NAME=VALUE) for LibTorch, ccache and the CUDA compiler. */
export function cmakeDefines({ torch, cuda }) {
  const defines = [`Torch_DIR=${torch.cmakeDir}`, ...pinnedTorchFiles(torch)];
  if (hasCommand('ccache')) {
    defines.push('CMAKE_CXX_COMPILER_LAUNCHER=ccache');
    if (cuda) defines.push('CMAKE_CUDA_COMPILER_LAUNCHER=ccache');
  }
  if (cuda && !process.env.CUDACXX && !hasCommand('nvcc') && hasCommand('/usr/local/cuda/bin/nvcc')) {
    defines.push('CMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc');
  }
  // LibTorch's CMake config (public/cuda.cmake) sets CMAKE_CUDA_ARCHITECTURES to OFF and adds
  // -gencode flags of its own to CMAKE_CUDA_FLAGS, for TORCH_CUDA_ARCH_LIST or else for the GPUs
  // it detects; without a GPU it falls back to a list that CUDA 13's nvcc partly rejects. So
  // DNA_CUDA_ARCH ("90", "80;90a") is passed on in LibTorch's notation ("9.0", "8.0;9.0a").
  const torchArchs = torchCudaArchList(process.env.DNA_CUDA_ARCH);
  if (cuda && torchArchs && !process.env.TORCH_CUDA_ARCH_LIST) defines.push(`TORCH_CUDA_ARCH_LIST=${torchArchs}`);
  // Some LibTorch releases look for the NVTX3 headers only in their own source tree
  // (find_path(nvtx3_dir ... NO_DEFAULT_PATH)) and otherwise link CUDA::nvToolsExt, which CUDA
  // 12.9 and later no longer have. The toolkit's own headers answer that lookup.
  const nvtx = cuda ? cudaNvtxInclude() : undefined;
  if (nvtx) defines.push(`nvtx3_dir=${nvtx}`);
  return defines;
}

/** The include folder of the CUDA toolkit (CUDA_HOME, CUDA_PATH, CUDACXX or nvcc) when it has nvtx3/. */
function cudaNvtxInclude() {
  const roots = [process.env.CUDA_HOME, process.env.CUDA_PATH];
  for (const compiler of [process.env.CUDACXX, 'nvcc', '/usr/local/cuda/bin/nvcc']) {
    if (!compiler) continue;
    const found = spawnSync('sh', ['-c', `command -v "${compiler}"`], { encoding: 'utf8' }).stdout?.trim();
    if (found) roots.push(path.resolve(fs.realpathSync(found), '..', '..'));
  }
  const include = roots
    .filter(Boolean)
    .map((root) => path.join(root, 'include'))
    .find((dir) => fs.existsSync(path.join(dir, 'nvtx3')));
  return include;
}

/** "90" -> "9.0", "80;90a" -> "8.0;9.0a", "100" -> "10.0"; undefined for anything else (native, all). */
export function torchCudaArchList(archs) {
  if (!archs) return undefined;
  const list = archs.split(/[;,\s]+/).filter(Boolean);
  if (list.length === 0 || !list.every((arch) => /^\d{2,3}[af]?$/.test(arch))) return undefined;
  return list.map((arch) => arch.replace(/^(\d+)(\d)([af]?)$/, '$1.$2$3')).join(';');
}

// Folders the linker and CMake search anyway (a system LibTorch, Debian's, lives there).
const SYSTEM_LIBDIR = /^\/(usr\/)?lib(32|64)?(\/[^/]+-linux-gnu)?$/;

/**
 * A LibTorch outside the system folders (a Python wheel, a zip) gets its own Caffe2 config and
 * libraries named outright: TorchConfig.cmake looks for them with find_package(Caffe2 PATHS ...)
 * and find_library(... PATHS <prefix>/lib), which search the system folders first, so that with
 * a system LibTorch installed too the build would take the system's targets and libraries.
 */
function pinnedTorchFiles(torch) {
  if (!torch.libdir || SYSTEM_LIBDIR.test(path.resolve(torch.libdir))) return [];
  const pinned = [];
  const caffe2 = path.resolve(torch.cmakeDir, '..', 'Caffe2');
  if (fs.existsSync(path.join(caffe2, 'Caffe2Config.cmake'))) pinned.push(`Caffe2_DIR=${caffe2}`);
  for (const [variable, name] of [
    ['TORCH_LIBRARY', 'torch'],
    ['c10_LIBRARY', 'c10'],
    ['C10_CUDA_LIBRARY', 'c10_cuda'],
  ]) {
    const file = path.join(torch.libdir, `lib${name}.so`);
    if (fs.existsSync(file)) pinned.push(`${variable}=${file}`);
  }
  return pinned;
}
