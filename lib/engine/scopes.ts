// Scopes: which tensors `tidy(fn)` disposes, and whether autograd records.
//
// A scope collects what is created while it is the innermost one; tidy() disposes what its `fn`
// made, except what it returns or what `keep()` took out. The scopes hold anything with
// `dispose()`, so that this file needs nothing of the Tensor class.
import { native } from './native.js';
import { describe } from '../util/describe.js';

/** What a scope holds: a tensor, as far as scopes are concerned. */
export interface Scoped {
  dispose(): void;
}

const scopes: Set<Scoped>[] = [];

/** @internal Puts `item` in the innermost scope, if any (every new Tensor). */
export function track(item: Scoped): void {
  scopes.at(-1)?.add(item);
}

/** @internal Takes `item` out of every scope (a disposed Tensor). */
export function untrack(item: Scoped): void {
  for (const scope of scopes) scope.delete(item);
}

/** @internal A TypeError naming `where` unless `fn` is a function. */
export function checkFunction(fn: unknown, where: string): void {
  if (typeof fn !== 'function') throw new TypeError(`${where}: fn must be a function, got ${describe(fn)}`);
}

/**
 * @internal Adds to `into` what `value` holds that passes `test`: itself, or what arrays and plain
 * objects hold (4 levels deep).
 */
export function collect<T>(value: unknown, test: (item: unknown) => item is T, into: Set<T>, depth = 0): void {
  if (test(value)) into.add(value);
  else if (depth < 4 && Array.isArray(value)) for (const item of value) collect(item, test, into, depth + 1);
  else if (
    depth < 4 &&
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    for (const item of Object.values(value)) collect(item, test, into, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it, except those it returns (a Tensor,
 * or arrays / plain objects holding Tensors) and those passed to `keep()`. `fn` must be
 * synchronous: tensors created after an `await` would escape the scope.
 */
export function tidy<R>(fn: () => R): R {
  checkFunction(fn, 'tidy');
  const scope = new Set<Scoped>();
  scopes.push(scope);
  let result: R;
  try {
    result = fn();
  } catch (error) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw error;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new TypeError('tidy(fn): fn must be synchronous (it returned a Promise)');
  }
  const kept = new Set<Scoped>();
  collect(result, (item): item is Scoped => scope.has(item as Scoped), kept);
  const parent = scopes.at(-1);
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Takes a tensor out of every enclosing `tidy` scope, so that it outlives them. */
export function keep<T extends Scoped>(t: T): T {
  untrack(t);
  return t;
}

/** Runs `fn` with gradient recording off (synchronous `fn` only). */
export function noGrad<R>(fn: () => R): R {
  checkFunction(fn, 'noGrad');
  const previous = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(previous);
  }
}

/** Whether autograd is recording. */
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** The number of native tensors alive (not disposed, not yet collected). For leak tests. */
export function liveTensors(): number {
  return native.liveTensors();
}
