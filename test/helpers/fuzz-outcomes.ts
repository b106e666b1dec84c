// What a fuzzed call did, counted per outcome, and where the call in flight is written down so
// that a crash or a hang of the fuzzing process can be traced to the call that caused it.
import { writeSync } from 'node:fs';

export type Random = () => number;

/**
 * - returned: the call worked.
 * - error: it threw an Error whose message names the problem (native: starts with the function's name).
 * - unclear-error: it threw an Error, but one the JavaScript engine made (e.g. "Cannot read
 *   properties of undefined") rather than one that says what is wrong with the input.
 * - bad-message: a native Error whose message does not name the function, or an empty message.
 * - non-error: it threw something that is not an Error.
 * - leak: it threw, and tensors it made were left alive.
 * A crash or a hang of the process is the runner's outcome (scripts/fuzz.mjs).
 */
export type Outcome = 'returned' | 'error' | 'unclear-error' | 'bad-message' | 'non-error' | 'leak';
export const PROBLEM_OUTCOMES: readonly Outcome[] = ['unclear-error', 'bad-message', 'non-error', 'leak'];

export interface Tally {
  calls: number;
  outcomes: Record<Outcome, number>;
  /** Per target (function or API name): calls made. */
  targets: Record<string, number>;
  /** The first problems, each "outcome: description" (at most `MAX_PROBLEMS`). */
  problems: string[];
}

const MAX_PROBLEMS = 50;

export function newTally(): Tally {
  return {
    calls: 0,
    outcomes: { returned: 0, error: 0, 'unclear-error': 0, 'bad-message': 0, 'non-error': 0, leak: 0 },
    targets: {},
    problems: [],
  };
}

export function record(tally: Tally, target: string, outcome: Outcome, problem?: string): void {
  tally.calls++;
  tally.outcomes[outcome]++;
  tally.targets[target] = (tally.targets[target] ?? 0) + 1;
  if (problem !== undefined && tally.problems.length < MAX_PROBLEMS) tally.problems.push(`${outcome}: ${problem}`);
}

/** Messages the engine writes for a value of the wrong kind: an input that was not checked. */
const ENGINE_MESSAGES = [
  /^Cannot read propert(y|ies) of (undefined|null)/,
  /^Cannot (set|destructure) propert/,
  /is not a function$/,
  /is not iterable/,
  /is not a constructor$/,
  /^Cannot convert (a Symbol|a BigInt|undefined or null|object) /,
  /^Cannot mix BigInt and other types/,
  /^Invalid array length$/,
  /^Maximum call stack size exceeded$/,
  /^Cannot use 'in' operator/,
  /^Reduce of empty array/,
];

/** Whether an Error comes from the engine rather than from a check that says what is wrong. */
export function isEngineError(error: Error): boolean {
  return ENGINE_MESSAGES.some((pattern) => pattern.test(error.message));
}

// ---- the call in flight ----

let callFd: number | undefined;
const CALL_BYTES = 1024;
const callBuffer = Buffer.alloc(CALL_BYTES);

/** From now on each call's label is written over the start of `fd` before the call is made. */
export function recordCallsTo(fd: number): void {
  callFd = fd;
}

export function recordCall(label: string): void {
  if (callFd === undefined) return;
  callBuffer.fill(0x20);
  const written = callBuffer.write(label.slice(0, CALL_BYTES - 1), 0, 'utf8');
  callBuffer[written] = 0x0a;
  writeSync(callFd, callBuffer, 0, CALL_BYTES, 0);
}
