#!/usr/bin/env bash
# Proves that the node-gyp build (binding.gyp) gives a loadable addon, without touching the
# cmake-js build in build/: builds a copy of the package in a temporary folder, then loads its
# build/Release/dna_native.node and runs a tensor through it.
#
# Usage: bash scripts/check-gyp.sh   (npm run check:gyp)
# Environment: LIBTORCH / Torch_DIR as for the main build; NODEDIR to choose the Node headers
# (default: the running node's install prefix when it has include/node, so nothing is downloaded).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/dna-gyp-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT

fail() {
  echo "check-gyp: FAIL: $*"
  exit 1
}

if [[ ! -x "$root/node_modules/.bin/node-gyp" ]]; then
  fail "node_modules/.bin/node-gyp is missing (run npm install; node-gyp is a devDependency)"
fi

cp -R "$root/package.json" "$root/binding.gyp" "$root/native" "$root/scripts" "$work/"
ln -s "$root/node_modules" "$work/node_modules"

# Node's headers: use the local install's (include/node/common.gypi) instead of downloading.
nodedir="${NODEDIR:-${npm_config_nodedir:-}}"
if [[ -z "$nodedir" ]]; then
  prefix="$(node -p "require('path').resolve(process.execPath, '..', '..')")"
  if [[ -f "$prefix/include/node/common.gypi" ]]; then
    nodedir="$prefix"
  fi
fi
gyp_args=(rebuild)
if [[ -n "$nodedir" ]]; then
  gyp_args+=("--nodedir=$nodedir")
fi

export JOBS="${JOBS:-max}"
if [[ -z "${CXX:-}" ]] && command -v ccache >/dev/null 2>&1; then
  export CXX="ccache g++"
fi

echo "check-gyp: building in $work (node-gyp ${gyp_args[*]}, CXX=${CXX:-default}, JOBS=$JOBS)"
start=$SECONDS
if ! (cd "$work" && node_modules/.bin/node-gyp "${gyp_args[@]}" >"$work/gyp.log" 2>&1); then
  tail -n 60 "$work/gyp.log"
  fail "node-gyp rebuild failed (last lines of its log above)"
fi
build_s=$((SECONDS - start))

addon="$work/build/Release/dna_native.node"
[[ -f "$addon" ]] || fail "node-gyp finished but $addon is missing"

if ! result="$(node -e '
  const native = require(process.argv[1]);
  const info = native.backend();
  if (typeof info.torch !== "string" || info.torch === "") throw new Error(`backend().torch is ${JSON.stringify(info.torch)}`);
  const x = native.fromData(new Float32Array([1, 2, 3, 4]), [2, 2]);
  const y = native.add(x, 1);
  const data = Array.from(native.data(y));
  if (JSON.stringify(data) !== JSON.stringify([2, 3, 4, 5])) throw new Error(`fromData + 1 gave ${JSON.stringify(data)}`);
  console.log(`LibTorch ${info.torch}, cudaBuilt=${info.cudaBuilt}, [1,2,3,4] + 1 = [${data}]`);
' "$addon" 2>&1)"; then
  echo "$result"
  fail "the node-gyp addon does not load or compute correctly"
fi

echo "check-gyp: PASS: node-gyp addon built in ${build_s}s and loads ($result)"
