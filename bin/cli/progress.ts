// What a long command shows while it runs: on a terminal one progress line redrawn in place and
// fitted to the terminal's width (the least important fields go first; the ETA stays), a line per
// epoch elsewhere, JSON lines with --json.
import type { LoopProgress } from '../../lib/run/epoch-loop.js';

/** Whether this process prints a run's progress and results: not a rank other than 0 of `dna launch` or torchrun. */
export function isMainRank(): boolean {
  return Number(process.env.RANK ?? 0) === 0;
}

/** 75s -> "1m15s", 4000s -> "1h06m"; "?" when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** "1 epoch", "2 epochs". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

export type Progress = LoopProgress & { testAccuracy?: number };

/** One field of a progress line; the lowest `keep` goes first when the line is too long. */
interface Field {
  text: string;
  keep: number;
}

/**
 * The progress line of `p` in at most `width - 1` columns (so that a terminal never wraps it):
 * epoch, a bar, step, loss, accuracy, test accuracy, images/s, lr and the ETA, dropping the
 * least important fields (lr, then images/s, the bar, ...) until it fits.
 */
export function progressLine(label: string, p: Progress, eta: number, width: number): string {
  const epoch = p.phase === 'epoch' ? p.epoch : p.epoch + 1;
  const barWidth = 20;
  const done = Math.round((barWidth * p.stepInEpoch) / Math.max(1, p.stepsPerEpoch));
  const fields: Field[] = [
    { text: `${label} ${epoch}/${p.epochs}`, keep: 10 },
    { text: `[${'#'.repeat(done)}${'.'.repeat(barWidth - done)}]`, keep: 3 },
    { text: `step ${p.stepInEpoch}/${p.stepsPerEpoch}`, keep: 5 },
    { text: `loss ${p.loss.toFixed(4)}`, keep: 8 },
    { text: `acc ${(100 * p.accuracy).toFixed(1)}%`, keep: 7 },
    ...(p.testAccuracy === undefined ? [] : [{ text: `test acc ${(100 * p.testAccuracy).toFixed(2)}%`, keep: 6 }]),
    { text: `${Math.round(p.imagesPerSecond)} img/s`, keep: 4 },
    { text: `lr ${p.lr.toPrecision(3)}`, keep: 1 },
    { text: `ETA ${formatDuration(eta)}`, keep: 9 },
  ];
  const limit = Math.max(10, width - 1);
  const line = () => fields.map((f) => f.text).join('  ');
  while (line().length > limit && fields.length > 2) {
    const weakest = fields.reduce((low, f) => (f.keep < low.keep ? f : low));
    fields.splice(fields.indexOf(weakest), 1);
  }
  return line().slice(0, limit);
}

/**
 * A progress callback for a run: on a terminal (stderr) a line redrawn at most every 100 ms;
 * elsewhere a plain line per epoch on stdout; with `json` each epoch's progress as a JSON line.
 * The ETA counts the steps this process has run, so a resumed run's estimate is its own.
 */
export function progressPrinter(label: string, json: boolean): (p: Progress) => void {
  // One rank of a distributed run speaks for all: rank 0 (the figures are the same on every rank).
  if (!isMainRank()) return () => {};
  const tty = process.stderr.isTTY === true && !json;
  let started: number | undefined;
  let firstStep = 0;
  let lastDraw = 0;
  return (p) => {
    if (json) {
      if (p.phase === 'epoch') console.log(JSON.stringify(p));
      return;
    }
    const now = performance.now();
    if (started === undefined) {
      started = now;
      firstStep = p.phase === 'step' ? p.step - 1 : p.step;
    }
    const done = p.step - firstStep;
    const eta = done > 0 ? ((now - started) / 1000 / done) * (p.steps - p.step) : Number.NaN;
    if (tty) {
      if (p.phase === 'step' && now - lastDraw < 100) return;
      lastDraw = now;
      process.stderr.write(`\r\x1b[2K${progressLine(label, p, eta, process.stderr.columns ?? 80)}`);
      if (p.phase === 'epoch') process.stderr.write('\n');
    } else if (p.phase === 'epoch') {
      console.log(progressLine(label, p, eta, 120));
    }
  };
}
