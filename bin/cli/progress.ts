// What a long command shows while it runs: on a terminal one progress line redrawn in place and
// fitted to the terminal's width (the least important fields go first; the ETA stays), a line per
// epoch elsewhere, JSON lines with --json. The ETA counts the steps and the test evaluations still
// to run, at the speed this process has measured (so a resumed run's estimate is its own), and a
// run whose ETA is absurd for the device gets one warning that says what makes it shorter.
import type { LoopProgress } from '../../lib/run/epoch-loop.js';
import { wrap } from './options.js';

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
  return `${count.toLocaleString('en-US')} ${noun}${count === 1 ? '' : 's'}`;
}

/** A progress event of train or search: train's carry the test figures. */
export type Progress = LoopProgress & { testAccuracy?: number; testImages?: number; evaluationsLeft?: number };

/** One field of a progress line; the lowest `keep` goes first when the line is too long. */
interface Field {
  text: string;
  keep: number;
  /** A bar that takes the columns left over (at least 10). */
  bar?: number;
}

const percent = (x: number, digits: number) => `${(100 * x).toFixed(digits)}%`;
const count = (n: number) => n.toLocaleString('en-US');

/**
 * The progress line of `p` in at most `width - 1` columns (so that a terminal never wraps it):
 * epoch, a bar, step, loss, accuracy, test accuracy, images/s, lr and the ETA, dropping the
 * least important fields (lr, then images/s, the bar, ...) until it fits; the bar takes the
 * columns that are left. During an evaluation: the epoch, a bar and the images evaluated.
 */
export function progressLine(label: string, p: Progress, eta: number, width: number): string {
  // At 'epoch' the epoch counts as done; before it, the epoch under way is the next one.
  const epoch = p.phase === 'epoch' ? p.epoch : Math.min(p.epochs, p.epoch + 1);
  const head = { text: `${label} ${epoch}/${p.epochs}`, keep: 10 };
  const fields: Field[] =
    p.phase === 'evaluate'
      ? [
          head,
          { text: '', keep: 3, bar: (p.evaluated ?? 0) / Math.max(1, p.evaluating ?? 1) },
          { text: `evaluating ${count(p.evaluated ?? 0)}/${count(p.evaluating ?? 0)} test images`, keep: 8 },
          ...(Number.isFinite(p.imagesPerSecond) ? [{ text: `${Math.round(p.imagesPerSecond)} img/s`, keep: 2 }] : []),
        ]
      : [
          head,
          { text: '', keep: 3, bar: p.stepInEpoch / Math.max(1, p.stepsPerEpoch) },
          { text: `step ${p.stepInEpoch}/${p.stepsPerEpoch}`, keep: 5 },
          // A step's loss while the epoch runs, the epoch's mean at its end (accuracy is the epoch's throughout).
          { text: `${p.phase === 'epoch' ? 'mean loss' : 'loss'} ${p.loss.toFixed(4)}`, keep: 8 },
          { text: `acc ${percent(p.accuracy, 1)}`, keep: 7 },
          ...(p.testAccuracy === undefined ? [] : [{ text: `test acc ${percent(p.testAccuracy, 2)}`, keep: 6 }]),
          ...(Number.isFinite(p.imagesPerSecond) ? [{ text: `${Math.round(p.imagesPerSecond)} img/s`, keep: 4 }] : []),
          { text: `lr ${p.lr.toPrecision(3)}`, keep: 1 },
        ];
  fields.push({ text: `ETA ${formatDuration(eta)}`, keep: 9 });
  const limit = Math.max(10, width - 1);
  const minimumBar = 12;
  const length = () =>
    fields.reduce((sum, f) => sum + (f.bar === undefined ? f.text.length : minimumBar), 0) + 2 * (fields.length - 1);
  while (length() > limit && fields.length > 2) {
    const weakest = fields.reduce((low, f) => (f.keep < low.keep ? f : low));
    fields.splice(fields.indexOf(weakest), 1);
  }
  // The bar takes what is left, up to 30 columns.
  const spare = limit - length();
  for (const f of fields) {
    if (f.bar === undefined) continue;
    const inner = Math.min(28, minimumBar - 2 + Math.max(0, spare));
    const done = Math.round(inner * Math.min(1, Math.max(0, f.bar)));
    f.text = `[${'#'.repeat(done)}${'.'.repeat(inner - done)}]`;
  }
  return fields
    .map((f) => f.text)
    .join('  ')
    .slice(0, limit);
}

export interface PrinterOptions {
  /** One JSON line per epoch on stdout instead of lines for people. */
  json?: boolean;
  /** The run's folder, for the lines that say where it stands. */
  outDir?: string;
  /** Whether --resume was given: a run without a checkpoint to resume says it starts fresh. */
  resume?: boolean;
  /** The device: an ETA over 6 hours on the CPU (48 on a GPU) gets a warning with `advice`. */
  device?: string;
  /** What makes the run shorter, in the command's flags. */
  advice?: string;
}

/** Hours of ETA past which a run is worth a word: on the CPU, and on a GPU. */
const ABSURD_HOURS = { cpu: 6, gpu: 48 };

/** The warning for an ETA of `eta` seconds on `device`, when it is absurd there; undefined otherwise. */
export function etaWarning(eta: number, device: string, advice?: string): string | undefined {
  const gpu = device.startsWith('cuda');
  if (!(eta / 3600 > (gpu ? ABSURD_HOURS.gpu : ABSURD_HOURS.cpu))) return undefined;
  return (
    `dna: warning: at this speed the run takes about ${formatDuration(eta)} on ${gpu ? 'the GPU' : 'the CPU'}` +
    (advice === undefined ? '' : `; ${advice}`)
  );
}

/**
 * Estimates the time left: the training steps at the rate this process has measured, plus the test
 * images still to evaluate at their measured rate (a third of a training image's time until one
 * evaluation has been timed: a forward pass against forward and backward).
 */
export class EtaClock {
  #started: number | undefined;
  #firstStep = 0;
  #evaluating: { since: number; images: number } | undefined;
  /** Seconds spent in evaluations, which the step rate leaves out. */
  #evaluationSeconds = 0;
  #secondsPerTestImage: number | undefined;

  /** The estimate in seconds after `p` (NaN until a step has been timed). */
  update(p: Progress, now = performance.now()): number {
    if (this.#started === undefined || p.phase === 'start') {
      this.#started = now;
      this.#firstStep = p.phase === 'step' ? p.step - 1 : p.step;
    }
    if (p.phase === 'evaluate') {
      this.#evaluating ??= { since: now, images: 0 };
      this.#evaluating.images = p.evaluated ?? 0;
      if (this.#evaluating.images > 0)
        this.#secondsPerTestImage = (now - this.#evaluating.since) / 1000 / this.#evaluating.images;
    } else if (this.#evaluating !== undefined) {
      this.#evaluationSeconds += (now - this.#evaluating.since) / 1000;
      this.#evaluating = undefined;
    }
    const done = p.step - this.#firstStep;
    const running = this.#evaluating === undefined ? 0 : (now - this.#evaluating.since) / 1000;
    const stepSeconds = done > 0 ? ((now - this.#started) / 1000 - this.#evaluationSeconds - running) / done : NaN;
    const testImages =
      (p.testImages ?? 0) * (p.evaluationsLeft ?? 0) - (p.phase === 'evaluate' ? (p.evaluated ?? 0) : 0);
    const perTestImage =
      this.#secondsPerTestImage ??
      (Number.isFinite(p.imagesPerSecond) && p.imagesPerSecond > 0 ? 1 / p.imagesPerSecond / 3 : 0);
    return stepSeconds * (p.steps - p.step) + Math.max(0, testImages) * perTestImage;
  }

  /** Steps timed by this process so far. */
  stepsTimed(p: Progress): number {
    return p.step - this.#firstStep;
  }
}

/** A run's progress callback; `finish()` ends a line left half-drawn (a run stopped inside an epoch). */
export interface Printer {
  (p: Progress): void;
  finish(): void;
}

/**
 * A progress callback for a run: on a terminal (stderr) a line redrawn at most every 100 ms;
 * elsewhere a plain line per epoch on stdout; with `json` each epoch's progress as a JSON line.
 * Lines that say where a run stands (resumed, already finished, nothing to resume) and the ETA
 * warning go to stderr.
 */
export function progressPrinter(label: string, options: PrinterOptions = {}): Printer {
  // One rank of a distributed run speaks for all: rank 0 (the figures are the same on every rank).
  if (!isMainRank()) return Object.assign(() => {}, { finish() {} });
  const { json = false, outDir, resume = false, device = 'cpu', advice } = options;
  const tty = process.stderr.isTTY === true && !json;
  const clock = new EtaClock();
  let lastDraw = 0;
  let warned = false;
  let drawn = false;
  const note = (line: string) => {
    process.stderr.write(`${drawn ? '\r\x1b[2K' : ''}${line}\n`);
    drawn = false;
  };
  const print = (p: Progress) => {
    const now = performance.now();
    const eta = clock.update(p, now);
    if (p.phase === 'start') {
      const where = outDir === undefined ? 'the run' : outDir;
      if (p.resumed && p.epoch >= p.epochs)
        note(`${where} has finished its ${plural(p.epochs, 'epoch')} already; nothing to resume`);
      else if (p.resumed)
        note(`resuming ${where} in epoch ${p.epoch + 1}/${p.epochs}, after step ${p.step} of ${p.steps}`);
      else if (resume) note(`no checkpoint to resume in ${where}; starting from the beginning`);
      return;
    }
    if (json) {
      if (p.phase === 'epoch') console.log(JSON.stringify(p));
      return;
    }
    // Three timed steps: enough to tell hours from days, and on a slow device (a WRN-40-2 on a CPU,
    // seconds a step) soon enough that the user has not waited minutes under an ETA of days.
    if (!warned && p.phase === 'step' && clock.stepsTimed(p) >= 3) {
      const warning = etaWarning(eta, device, advice);
      if (warning !== undefined) {
        warned = true;
        // Wrapped to the terminal, so that the bar's redraw below it clears no half of it.
        note(tty ? wrap(warning, (process.stderr.columns || 80) - 1).join('\n') : warning);
      }
    }
    if (tty) {
      if ((p.phase === 'step' || p.phase === 'evaluate') && now - lastDraw < 100) return;
      lastDraw = now;
      process.stderr.write(`\r\x1b[2K${progressLine(label, p, eta, process.stderr.columns || 80)}`);
      drawn = true;
      if (p.phase === 'epoch') {
        process.stderr.write('\n');
        drawn = false;
      }
    } else if (p.phase === 'epoch') {
      console.log(progressLine(label, p, eta, 120));
    }
  };
  return Object.assign(print, {
    finish() {
      if (drawn) process.stderr.write('\n');
      drawn = false;
    },
  });
}
