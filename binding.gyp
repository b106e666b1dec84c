# node-gyp build of the addon: the fallback for CPU toolchains without CMake.
# The main build is CMakeLists.txt (cmake-js, through scripts/build-addon.mjs); this file builds
# the same C++ sources into the same build/Release/dna_native.node.
#
# LibTorch is found by scripts/find-libtorch.cjs, the same discovery the cmake-js build uses
# (LIBTORCH / Torch_DIR, a Python torch, the system).
#
# node-gyp compiles C++ only, so this build is always the CPU path: native/**/*.cu kernels
# need nvcc and the cmake-js build (npm install / scripts/build-addon.mjs). Against a CUDA
# LibTorch it still links and runs on the CPU.
{
  'variables': {
    'torch_libdir%': '<!(node scripts/find-libtorch.cjs --libdir)',
  },
  'targets': [
    {
      'target_name': 'dna_native',
      # Every native/**/*.cc outside a cuda/ folder, as paths relative to this file.
      # readdirSync's recursive option needs Node >= 20.1.
      'sources': [
        "<!@(node -p \"require('fs').readdirSync('native', { recursive: true }).map((f) => f.split(require('path').sep).join('/')).filter((f) => f.endsWith('.cc') && !f.split('/').includes('cuda')).sort().map((f) => 'native/' + f).join(' ')\")",
      ],
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        '<!@(node scripts/find-libtorch.cjs --include)',
        'native',
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
      ],
      # Node's common.gypi turns exceptions and RTTI off and picks its own -std; LibTorch and
      # node-addon-api's C++ exceptions need both on.
      'cflags!': ['-fno-exceptions', '-fno-rtti'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-std=gnu++17', '-std=gnu++20'],
      'cflags_cc': [
        '-std=c++17',
        '-fexceptions',
        '-frtti',
        '-Wall',
        '-Wno-unused-parameter',
        # at::parallel_for is inline and needs OpenMP to run in parallel (LibTorch builds with it).
        '-fopenmp',
        # LibTorch's C++ ABI (-D_GLIBCXX_USE_CXX11_ABI=0|1); it must match.
        '<!@(node scripts/find-libtorch.cjs --cxxflags)',
      ],
      'ldflags': [
        '-fopenmp',
        '-L<(torch_libdir)',
        '-Wl,-rpath,<(torch_libdir)',
      ],
      # --no-as-needed keeps every LibTorch library loaded even where none of its symbols is
      # referenced directly.
      'libraries': [
        '-Wl,--no-as-needed',
        '-ltorch',
        '-ltorch_cpu',
        '-lc10',
        '-Wl,--as-needed',
        # dlopen for loadOpLibrary.
        '-ldl',
      ],
    },
  ],
}
