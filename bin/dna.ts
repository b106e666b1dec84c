#!/usr/bin/env node
// The `dna` command line.
import { parseArgs } from 'node:util';

import { backend } from '../lib/index.js';

const usage = `Usage: dna <command> [options]

Commands:
  info        the native backend: LibTorch version, CUDA, threads

Options:
  --json      machine-readable output (info)
  -h, --help  this help`;

function info(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true });
  const b = backend();
  if (values.json) {
    console.log(JSON.stringify(b));
    return;
  }
  console.log(`LibTorch   ${b.torch}`);
  console.log(`CUDA       ${b.cuda ? `yes, ${b.cudaDevices} device(s)` : b.cudaBuilt ? 'built, no device visible' : 'no (CPU build)'}`);
  console.log(`threads    ${b.threads}`);
}

const commands: Record<string, (argv: string[]) => void | Promise<void>> = { info };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    console.log(usage);
    return command === undefined ? 1 : 0;
  }
  const run = commands[command];
  if (run === undefined) {
    console.error(`dna: unknown command '${command}'\n\n${usage}`);
    return 2;
  }
  await run(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`dna: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
