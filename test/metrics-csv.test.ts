// A run's JSON-lines logs as CSV: the columns, quoting and errors of jsonLinesToCsv, a real
// metrics.jsonl against its CSV, and `dna csv`.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as dna from '../lib/index.js';
import { tinyDataset } from './helpers/tiny-data.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'dna.js');
const root = mkdtempSync(path.join(os.tmpdir(), 'dna-csv-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

/** A minimal RFC 4180 reader, to read back what was written. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') ((cell += '"'), i++);
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') (row.push(cell), (cell = ''));
    else if (c === '\n') (row.push(cell), rows.push(row), (row = []), (cell = ''));
    else cell += c;
  }
  return rows;
}

test('columns: every field in the order it first appears, nested ones dotted, absent ones empty', (t) => {
  const text =
    [
      { epoch: 1, loss: 0.5, test: { accuracy: 0.8, loss: 0.6 } },
      { epoch: 2, loss: 0.25, lr: 0.1, test: { accuracy: 0.9 } },
      { epoch: 3, note: 'a "quoted", word\nover two lines', perClass: [0.5, 1], best: true, extra: null },
    ]
      .map((line) => JSON.stringify(line))
      .join('\n\n') + '\n';
  const csv = dna.jsonLinesToCsv(text);
  t.is(csv.split('\n')[0], 'epoch,loss,test.accuracy,test.loss,lr,note,perClass,best,extra');
  t.deepEqual(parseCsv(csv), [
    ['epoch', 'loss', 'test.accuracy', 'test.loss', 'lr', 'note', 'perClass', 'best', 'extra'],
    ['1', '0.5', '0.8', '0.6', '', '', '', '', ''],
    ['2', '0.25', '0.9', '', '0.1', '', '', '', ''],
    ['3', '', '', '', '', 'a "quoted", word\nover two lines', '[0.5,1]', 'true', ''],
  ]);
  t.is(dna.jsonLinesToCsv(''), '\n', 'no lines: an empty header');
  t.throws(() => dna.jsonLinesToCsv('{"epoch":1}\n{"epoch":2', 'runs/x/metrics.jsonl'), {
    message: 'runs/x/metrics.jsonl: line 2 is not JSON: {"epoch":2',
  });
  t.throws(() => dna.jsonLinesToCsv('[1, 2]\n'), { message: /line 1 is not a JSON object, got \[1, 2\]/ });
  t.throws(() => dna.jsonLinesToCsv(5 as never), { instanceOf: TypeError, message: /got 5/ });
});

test("a train run's metrics.jsonl: a row per epoch with the same figures; dna csv prints or writes it", async (t) => {
  const dir = path.join(root, 'run');
  const result = await dna.train({
    train: tinyDataset(32, 1, 8),
    test: tinyDataset(16, 1, 8),
    model: dna.WRN_10_1,
    epochs: 2,
    batchSize: 16,
    outDir: dir,
    logEvery: 1,
  });
  result.model.dispose();
  const file = path.join(dir, 'metrics.jsonl');
  const lines = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const [header, ...rows] = parseCsv(await dna.metricsCsv(file));
  t.is(rows.length, 2);
  t.true(header.includes('epoch') && header.includes('loss'), header.join(','));
  rows.forEach((row, k) => {
    for (const [name, value] of Object.entries(lines[k]))
      if (typeof value === 'number') t.is(Number(row[header.indexOf(name)]), value, `epoch ${k + 1} ${name}`);
  });

  const dnaCsv = (...args: string[]) => spawnSync(process.execPath, [cli, 'csv', ...args], { encoding: 'utf8' });
  const printed = dnaCsv(dir);
  t.is(printed.status, 0, printed.stderr);
  t.is(printed.stdout, await dna.metricsCsv(file), 'a run folder stands for its metrics.jsonl');
  const out = path.join(root, 'steps.csv');
  const written = dnaCsv(path.join(dir, 'train.steps.jsonl'), '--out', out);
  t.is(written.status, 0, written.stderr);
  t.is(written.stdout, `4 rows of ${path.join(dir, 'train.steps.jsonl')}: ${out}\n`);
  t.is(parseCsv(readFileSync(out, 'utf8')).length, 5);

  t.regex(dnaCsv().stderr, /dna csv needs the log to read, e.g. dna csv runs\/train\/metrics\.jsonl/);
  t.is(dnaCsv().status, 2);
  t.regex(dnaCsv(path.join(root, 'nothing.jsonl')).stderr, /nothing\.jsonl: no such file/);
  t.regex(dnaCsv(root).stderr, /holds no metrics\.jsonl or search\.jsonl: name the log to read/);
  writeFileSync(path.join(root, 'bad.jsonl'), '{"epoch": 1}\nnot json\n');
  const bad = dnaCsv(path.join(root, 'bad.jsonl'));
  t.is(bad.status, 1);
  t.regex(bad.stderr, /bad\.jsonl: line 2 is not JSON: not json/);
});
