#!/usr/bin/env bash
# Copies the project as a fresh checkout would have it into DEST: tracked files and untracked
# ones git does not ignore (files deleted in the working tree left out), or, where there is no
# git, everything but the build outputs. Used by the checks that build in a copy of the tree
# (gpu-check.sh --dry, check-libtorch2.sh), so that they never touch this checkout's build/.
#
#   bash scripts/copy-tree.sh SOURCE DEST
set -euo pipefail
from="$1" to="$2"
mkdir -p "$to"
if git -C "$from" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$from" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done \
    | tar --null -T - -cf -) | tar -C "$to" -xf -
else
  (cd "$from" && tar --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./.node \
    --exclude=./.device --exclude=./.git --exclude=./gpu-check-out -cf - .) | tar -C "$to" -xf -
fi
