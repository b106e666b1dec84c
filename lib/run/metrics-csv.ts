// A run's JSON-lines logs (metrics.jsonl, search.jsonl, <kind>.steps.jsonl) as CSV, for a
// spreadsheet or pandas.read_csv: a column per field (nested objects as dotted names, in the
// order the fields first appear), a row per line, RFC 4180 quoting.
import { readFile } from 'node:fs/promises';

import { describe } from '../util/describe.js';
import { errorCode } from '../util/files.js';

type Row = Map<string, unknown>;

/** `value`'s fields as dotted names: { a: { b: 1 } } is a.b = 1; arrays and the rest stay as they are. */
function flatten(value: Record<string, unknown>, into: Row = new Map(), prefix = ''): Row {
  for (const [key, field] of Object.entries(value)) {
    const name = prefix + key;
    if (field !== null && typeof field === 'object' && !Array.isArray(field))
      flatten(field as Record<string, unknown>, into, `${name}.`);
    else into.set(name, field);
  }
  return into;
}

/** A CSV field: numbers and words as they are, arrays as JSON, null and absent as empty; quoted where needed. */
function field(value: unknown): string {
  const text =
    value === undefined || value === null
      ? ''
      : typeof value === 'string'
        ? value
        : typeof value === 'number' || typeof value === 'boolean'
          ? String(value)
          : JSON.stringify(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * JSON lines as CSV text: a header of every field any line has, then a row per line (a field a
 * line lacks is empty). Blank lines are skipped; a line that is not a JSON object is an Error
 * naming `where` and the line's number.
 */
export function jsonLinesToCsv(text: string, where = 'jsonLinesToCsv'): string {
  if (typeof text !== 'string')
    throw new TypeError(`${where}: expected the text of a JSON-lines file, got ${describe(text)}`);
  const rows: Row[] = [];
  const columns = new Set<string>();
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new Error(
        `${where}: line ${index + 1} is not JSON: ${line.length > 60 ? `${line.slice(0, 60)}...` : line}`,
      );
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new Error(`${where}: line ${index + 1} is not a JSON object, got ${describe(value)}`);
    const row = flatten(value as Record<string, unknown>);
    for (const name of row.keys()) columns.add(name);
    rows.push(row);
  }
  const header = [...columns];
  return [header.map(field), ...rows.map((row) => header.map((name) => field(row.get(name))))]
    .map((cells) => cells.join(',') + '\n')
    .join('');
}

/** The CSV of a JSON-lines file (see jsonLinesToCsv); a missing file is named as such. */
export async function metricsCsv(file: string): Promise<string> {
  if (typeof file !== 'string' || file === '')
    throw new TypeError(`metricsCsv: file must be the path of a JSON-lines file, got ${describe(file)}`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') throw new Error(`${file}: no such file`);
    if (errorCode(error) === 'EISDIR') throw new Error(`${file} is a folder, not a JSON-lines file (metrics.jsonl)`);
    throw error;
  }
  return jsonLinesToCsv(text, file);
}
