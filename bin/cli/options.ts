// The command line's one options parser: each command declares its options (a flag, its kind,
// a help line), and the same declaration parses argv, checks values and writes the command's
// --help. Values may follow their flag (`--epochs 5`, `--lr -0.1`) or be attached
// (`--epochs=5`); a mistake is a UsageError (exit status 2) that names the flag.
import { describe } from '../../lib/util/describe.js';

/** A mistake in how the command was called: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {}

export type OptionKind = 'flag' | 'string' | 'integer' | 'number' | 'choice' | 'list';

export interface OptionSpec {
  /** The flag without dashes: 'epochs' for --epochs. */
  name: string;
  kind: OptionKind;
  /** What the value is, in the help: N, DIR, FILE, X, NAME. */
  value?: string;
  /** One line of help (wrapped to the terminal). */
  help: string;
  /** 'choice': the accepted values. */
  choices?: readonly string[];
  /** 'integer': the smallest value accepted (1: a positive integer, 0: a non-negative one). */
  min?: number;
}

export interface OptionGroup {
  title: string;
  options: OptionSpec[];
}

/** Parsed values by flag name: strings, numbers, booleans or string lists; absent when not given. */
export type OptionValues = Record<string, string | number | boolean | string[] | undefined>;

export interface Parsed {
  values: OptionValues;
  /** With `rest`: the first word that is not an option of this command, and everything after it. */
  rest: string[];
  help: boolean;
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest of `candidates` to `word` when it is close enough to be a typo, else undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let distance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < distance) [best, distance] = [candidate, d];
  }
  return distance <= Math.max(1, Math.min(2, Math.floor(word.length / 3))) ? best : undefined;
}

function integerWords(min: number | undefined): string {
  return min === 1
    ? 'a positive integer'
    : min === 0
      ? 'a non-negative integer'
      : min === undefined
        ? 'an integer'
        : `an integer >= ${min}`;
}

function readValue(spec: OptionSpec, text: string): string | number {
  const flag = `--${spec.name}`;
  switch (spec.kind) {
    case 'integer': {
      const value = Number(text);
      if (text.trim() === '' || !Number.isInteger(value) || (spec.min !== undefined && value < spec.min)) {
        throw new UsageError(`${flag} must be ${integerWords(spec.min)}, got ${describe(text)}`);
      }
      return value;
    }
    case 'number': {
      const value = Number(text);
      if (text.trim() === '' || !Number.isFinite(value))
        throw new UsageError(`${flag} must be a number, got ${describe(text)}`);
      return value;
    }
    case 'choice':
      if (!spec.choices!.includes(text))
        throw new UsageError(`${flag} must be one of ${spec.choices!.join(', ')}, got ${describe(text)}`);
      return text;
    default:
      return text;
  }
}

/** What a command does with words that are not options: refuses them, collects them, or stops at the first. */
export type Words = false | 'collect' | 'stop';

/**
 * Parses `argv` against the command's options. Words that are not options are a UsageError, or
 * with 'collect' gathered in `rest` (dna bench's names), or with 'stop' the first one ends the
 * options and it and everything after go to `rest` (the command dna launch runs).
 */
export function parseOptions(command: string, argv: string[], groups: OptionGroup[], words: Words = false): Parsed {
  const specs = new Map(groups.flatMap((g) => g.options).map((spec) => [spec.name, spec]));
  const values: OptionValues = {};
  const collected: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === '-h' || word === '--help') {
      help = true;
      continue;
    }
    if (!word.startsWith('--') || word === '--') {
      if (words === 'stop') return { values, rest: [...collected, ...argv.slice(word === '--' ? i + 1 : i)], help };
      if (words === 'collect' && word !== '--') {
        collected.push(word);
        continue;
      }
      throw new UsageError(`dna ${command} takes no argument ${describe(word)}; options start with --`);
    }
    const equals = word.indexOf('=');
    const name = word.slice(2, equals < 0 ? undefined : equals);
    const spec = specs.get(name);
    if (spec === undefined) {
      const guess = closest(name, [...specs.keys()]);
      throw new UsageError(
        `dna ${command} has no option --${name}${guess === undefined ? '' : ` (did you mean --${guess}?)`}`,
      );
    }
    if (spec.kind === 'flag') {
      if (equals >= 0) throw new UsageError(`--${name} takes no value`);
      values[name] = true;
      continue;
    }
    let text: string;
    if (equals >= 0) text = word.slice(equals + 1);
    else if (i + 1 < argv.length) text = argv[++i];
    else throw new UsageError(`--${name} needs a value (${spec.value ?? 'a value'})`);
    const value = readValue(spec, text);
    if (spec.kind === 'list') values[name] = [...((values[name] as string[] | undefined) ?? []), String(value)];
    else values[name] = value;
  }
  return { values, rest: collected, help };
}

/** `text` broken into lines of at most `width` characters at spaces. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** A command's help page: its usage line, what it does, and its options by group, fitted to `width` columns. */
export function helpText(usage: string, description: string, groups: OptionGroup[], width = 80): string {
  const out = [`Usage: ${usage}`, '', ...wrap(description, width), ''];
  const valueOf = (spec: OptionSpec) => spec.value ?? (spec.kind === 'choice' ? spec.choices!.join('|') : 'VALUE');
  const label = (spec: OptionSpec) => `--${spec.name}${spec.kind === 'flag' ? '' : ` ${valueOf(spec)}`}`;
  const column = Math.min(28, Math.max(...groups.flatMap((g) => g.options.map((spec) => label(spec).length + 4))));
  for (const group of groups) {
    if (group.options.length === 0) continue;
    out.push(`${group.title}:`);
    for (const spec of group.options) {
      const name = `  ${label(spec)}`;
      const help = wrap(spec.help, Math.max(20, width - column - 1));
      if (name.length + 1 > column) {
        out.push(name);
        for (const line of help) out.push(`${' '.repeat(column)}${line}`);
      } else {
        help.forEach((line, k) => out.push(`${k === 0 ? name.padEnd(column) : ' '.repeat(column)}${line}`));
      }
    }
    out.push('');
  }
  out.push(`${' '.repeat(0)}-h, --help shows this page.`);
  return out.join('\n');
}
