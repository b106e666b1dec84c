// What a command of `dna` is: its name, a line for the command list, its usage and help, its
// options, and what it does with them (returning the exit status, 0 when it returns nothing).
import type { OptionGroup, OptionValues } from './options.js';

export interface Command {
  name: string;
  /** One line for `dna --help`. */
  summary: string;
  /** The usage line of its --help, e.g. 'dna train --data DIR [options]'. */
  usage: string;
  /** What it does, a paragraph for its --help. */
  description: string;
  groups: OptionGroup[];
  /** Whether words after its options are passed on (dna launch's command). */
  rest?: boolean;
  run(values: OptionValues, rest: string[]): Promise<number | void> | number | void;
}
