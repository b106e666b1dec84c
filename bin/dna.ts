#!/usr/bin/env node
// The `dna` command line: a command per file in bin/commands/, one options parser (cli/options.ts).
import { readFileSync } from 'node:fs';

import { describe } from '../lib/util/describe.js';
import type { Command } from './cli/command.js';
import { wasInterrupted } from './cli/interrupt.js';
import { UsageError, closest, helpText, parseOptions, wrap } from './cli/options.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { info } from './commands/info.js';
import { reportCommand } from './commands/report.js';
import { searchCommand } from './commands/search.js';
import { trainCommand } from './commands/train.js';
import { benchCommand } from './commands/bench.js';
import { launchCommand } from './commands/launch.js';

const COMMANDS: Command[] = [
  info,
  demoCommand,
  searchCommand,
  trainCommand,
  evalCommand,
  reportCommand,
  launchCommand,
  benchCommand,
];

function version(): string {
  const file = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

function usage(width: number): string {
  const lines = ['Usage: dna <command> [options]', '', 'Commands:'];
  for (const command of COMMANDS) {
    const [first, ...more] = wrap(command.summary, width - 12);
    lines.push(`  ${command.name.padEnd(8)}  ${first}`, ...more.map((line) => `${' '.repeat(12)}${line}`));
  }
  lines.push('', 'dna <command> --help lists its options; dna --version prints the version.');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const width = Math.min(100, process.stdout.columns ?? 80);
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const command = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    console.log(
      command === undefined ? usage(width) : helpText(command.usage, command.description, command.groups, width),
    );
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(version());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    const guess = closest(
      name,
      COMMANDS.map((c) => c.name),
    );
    throw new UsageError(
      `unknown command ${describe(name)}${guess === undefined ? '' : ` (did you mean ${guess}?)`}; dna --help ` +
        `lists the commands`,
    );
  }
  const parsed = parseOptions(command.name, rest, command.groups, command.words);
  if (parsed.help) {
    console.log(helpText(command.usage, command.description, command.groups, width));
    return 0;
  }
  const status = await command.run(parsed.values, parsed.rest);
  return wasInterrupted() ? 130 : (status ?? 0);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`dna: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
