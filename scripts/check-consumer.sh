#!/usr/bin/env bash
# Proves that the packed package installs into another project and imports: npm pack, install
# the tarball into a fresh folder (its install script builds the addon), import it, run the CLI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/dna-consumer.XXXXXX)"
trap 'rm -rf "$work"' EXIT

tarball="$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)"
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "$work/$tarball" >install.log 2>&1 || { tail -n 40 install.log; echo "check-consumer: FAIL: npm install of $tarball"; exit 1; }
node --input-type=module -e "
  const m = await import('dna-augment');
  const b = m.backend();
  if (typeof b.torch !== 'string') throw new Error('backend() has no torch version');
  const out = m.applyOp(m.rand([2, 3, 8, 8]), 'Rotate', 0.7);
  if (out.shape.join() !== '2,3,8,8') throw new Error('applyOp gave shape ' + out.shape);
  console.log('check-consumer: PASS: installed ' + '$tarball' + ' and imported it (LibTorch ' + b.torch + ')');
"
npx --no-install dna info >/dev/null
