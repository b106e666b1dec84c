#!/usr/bin/env bash
# Builds the addon against a LibTorch 2.x (the C++ API of the GPU machines' torch 2.11) taken
# from a torch wheel, in a copy of the tree, and runs the tests of the native layer there: the
# addon must build and behave the same on LibTorch 1.13 (Debian's) and 2.x.
#
#   bash scripts/check-libtorch2.sh [WHEEL]     default: the newest /opt/wheels/torch-2*.whl
#
# Without a wheel it says so and exits 0 (nothing can be downloaded here).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wheel="${1:-$(ls /opt/wheels/torch-2*.whl 2>/dev/null | sort -V | tail -n 1 || true)}"
if [ -z "$wheel" ] || [ ! -f "$wheel" ]; then
  echo "check:libtorch2: no torch 2.x wheel (looked in /opt/wheels): not checked"
  exit 0
fi
[ -d "$root/node_modules" ] || { echo "check:libtorch2: needs node_modules (npm ci first)" >&2; exit 1; }

work="${DNA_LIBTORCH2_DIR:-/tmp/dna-libtorch2}"
mkdir -p "$work"
# The wheel's LibTorch (headers, libraries, CMake config), unpacked once per wheel.
if [ ! -f "$work/torch/.from" ] || [ "$(cat "$work/torch/.from")" != "$wheel" ]; then
  rm -rf "$work/torch"
  echo "check:libtorch2: unpacking $(basename "$wheel")"
  unzip -q -o "$wheel" 'torch/include/*' 'torch/lib/*' 'torch/share/cmake/*' -d "$work"
  echo "$wheel" > "$work/torch/.from"
fi

# A copy of the tree with its own build/ and dist/.
tree="$work/tree"
rm -rf "$tree"
bash "$root/scripts/copy-tree.sh" "$root" "$tree"
ln -s "$root/node_modules" "$tree/node_modules"
cd "$tree"
export LIBTORCH="$work/torch" CCACHE_BASEDIR="$tree"
node scripts/build-addon.mjs
node node_modules/typescript/bin/tsc -p tsconfig.json
node -e "import('./dist/lib/index.js').then((m) => console.log('check:libtorch2: backend', JSON.stringify(m.backend())))"
node node_modules/ava/entrypoints/cli.mjs dist/test/tensor-ops.test.js dist/test/tensor-io.test.js dist/test/autograd.test.js \
  dist/test/augment.test.js dist/test/cuda.test.js dist/test/models.test.js dist/test/execution.test.js dist/test/optim.test.js \
  dist/test/checkpoint.test.js dist/test/errors.test.js \
  dist/test/distributed.test.js dist/test/distributed-ranks.test.js dist/test/distributed-faults.test.js
