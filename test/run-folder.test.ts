// A run's output folder as a user meets it: a second run into it is refused (resume or force), a
// forced one leaves nothing of the old run, resume says where it continues (or that there is
// nothing to resume), a resumed run must keep its settings, the epoch a run was stopped in is
// logged with all its steps, a stop during the evaluation evaluates again on resume, and the run
// record adds up the time over the processes.
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { trimLog } from '../lib/run/run-files.js';
import { tinyDataset } from './helpers/tiny-data.js';

dna.setThreads(1);
const root = mkdtempSync(path.join(os.tmpdir(), 'dna-run-folder-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
let made = 0;
const fresh = () => path.join(root, `run-${++made}`);

const data = tinyDataset(64, 1, 8);
// More than one evaluation batch (256 images), so that an evaluation can be stopped half way.
const testData = tinyDataset(600, 1, 8);
const options = { train: data, test: testData, model: dna.WRN_10_1, epochs: 2, batchSize: 16, seed: 3 };
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

test('a second run into a used folder is refused; force starts over and leaves no line of the old run', async (t) => {
  const dir = fresh();
  (await dna.train({ ...options, outDir: dir })).model.dispose();
  const error = await t.throwsAsync(dna.train({ ...options, outDir: dir }), { instanceOf: dna.RunExistsError });
  t.is(
    error!.message,
    `train: ${dir} already holds a train run (train.last.ckpt, train.best.ckpt, metrics.jsonl, train.run.json); ` +
      'continue it with resume: true, or start over with force: true (which deletes those files)',
  );
  t.deepEqual(error!.files, ['train.last.ckpt', 'train.best.ckpt', 'metrics.jsonl', 'train.run.json']);
  // A search may share the folder: its files are not a train run's.
  const search = { train: data, classifier: dna.WRN_10_1, policy: dna.WRN_10_1, epochs: 1, batchSize: 32, outDir: dir };
  (await dna.search(search)).policy.dispose();
  const forced = await dna.train({ ...options, epochs: 1, outDir: dir, force: true });
  forced.model.dispose();
  t.deepEqual(
    lines(path.join(dir, 'metrics.jsonl')).map((line) => line.epoch),
    [1],
  );
  t.true(existsSync(path.join(dir, 'policy.dna')), 'the search beside it is kept');

  // A forced search deletes the report made from the old policy.
  mkdirSync(path.join(dir, 'report'));
  writeFileSync(path.join(dir, 'report', 'report.md'), '# old');
  await t.throwsAsync(dna.search(search), {
    instanceOf: dna.RunExistsError,
    message: /policy\.dna, search\.jsonl, search\.run\.json, report\/report\.md/,
  });
  (await dna.search({ ...search, force: true })).policy.dispose();
  t.false(existsSync(path.join(dir, 'report')));
});

test('resume: where it continues, nothing to resume, an already finished run, settings that changed', async (t) => {
  const dir = fresh();
  const starts: dna.TrainProgress[] = [];
  const onProgress = (p: dna.TrainProgress) => p.phase === 'start' && starts.push(p);
  // Nothing to resume: the run starts fresh and says so (resumed false).
  const first = await dna.train({ ...options, outDir: dir, resume: true, onProgress });
  first.model.dispose();
  t.is(first.resumedFrom, undefined);
  t.false(starts[0].resumed);
  // Finished: resuming runs nothing and says where it stood.
  const finished = await dna.train({ ...options, outDir: dir, resume: true, onProgress });
  finished.model.dispose();
  t.deepEqual(finished.resumedFrom, { epoch: 2, step: 8 });
  t.true(starts[1].resumed);
  t.is(starts[1].epoch, 2);
  t.is(finished.steps, 8);
  // Other settings: refused, each difference by name.
  const error = await t.throwsAsync(dna.train({ ...options, epochs: 4, batchSize: 8, outDir: dir, resume: true }), {
    instanceOf: dna.RunSettingsError,
  });
  t.deepEqual(
    error!.differences.map((d) => [d.name, d.saved, d.now]),
    [
      ['epochs', 2, 4],
      ['batchSize', 16, 8],
    ],
  );
  t.regex(
    error!.message,
    /train\.last\.ckpt was written by a run with other settings: epochs 2 \(now 4\), batchSize 16 \(now 8\);/,
  );
});

test('a run stopped inside an epoch, or during its evaluation, logs the same figures as one run straight', async (t) => {
  const straightDir = fresh();
  (await dna.train({ ...options, outDir: straightDir })).model.dispose();
  const straight = lines(path.join(straightDir, 'metrics.jsonl')).map(({ seconds: _s, ...line }) => line);

  for (const stopAt of ['step', 'evaluate'] as const) {
    const dir = fresh();
    const controller = new AbortController();
    const stopped = await dna.train({
      ...options,
      outDir: dir,
      signal: controller.signal,
      onProgress: (p) => {
        if (stopAt === 'step' && p.phase === 'step' && p.step === 6) controller.abort();
        if (stopAt === 'evaluate' && p.phase === 'evaluate' && p.epoch === 1) controller.abort();
      },
    });
    stopped.model.dispose();
    t.true(stopped.aborted);
    const record = JSON.parse(readFileSync(path.join(dir, 'train.run.json'), 'utf8')) as dna.RunRecord;
    t.is(record.status, 'stopped');
    const evaluated: number[] = [];
    const resumed = await dna.train({
      ...options,
      outDir: dir,
      resume: true,
      onProgress: (p) => p.phase === 'epoch' && p.testAccuracy !== undefined && evaluated.push(p.epoch),
    });
    resumed.model.dispose();
    t.deepEqual(
      lines(path.join(dir, 'metrics.jsonl')).map(({ seconds: _s, ...line }) => line),
      straight,
      `stopped at a ${stopAt}`,
    );
    // Only the second epoch's evaluation runs in the resumed process (again, when it was stopped in it).
    t.deepEqual(evaluated, [2], stopAt);
    t.true(
      resumed.seconds >= record.seconds,
      `the time of the first process counts: ${resumed.seconds} after ${record.seconds}`,
    );
    const done = JSON.parse(readFileSync(path.join(dir, 'train.run.json'), 'utf8')) as dna.RunRecord;
    t.is(done.status, 'finished');
  }
});

test('evaluate every K epochs, and after the last; the ETA fields count the evaluations left', async (t) => {
  const events: dna.TrainProgress[] = [];
  const result = await dna.train({ ...options, epochs: 3, evaluateEvery: 2, onProgress: (p) => events.push(p) });
  result.model.dispose();
  const tested = events.filter((p) => p.phase === 'epoch').map((p) => p.testAccuracy !== undefined);
  t.deepEqual(tested, [false, true, true]);
  const firstStep = events.find((p) => p.phase === 'step')!;
  t.is(firstStep.evaluationsLeft, 2);
  t.is(firstStep.testImages, 600);
  const evaluating = events.filter((p) => p.phase === 'evaluate');
  t.deepEqual([...new Set(evaluating.map((p) => p.evaluating))], [600]);
  t.is(evaluating.at(-1)!.evaluated, 600);
});

test('a step log every N steps, cut back with the metrics when a run resumes from an earlier checkpoint', async (t) => {
  const dir = fresh();
  const result = await dna.train({ ...options, outDir: dir, logEvery: 3 });
  result.model.dispose();
  const steps = lines(result.stepLog!);
  t.deepEqual(
    steps.map((line) => line.step),
    [3, 6],
  );
  t.deepEqual(Object.keys(steps[0]).sort(), [
    'accuracy',
    'epoch',
    'imagesPerSecond',
    'loss',
    'lr',
    'step',
    'stepInEpoch',
  ]);
  // Lines written after the checkpoint a resumed run starts from (a kill between the two) go.
  const metrics = path.join(dir, 'metrics.jsonl');
  appendFileSync(metrics, '{"epoch":3,"step":12}\n{"epoch":4,');
  await trimLog(metrics, { epoch: 2 });
  t.deepEqual(
    lines(metrics).map((line) => line.epoch),
    [1, 2],
  );
  await trimLog(result.stepLog!, { step: 4 });
  t.deepEqual(
    lines(result.stepLog!).map((line) => line.step),
    [3],
  );
});

test('an outDir that is a file is named as such', async (t) => {
  const file = fresh();
  writeFileSync(file, 'not a folder');
  await t.throwsAsync(dna.train({ ...options, outDir: file }), {
    message: `train: the output folder ${file} is a file, not a folder`,
  });
  await t.throwsAsync(dna.train({ ...options, outDir: path.join(file, 'run') }), {
    message: `train: the output folder ${path.join(file, 'run')} lies under a file (${file}), not a folder`,
  });
});
