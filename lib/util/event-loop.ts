// Giving the event loop its turn between chunks of long work.

/** Lets the event loop run (timers, I/O, signals) before the next chunk of a long loop. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
