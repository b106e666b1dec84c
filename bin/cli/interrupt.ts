// Ctrl-C during a run: the first stops it after the current step (the run saves), the second
// quits at once. A stopped command exits with 130, as shells report SIGINT, so that
// `dna train ... && next` does not go on.

let interrupted = false;

/** Whether Ctrl-C stopped a run of this process. */
export function wasInterrupted(): boolean {
  return interrupted;
}

/** An AbortSignal that Ctrl-C aborts; `release` stops listening. */
export function stopOnInterrupt(): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const stop = () => {
    process.stderr.write('\ndna: stopping after the current step (Ctrl-C again to quit at once)\n');
    interrupted = true;
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', stop);
  return { signal: controller.signal, release: () => process.removeListener('SIGINT', stop) };
}
