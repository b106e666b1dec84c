// What a command of `dna` is: its name, a line for the command list, its usage and help, its
// options, and what it does with them (returning the exit status, 0 when it returns nothing).
import type { OptionGroup, OptionValues, Words } from './options.js';

export interface Command {
  name: string;
  /** One line for `dna --help`. */
  summary: string;
  /** The usage line of its --help, e.g. 'dna train --data DIR [options]'. */
  usage: string;
  /** What it does, a paragraph for its --help. */
  description: string;
  groups: OptionGroup[];
  /** What it does with words that are not options (see parseOptions); refused by default. */
  words?: Words;
  run(values: OptionValues, rest: string[]): Promise<number | void> | number | void;
}
