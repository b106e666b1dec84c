// What the CMake builds (the addon, custom op libraries) pass to CMake: which LibTorch, whether
// to build CUDA, and the compiler launchers. Environment: LIBTORCH / Torch_DIR (which
// LibTorch), DNA_CUDA=0|1 (force the CUDA path off/on).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { discover, describe, failureMessage } = require('./find-libtorch.cjs');

export const hasCommand = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;

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
  const defines = [`Torch_DIR=${torch.cmakeDir}`];
  if (hasCommand('ccache')) {
    defines.push('CMAKE_CXX_COMPILER_LAUNCHER=ccache');
    if (cuda) defines.push('CMAKE_CUDA_COMPILER_LAUNCHER=ccache');
  }
  if (cuda && !process.env.CUDACXX && !hasCommand('nvcc') && hasCommand('/usr/local/cuda/bin/nvcc')) {
    defines.push('CMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc');
  }
  return defines;
}
