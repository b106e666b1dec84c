#!/usr/bin/env bash
# The GPU check: builds the addon with CUDA against the Python torch of a GPU machine, loads it,
# runs the tests that exercise the CUDA path and the GPU benchmark, and prints a table of what
# passed. The GPU machine has no Node.js, no npm packages and no network, so the check comes in
# two halves:
#
#   bash scripts/gpu-check.sh pack       here, with Node.js and node_modules: writes .device/
#                                        (Node's binary, the compiled JS, the node_modules the run
#                                        needs, Fashion-MNIST) and prints the carry list
#   bash scripts/gpu-check.sh run        there, from the project root, with .device/ carried along
#   bash scripts/gpu-check.sh run --dry  the same run on a machine without a GPU (GPU_CHECK_DRY=1):
#                                        a fresh copy of the tree, the LibTorch the usual discovery
#                                        finds, DNA_CUDA=0; proves the mechanics
#
# Each step of `run` writes $OUT/<step>.log (OUT defaults to ./gpu-check-out; the dry run's to the
# copy's) and takes the seconds and exit status down; a failed step does not stop the next ones,
# except that nothing runs after a failed build. Steps that would start after GPU_CHECK_BUDGET_S
# seconds (default 540) are skipped, and each step is stopped when the budget runs out. The
# summary table goes to stdout and $OUT/summary.txt; the exit status is non-zero when a step
# failed. $OUT holds at most eight files (what the GPU machine's tool sends back): the six step
# logs, gpu-bench.json and summary.txt.
#
# Environment: GPU_CHECK_BUDGET_S (seconds for the whole run), GPU_CHECK_DRY=1 (same as --dry),
# GPU_CHECK_DRY_DIR (where the dry run copies the tree; default a new folder under /tmp),
# GPU_CHECK_TORCH=python|auto (where LibTorch comes from; default python for a real run, the
# usual discovery for a dry one), PYTHON (the python3 that has torch), DNA_CUDA_ARCH (default 90),
# GPU_CHECK_DATA=0 (pack: leave Fashion-MNIST out), GPU_CHECK_LIMIT_MIB (pack: the most that may
# be carried, default 60).
set -euo pipefail

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
root="$(cd "$(dirname "$self")/.." && pwd)"

log() { printf 'gpu-check: %s\n' "$*"; }
die() { printf 'gpu-check: %s\n' "$*" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
size_of() { du -sb "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

# The packages the device run loads, each with its runtime dependencies: cmake-js (and the
# headers it builds with) for the addon and the op libraries, ava for the tests, vega and
# vega-lite for `dna report` (its SVG plots), which the custom-op tests run. sharp (image
# folders), typescript, node-gyp and the rest stay behind: nothing the run tests loads them.
DEVICE_PACKAGES=(cmake-js node-addon-api node-api-headers ava vega vega-lite)
# The test files that exercise the CUDA path and the execution settings (each skips its CUDA
# cases without a GPU); those that are not there yet are left out.
DEVICE_TESTS=(augment models autograd execution custom-ops cuda)
FASHION_MNIST=/usr/share/datasets/fashion-mnist

# ---------------------------------------------------------------------------------------------
# pack: here, with Node.js, node_modules and the TypeScript compiler.

# The node_modules folders that the packages above need at run time, resolved the way Node
# resolves them (nested node_modules first), one path per line relative to the project root.
module_closure() {
  node - "$@" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const root = process.cwd();
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
// The folder of package `name` as seen from the package folder `from`.
function resolve(from, name) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') {
      const candidate = path.join(dir, 'node_modules', name);
      if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    }
    if (dir === root || dir === path.dirname(dir)) return undefined;
  }
}
const found = new Set();
const missing = [];
const queue = process.argv.slice(2).map((name) => [root, name, false]);
while (queue.length > 0) {
  const [from, name, optional] = queue.shift();
  const dir = resolve(from, name);
  if (!dir) {
    if (!optional) missing.push(`${name} (needed from ${path.relative(root, from) || 'the project'})`);
    continue;
  }
  if (found.has(dir)) continue;
  found.add(dir);
  const pkg = readJson(path.join(dir, 'package.json'));
  const peerMeta = pkg.peerDependenciesMeta ?? {};
  for (const dep of Object.keys(pkg.dependencies ?? {})) queue.push([dir, dep, false]);
  for (const dep of Object.keys(pkg.optionalDependencies ?? {})) queue.push([dir, dep, true]);
  for (const dep of Object.keys(pkg.peerDependencies ?? {})) queue.push([dir, dep, Boolean(peerMeta[dep]?.optional)]);
}
if (missing.length > 0) {
  process.stderr.write(`gpu-check: not installed: ${missing.join(', ')}\n`);
  process.exit(1);
}
// A folder nested in another listed one travels with it.
const dirs = [...found].map((dir) => path.relative(root, dir)).sort();
const top = dirs.filter((dir) => !dirs.some((other) => other !== dir && dir.startsWith(other + path.sep)));
process.stdout.write(top.join('\n') + '\n');
EOF
}

# .device/node.tar.xz: Node's binary. The shared recipe fetches the official build of this
# Node version; without it (or without the registry) this machine's binary is used when it is
# a self-contained build.
pack_node() {
  local shared="$root/../shared/gpu/pack-node.sh"
  if [ -f "$shared" ] && (cd "$root" && bash "$shared"); then return; fi
  [ -f .device/node.tar.xz ] && return
  local node_bin
  node_bin="$(command -v node)"
  if ldd "$node_bin" 2>/dev/null | grep -q libnode; then
    die "no .device/node.tar.xz: $shared failed, and $node_bin needs libnode (not self-contained)"
  fi
  log "packing this machine's $node_bin ($(node --version)) as bin/node"
  local tmp
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/bin" && cp "$node_bin" "$tmp/bin/node"
  tar -C "$tmp" -cJf .device/node.tar.xz bin/node
  rm -rf "$tmp"
}

# .device/fashion-mnist.tar: the data set of the custom-op tests (and of `--data fashion-mnist`),
# the images recompressed with xz to carry less; the run puts it where lib/data/idx.ts looks.
pack_data() {
  local out=.device/fashion-mnist.tar
  if [ "${GPU_CHECK_DATA:-1}" = 0 ]; then
    rm -f "$out"
    log "GPU_CHECK_DATA=0: Fashion-MNIST left out (the custom-op tests that read it will fail there)"
    return
  fi
  if [ ! -d "$FASHION_MNIST" ]; then
    log "no $FASHION_MNIST here (apt-get install dataset-fashion-mnist): Fashion-MNIST left out"
    return
  fi
  if [ -f "$out" ] && [ -z "$(find "$FASHION_MNIST" -newer "$out" -type f)" ]; then return; fi
  log "recompressing Fashion-MNIST for the carry (about a minute)"
  local tmp
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/fashion-mnist"
  for file in "$FASHION_MNIST"/*-images-idx3-ubyte.gz; do
    gzip -dc "$file" | nice xz -9e -T0 > "$tmp/fashion-mnist/$(basename "$file" .gz).xz"
  done
  cp "$FASHION_MNIST"/*-labels-idx1-ubyte.gz "$tmp/fashion-mnist/"
  tar -C "$tmp" -cf "$out" fashion-mnist
  rm -rf "$tmp"
}

tree_size() {
  # What travels besides the carried paths: tracked files and untracked ones git does not ignore.
  (cd "$root" && git ls-files -z --cached --others --exclude-standard \
    | xargs -0 -r du -b --apparent-size 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
}

cmd_pack() {
  cd "$root"
  command -v node >/dev/null || die "pack needs Node.js"
  [ -d node_modules ] || die "pack needs node_modules (npm ci first)"
  mkdir -p .device
  grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude

  pack_node

  log "compiling the TypeScript (dist/)"
  nice node node_modules/typescript/bin/tsc -p tsconfig.json
  rm -f .device/dist.tar.xz
  tar -C "$root" -cJf .device/dist.tar.xz dist

  local list
  list="$(mktemp)"
  module_closure "${DEVICE_PACKAGES[@]}" > "$list"
  log "node_modules for the run: $(wc -l < "$list") package folders (closure of ${DEVICE_PACKAGES[*]})"
  rm -f .device/node_modules.tar.xz
  tar -C "$root" -cJf .device/node_modules.tar.xz -T "$list"
  rm -f "$list"

  pack_data

  local limit_mib="${GPU_CHECK_LIMIT_MIB:-60}" total tree
  total="$(size_of .device)"
  tree="$(tree_size)"
  log "carried (.device):"
  for file in .device/*; do printf '  %-32s %s\n' "$file" "$(mib "$(size_of "$file")")"; done
  printf '  %-32s %s\n' 'total carried' "$(mib "$total")" '+ the working tree' "$(mib "$tree")" \
    'travels in all (limit 64 MiB)' "$(mib $((total + tree)))"
  if [ "$total" -gt $((limit_mib * 1048576)) ]; then
    die "what must be carried ($(mib "$total")) is over ${limit_mib} MiB"
  fi
  log 'device tool: command "bash scripts/gpu-check.sh run", carry: [".device"], timeout_s: 600'
}

# ---------------------------------------------------------------------------------------------
# run: on the GPU machine (or, --dry, here), from the project root.

# Copies what the GPU machine would receive into $2: the tree as a checkout has it, then .device/.
copy_tree() {
  bash "$root/scripts/copy-tree.sh" "$1" "$2"
  [ -d "$1/.device" ] && cp -a "$1/.device" "$2/.device"
  return 0
}

# One step, run in a child of this script (`_step NAME`) under the time left, its output in
# $OUT/<log>. Records NAME, status and seconds; prints the end of the log when it fails.
STEPS=() STATUSES=() SECONDS_TAKEN=()
FAILED=0 ENV_LINES=0
record() { STEPS+=("$1"); STATUSES+=("$2"); SECONDS_TAKEN+=("$3"); }
run_step() {
  local name="$1" logname="$2"
  local left=$((BUDGET - (SECONDS - RUN_START)))
  if [ "$left" -le 5 ]; then
    log "[$name] skipped: the budget of ${BUDGET} s is spent"
    record "$name" 'skipped (budget)' 0
    return 0
  fi
  log "[$name] started (log: $OUT/$logname, at most ${left} s)"
  local started=$SECONDS rc=0
  timeout --kill-after=15 "$left" bash "$self" _step "$name" > "$OUT/$logname" 2>&1 || rc=$?
  local took=$((SECONDS - started)) status=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status="FAIL (out of time)"
  elif [ "$rc" -ne 0 ]; then
    status="FAIL (exit $rc)"
  fi
  record "$name" "$status" "$took"
  log "[$name] $status in ${took} s"
  if [ "$status" != ok ]; then
    FAILED=1
    echo "----- last lines of $OUT/$logname -----"
    tail -n 40 "$OUT/$logname"
    echo "-----"
  fi
  # The state a step leaves for the next ones (Torch_DIR, LD_LIBRARY_PATH): shell lines, each
  # taken once.
  local lines
  lines="$(wc -l < "$STATE/env.sh")"
  if [ "$lines" -gt "$ENV_LINES" ]; then
    # shellcheck disable=SC1090
    source <(tail -n "+$((ENV_LINES + 1))" "$STATE/env.sh")
    ENV_LINES="$lines"
  fi
  [ "$status" = ok ]
}

summary() {
  {
    printf '%-10s %-20s %8s\n' step status seconds
    local i
    for i in "${!STEPS[@]}"; do printf '%-10s %-20s %8s\n' "${STEPS[$i]}" "${STATUSES[$i]}" "${SECONDS_TAKEN[$i]}"; done
    printf '%-10s %-20s %8s\n' total "$([ "$FAILED" = 0 ] && echo ok || echo FAILED)" $((SECONDS - RUN_START))
  } | tee "$OUT/summary.txt"
}

# ---- the steps (each runs in a child; what later steps need goes to $STATE/env.sh) ----

# tar -xJ, or Python's lzma where the machine has no xz.
untar_xz() {
  if command -v xz >/dev/null; then
    tar -C "$2" -xJf "$1"
  else
    "${PYTHON:-python3}" -c 'import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as t:
    t.extractall(sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))' "$1" "$2"
  fi
}
unxz_files() {
  local file
  for file in "$@"; do
    if command -v xz >/dev/null; then
      xz -d "$file"
    else
      "${PYTHON:-python3}" -c 'import lzma, os, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[1][:-3], "wb") as dst: shutil.copyfileobj(src, dst)
os.remove(sys.argv[1])' "$file"
    fi
  done
}

step_unpack() {
  set -x
  mkdir -p .node && untar_xz .device/node.tar.xz .node
  node --version
  untar_xz .device/node_modules.tar.xz "$root"
  untar_xz .device/dist.tar.xz "$root"
  ls node_modules | tr '\n' ' '; echo
  set +x
  if [ ! -f .device/fashion-mnist.tar ]; then
    echo "no .device/fashion-mnist.tar: Fashion-MNIST not carried"
  elif [ -f "$FASHION_MNIST/train-images-idx3-ubyte.gz" ] || [ -f "$FASHION_MNIST/train-images-idx3-ubyte" ]; then
    # Already installed here (the dry run): check that the carried copy unpacks to the same data.
    local tmp
    tmp="$(mktemp -d)"
    tar -C "$tmp" -xf .device/fashion-mnist.tar
    unxz_files "$tmp"/fashion-mnist/*.xz
    for file in "$tmp"/fashion-mnist/*-ubyte; do
      gzip -dc "$FASHION_MNIST/$(basename "$file").gz" | cmp - "$file"
    done
    echo "Fashion-MNIST already in $FASHION_MNIST; the carried copy unpacks to the same files"
    rm -rf "$tmp"
  else
    mkdir -p "$(dirname "$FASHION_MNIST")"
    tar -C "$(dirname "$FASHION_MNIST")" -xf .device/fashion-mnist.tar
    unxz_files "$FASHION_MNIST"/*.xz
    ls -l "$FASHION_MNIST"
  fi
}

# Where LibTorch is: a real run asks the Python torch (torch.utils.cmake_prefix_path); the dry
# run takes what the usual discovery finds (scripts/find-libtorch.cjs). Logs the versions of
# everything the build uses.
step_torch() {
  local python="${PYTHON:-python3}" torch_dir
  echo "== node $(node --version), $(uname -srm), $(nproc) cores"
  if [ "$TORCH_FROM" = python ]; then
    "$python" - > "$STATE/torch.txt" <<'EOF'
import glob, os, shlex, sys
import torch, torch.utils
site = os.path.dirname(os.path.dirname(torch.__file__))
nvidia = sorted(set(glob.glob(os.path.join(site, 'nvidia', '*', 'lib')) + glob.glob(os.path.join(site, 'nvidia', 'cu*', 'lib'))))
print('export GPU_CHECK_TORCH_PREFIX=' + shlex.quote(torch.utils.cmake_prefix_path))
print('export GPU_CHECK_NVIDIA_LIBS=' + shlex.quote(':'.join(nvidia)))
print(f'# python {sys.executable} {sys.version.split()[0]}', file=sys.stderr)
print(f'# torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version() if torch.cuda.is_available() else "-"}, '
      f'CXX11 ABI {torch.compiled_with_cxx11_abi()}, CUDA available {torch.cuda.is_available()}', file=sys.stderr)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f'# device {p.name}, capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs', file=sys.stderr)
EOF
    cat "$STATE/torch.txt"
    # shellcheck disable=SC1091
    source "$STATE/torch.txt"
    torch_dir="$GPU_CHECK_TORCH_PREFIX/Torch"
    [ -f "$torch_dir/TorchConfig.cmake" ] || { echo "no TorchConfig.cmake in $torch_dir"; return 1; }
    {
      echo "export Torch_DIR=$(printf '%q' "$torch_dir")"
      echo "export GPU_CHECK_NVIDIA_LIBS=$(printf '%q' "$GPU_CHECK_NVIDIA_LIBS")"
    } >> "$STATE/env.sh"
  else
    torch_dir="$(node scripts/find-libtorch.cjs --cmake-dir)"
    echo "export Torch_DIR=$(printf '%q' "$torch_dir")" >> "$STATE/env.sh"
  fi
  echo "== LibTorch"
  Torch_DIR="$torch_dir" node scripts/find-libtorch.cjs --json
  grep -h 'PACKAGE_VERSION "' "$torch_dir/TorchConfigVersion.cmake" || true
  echo "== tools"
  cmake --version | head -n 1
  if command -v ninja >/dev/null; then echo "ninja $(ninja --version)"; else echo "no ninja (make)"; fi
  g++ --version | head -n 1
  if command -v ccache >/dev/null; then ccache --version | head -n 1; fi
  if [ "$DRY" = 1 ]; then
    echo "== dry run: no GPU, no nvcc, no nvidia-smi"
    return 0
  fi
  # The CUDA toolkit: the first of CUDA_HOME, CUDA_PATH, nvcc's own folder (through links),
  # the TOP that nvcc reports (nvcc on PATH may be a wrapper script) and /usr/local/cuda that has
  # bin/nvcc and the runtime headers; resolved, so that /usr/local/cuda and /usr/local/cuda-13.x
  # are not taken for two installs.
  local nvcc cuda_root="" candidate
  nvcc="$(command -v nvcc || true)"
  local candidates=("${CUDA_HOME:-}" "${CUDA_PATH:-}")
  if [ -n "$nvcc" ]; then
    candidates+=("$(dirname "$(dirname "$(readlink -f "$nvcc")")")")
    candidates+=("$("$nvcc" --dryrun -c gpu-check-probe.cu 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n 1 || true)")
  fi
  candidates+=(/usr/local/cuda)
  for candidate in "${candidates[@]}"; do
    if [ -n "$candidate" ] && [ -x "$candidate/bin/nvcc" ] \
      && { [ -f "$candidate/include/cuda_runtime_api.h" ] || compgen -G "$candidate/targets/*/include/cuda_runtime_api.h" >/dev/null; }; then
      cuda_root="$(readlink -f "$candidate")"
      break
    fi
  done
  [ -n "$cuda_root" ] || { echo "no CUDA toolkit (looked in: ${candidates[*]})"; return 1; }
  nvcc="$cuda_root/bin/nvcc"
  echo "== CUDA toolkit: $cuda_root"
  "$nvcc" --version
  echo "== nvidia-smi"
  nvidia-smi || true

  # LibTorch's CMake config links libnvrtc and makes targets of cudart, cuBLAS, cuFFT, cuRAND
  # and the driver (FindCUDAToolkit); a toolkit that holds little more than nvcc fails the
  # configure step ("CUDA_nvrtc_LIBRARY ... NOTFOUND"). The wheel's own copies (site-packages/
  # nvidia/*/lib, versioned names only) stand in for the missing ones, through links under both
  # names in build/cuda-libs: the unversioned one for CMake's find_library (CMAKE_LIBRARY_PATH),
  # the versioned one for the addon's run path.
  local shim="$root/build/cuda-libs" name found dir
  local dirs=()
  IFS=: read -r -a dirs <<< "${GPU_CHECK_NVIDIA_LIBS:-}"
  mkdir -p "$shim"
  echo "== toolkit libraries"
  for name in cudart nvrtc cublas cublasLt cufft curand cusparse cusolver nvJitLink cuda; do
    found=""
    for dir in "$cuda_root/lib64" "$cuda_root/lib64/stubs" "$cuda_root"/targets/*/lib "$cuda_root"/targets/*/lib/stubs; do
      [ -e "$dir/lib$name.so" ] && { found="$dir/lib$name.so"; break; }
    done
    if [ -n "$found" ]; then echo "lib$name.so: $found"; continue; fi
    for dir in "${dirs[@]}"; do
      found="$(compgen -G "$dir/lib$name.so.*" | sort -V | tail -n 1 || true)"
      [ -n "$found" ] && break
    done
    if [ -z "$found" ] && [ "$name" = cuda ]; then
      found="$( (ldconfig -p 2>/dev/null || true) | awk '/libcuda\.so\.1 / { print $NF; exit }')"
    fi
    if [ -z "$found" ]; then echo "lib$name.so: not in the toolkit nor the wheel"; continue; fi
    ln -sf "$found" "$shim/lib$name.so"
    ln -sf "$found" "$shim/$(basename "$found")"
    echo "lib$name.so: not in the toolkit; the wheel's $found stands in"
  done
  {
    echo "export CUDACXX=$(printf '%q' "$nvcc")"
    echo "export CUDA_PATH=$(printf '%q' "$cuda_root") CUDA_HOME=$(printf '%q' "$cuda_root") CUDAToolkit_ROOT=$(printf '%q' "$cuda_root")"
    echo "export PATH=$(printf '%q' "$cuda_root/bin"):\$PATH"
    if [ -n "$(ls -A "$shim")" ]; then echo "export CMAKE_LIBRARY_PATH=$(printf '%q' "$shim")\${CMAKE_LIBRARY_PATH:+:\$CMAKE_LIBRARY_PATH}"; fi
  } >> "$STATE/env.sh"
}

step_build() {
  # A configure that an earlier run left (a warm machine keeps build/) is redone with this
  # run's settings; the objects stay, so that only what changed is compiled again.
  if [ "$DRY" != 1 ]; then
    find build -name CMakeCache.txt -not -path '*/CMakeFiles/*' -print -delete 2>/dev/null || true
  fi
  echo "DNA_CUDA=$DNA_CUDA DNA_CUDA_ARCH=${DNA_CUDA_ARCH:-} Torch_DIR=$Torch_DIR CMAKE_BUILD_PARALLEL_LEVEL=$CMAKE_BUILD_PARALLEL_LEVEL"
  echo "CUDACXX=${CUDACXX:-} CUDA_PATH=${CUDA_PATH:-} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-}"
  $NICE node scripts/build-addon.mjs
  ls -l build/Release/*.node
  if command -v ldd >/dev/null; then ldd build/Release/dna_native.node | grep -E 'torch|c10|cuda|nvrtc|cudnn|not found' || true; fi
}

# Loads the addon and prints backend(). A real run insists on CUDA. When the addon does not
# load as built (no LD_LIBRARY_PATH, as the README promises), it is tried once more with the
# pip wheel's nvidia library folders on LD_LIBRARY_PATH, and the later steps keep that.
step_load() {
  local script="import('./dist/lib/index.js').then((m) => { const b = m.backend(); console.log(JSON.stringify(b));
    if (process.env.DNA_CUDA === '1' && !(b.cuda && b.cudaBuilt && b.cudaDevices > 0)) { console.error('no CUDA in this backend'); process.exit(3); } })"
  if node -e "$script"; then return 0; fi
  if [ -n "${GPU_CHECK_NVIDIA_LIBS:-}" ]; then
    local libs="$GPU_CHECK_NVIDIA_LIBS:${LD_LIBRARY_PATH:-}"
    echo "== the addon did not load as built; again with LD_LIBRARY_PATH=$libs"
    if LD_LIBRARY_PATH="$libs" node -e "$script"; then
      echo "export LD_LIBRARY_PATH=$(printf '%q' "$libs")" >> "$STATE/env.sh"
      echo "== loads only with LD_LIBRARY_PATH (the later steps use it)"
      return 1
    fi
  fi
  return 1
}

step_tests() {
  local files=() name
  for name in "${DEVICE_TESTS[@]}"; do
    if [ -f "dist/test/$name.test.js" ]; then files+=("dist/test/$name.test.js"); else echo "(no dist/test/$name.test.js)"; fi
  done
  echo "ava: ${files[*]}"
  $NICE node node_modules/ava/entrypoints/cli.mjs "${files[@]}"
}

# The GPU benchmark (bench/gpu.ts). It writes gpu-bench.json and gpu-bench.md into --out and
# prints the same Markdown, which is in the log already: only the JSON goes to $OUT. The dry run
# checks the script with its small CPU settings.
step_bench() {
  local flags=()
  [ "$DRY" = 1 ] && flags=(--device cpu --quick)
  if [ -n "${PYTHON:-}" ] && [ -z "${DNA_BENCH_PYTHON:-}" ]; then export DNA_BENCH_PYTHON="$PYTHON"; fi
  echo "node dist/bench/gpu.js --out $STATE/bench ${flags[*]}"
  $NICE node dist/bench/gpu.js --out "$STATE/bench" "${flags[@]}"
  cp "$STATE/bench/gpu-bench.json" "$OUT/gpu-bench.json"
}

cmd_step() {
  cd "$root"
  "step_$1"
}

cmd_run() {
  DRY="${GPU_CHECK_DRY:-0}"
  local arg
  for arg in "$@"; do
    case "$arg" in
      --dry) DRY=1 ;;
      *) die "unknown option $arg (run [--dry])" ;;
    esac
  done
  [ -f "$root/.device/node.tar.xz" ] || die "no .device/node.tar.xz: run 'bash scripts/gpu-check.sh pack' where Node.js is"

  if [ "$DRY" = 1 ]; then
    # A fresh copy of what the GPU machine would receive, so that no build folder or
    # node_modules of this checkout is used or touched.
    local copy="${GPU_CHECK_DRY_DIR:-}"
    if [ -z "$copy" ]; then copy="$(mktemp -d /tmp/gpu-check-dry.XXXXXX)"; fi
    [ -e "$copy/package.json" ] && die "$copy is not empty"
    copy_tree "$root" "$copy"
    log "dry run in a copy of the tree: $copy"
    root="$copy"
    self="$copy/scripts/gpu-check.sh"
    export OUT="${OUT:-$copy/gpu-check-out}"
    export CCACHE_BASEDIR="$copy"
    export DNA_CUDA=0
    NICE="nice -n 10"
    TORCH_FROM="${GPU_CHECK_TORCH:-auto}"
  else
    export OUT="${OUT:-$root/gpu-check-out}"
    export DNA_CUDA=1
    export DNA_CUDA_ARCH="${DNA_CUDA_ARCH:-90}"
    NICE=""
    TORCH_FROM="${GPU_CHECK_TORCH:-python}"
  fi
  cd "$root"
  mkdir -p "$OUT"
  OUT="$(cd "$OUT" && pwd)"
  STATE="$(mktemp -d)"
  : > "$STATE/env.sh"
  BUDGET="${GPU_CHECK_BUDGET_S:-540}"
  RUN_START=$SECONDS
  export root self OUT STATE DRY NICE TORCH_FROM
  export PATH="$root/.node/bin:$PATH"
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  log "$([ "$DRY" = 1 ] && echo 'dry run' || echo run) in $root, logs in $OUT, budget ${BUDGET} s"

  run_step unpack unpack.log || true
  run_step torch torch.log || true
  if run_step build build.log; then
    run_step load load.log || true
    run_step tests tests.log || true
    if [ -f dist/bench/gpu.js ]; then
      run_step bench gpu-bench.log || true
      [ -f "$OUT/gpu-bench.log" ] && tail -n 30 "$OUT/gpu-bench.log"
    else
      record bench 'skipped (absent)' 0
    fi
  else
    local step
    for step in load tests bench; do record "$step" 'skipped (no build)' 0; done
  fi
  summary
  rm -rf "$STATE"
  [ "$FAILED" = 0 ]
}

case "${1:-}" in
  pack) shift; cmd_pack "$@" ;;
  run) shift; cmd_run "$@" ;;
  _step) cmd_step "$2" ;;
  *) die "usage: bash scripts/gpu-check.sh pack | run [--dry]" ;;
esac
