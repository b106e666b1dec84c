#!/usr/bin/env bash
# The formatting check CI runs: prettier for TypeScript and JavaScript (.prettierrc.json), and
# clang-format for C++ and CUDA (.clang-format), both at 120 columns.
#   bash scripts/check-format.sh          check, listing the files that differ
#   bash scripts/check-format.sh --write  format in place
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t native < <(git ls-files 'native/*.cc' 'native/*.h' 'native/*.cu' 'examples/*.cc' 'examples/*.h' 'examples/*.cu' 'test/fixtures/*.cc')
if [ "${1:-}" = "--write" ]; then
  npx prettier --log-level warn --write .
  clang-format -i "${native[@]}"
  exit 0
fi
status=0
npx prettier --log-level warn --check . || status=1
if command -v clang-format >/dev/null; then
  clang-format --dry-run --Werror "${native[@]}" 2>/dev/null || { echo "check-format: C++ sources differ from clang-format (bash scripts/check-format.sh --write)"; status=1; }
else
  echo "check-format: clang-format is not installed (apt-get install clang-format)"; status=1
fi
[ $status -eq 0 ] && echo "check-format: TypeScript, JavaScript and C++ are formatted"
exit $status
