// dna csv: a run's JSON-lines log (metrics.jsonl, search.jsonl, the step logs) as CSV.
import { stat } from 'node:fs/promises';
import path from 'node:path';

import { metricsCsv } from '../../lib/run/metrics-csv.js';
import { exists, writeTextAtomically } from '../../lib/util/files.js';
import type { Command } from '../cli/command.js';
import { UsageError } from '../cli/options.js';

export const csvCommand: Command = {
  name: 'csv',
  summary: "a run's log (metrics.jsonl, search.jsonl) as CSV, for a spreadsheet or pandas",
  usage: 'dna csv FILE.jsonl [--out FILE.csv]',
  description:
    'Turns a JSON-lines log of a run into CSV: a header of every field (nested ones as dotted names), a row per ' +
    'line. Reads metrics.jsonl and train.steps.jsonl of dna train, search.jsonl and search.steps.jsonl of dna ' +
    'search. A run folder stands for its metrics.jsonl (or search.jsonl). Prints to the terminal unless --out ' +
    'names a file.',
  groups: [{ title: 'Output', options: [{ name: 'out', kind: 'string', value: 'FILE', help: 'write the CSV here' }] }],
  words: 'collect',
  async run(values, rest) {
    if (rest.length !== 1)
      throw new UsageError(
        rest.length === 0
          ? 'dna csv needs the log to read, e.g. dna csv runs/train/metrics.jsonl'
          : `dna csv reads one file, got ${rest.length}: ${rest.join(' ')}`,
      );
    const file = await logOf(rest[0]);
    const csv = await metricsCsv(file);
    const out = values.out as string | undefined;
    if (out === undefined) {
      process.stdout.write(csv);
      return;
    }
    await writeTextAtomically(out, csv);
    console.log(`${csv.split('\n').length - 2} rows of ${file}: ${out}`);
  },
};

/** A run folder's per-epoch log (metrics.jsonl of a train run, search.jsonl of a search), or the file given. */
async function logOf(given: string): Promise<string> {
  const isFolder = await stat(given).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!isFolder) return given;
  for (const name of ['metrics.jsonl', 'search.jsonl'])
    if (await exists(path.join(given, name))) return path.join(given, name);
  throw new Error(`${given} holds no metrics.jsonl or search.jsonl: name the log to read`);
}
