// The `dna` command line: info, a short train run and eval of its checkpoint, usage errors.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import sharp from 'sharp';

import { writeTinyIdx } from './helpers/tiny-data.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'dna.js');

/** A duration as the CLI prints it (formatDuration): 45s, 1m25s; a loaded machine may pass a minute. */
const DURATION = '(?:\\d+m)?\\d+s';

function dna(...args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('dna info prints the backend', (t) => {
  const result = dna('info', '--json');
  t.is(result.status, 0, result.stderr);
  const info = JSON.parse(result.stdout);
  t.is(typeof info.torch, 'string');
  t.is(typeof info.cuda, 'boolean');
});

test('dna train writes checkpoints and metrics, dna eval reads the checkpoint back', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-cli-'));
  try {
    const trained = dna(
      'train',
      '--data',
      'fashion-mnist',
      '--model',
      'wrn-10-1',
      '--epochs',
      '1',
      '--subset',
      '200',
      '--batch-size',
      '50',
      '--out',
      dir,
      '--json',
    );
    t.is(trained.status, 0, trained.stderr);
    const lines = trained.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const summary = lines.at(-1);
    t.is(summary.epochs, 1);
    t.is(summary.steps, 4);
    t.true(summary.testAccuracy >= 0 && summary.testAccuracy <= 1);
    t.is(lines[0].phase, 'epoch');
    const evaluated = dna('eval', '--checkpoint', summary.checkpoints.last, '--data', 'fashion-mnist', '--json');
    t.is(evaluated.status, 0, evaluated.stderr);
    const result = JSON.parse(evaluated.stdout);
    t.is(result.count, 10000);
    t.is(result.accuracy, summary.testAccuracy);
    // Execution settings change how the model runs, not the checkpoint it reads.
    const nhwc = dna(
      'eval',
      '--checkpoint',
      summary.checkpoints.last,
      '--data',
      'fashion-mnist',
      '--channels-last',
      '--json',
    );
    t.is(nhwc.status, 0, nhwc.stderr);
    t.true(Math.abs(JSON.parse(nhwc.stdout).accuracy - summary.testAccuracy) <= 0.002);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dna search writes a policy file that loadPolicy reads', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-cli-'));
  try {
    const searched = dna(
      'search',
      '--data',
      'fashion-mnist',
      '--model',
      'wrn-10-1',
      '--epochs',
      '1',
      '--subset',
      '100',
      '--batch-size',
      '50',
      '--out',
      dir,
      '--json',
      '--precision',
      'bfloat16',
      '--channels-last',
    );
    t.is(searched.status, 0, searched.stderr);
    const summary = JSON.parse(searched.stdout.trim().split('\n').at(-1)!);
    t.is(summary.steps, 2);
    const { loadPolicy } = await import('../lib/dna/policy-file.js');
    const policy = await loadPolicy(summary.policyFile);
    t.is(policy.searchSpace.subPolicies.length, 105);
    policy.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage errors exit with 2 and say what is wrong', (t) => {
  const unknown = dna('frobnicate');
  t.is(unknown.status, 2);
  t.regex(unknown.stderr, /unknown command 'frobnicate'/);
  const model = dna('train', '--data', 'fashion-mnist', '--model', 'wrn-99');
  t.is(model.status, 2);
  t.regex(model.stderr, /--model must be one of wrn-40-2/);
  const precision = dna('train', '--data', 'fashion-mnist', '--precision', 'half');
  t.is(precision.status, 2);
  t.regex(precision.stderr, /--precision must be one of float32, bfloat16, got 'half'/);
  const missing = dna('eval');
  t.is(missing.status, 2);
  t.regex(missing.stderr, /--checkpoint is required/);
  const notAFile = dna('eval', '--checkpoint', '/nonexistent/x.ckpt', '--data', 'fashion-mnist');
  t.is(notAFile.status, 1);
  t.regex(notAFile.stderr, /\/nonexistent\/x\.ckpt/);
});

test("--policy-model with the head on the features (the demo's default, or --policy-head features) is refused", (t) => {
  for (const args of [
    ['demo', '--policy-model', 'wrn-10-1', '--out', '/nonexistent/demo'],
    ['search', '--data', 'fashion-mnist', '--policy-head', 'features', '--policy-model', 'wrn-10-1'],
  ]) {
    const refused = dna(...args);
    t.is(refused.status, 2, args.join(' '));
    t.regex(refused.stderr, /--policy-model picks the policy network of --policy-head network/);
  }
});

test(
  'dna demo runs the pipeline (search, train with the policy, evaluate, report); dna report and dna train ' +
    '--policy read its policy',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-cli-demo-'));
    try {
      const ran = dna(
        'demo',
        '--out',
        dir,
        '--search-images',
        '100',
        '--search-epochs',
        '1',
        '--train-images',
        '100',
        '--train-epochs',
        '1',
        '--test-images',
        '100',
        '--model',
        'wrn-10-1',
        '--compare',
        'none',
        '--json',
      );
      t.is(ran.status, 0, ran.stderr);
      const result = JSON.parse(ran.stdout.trim().split('\n').at(-1)!);
      t.false(result.aborted);
      t.deepEqual(
        result.runs.map((r: { augmentation: string }) => r.augmentation),
        ['dna', 'none'],
      );
      for (const run of result.runs) t.true(run.testAccuracy >= 0 && run.testAccuracy <= 1);
      t.true(existsSync(result.search.policyFile));
      t.true(existsSync(result.report.markdown));
      t.is(result.report.plots.length, 4);
      t.is(result.report.examples, path.join(path.dirname(result.report.markdown), 'examples.png'));
      t.true(existsSync(result.report.examples));
      t.true(existsSync(path.join(dir, 'summary.json')));

      const reported = dna(
        'report',
        '--policy',
        result.search.policyFile,
        '--data',
        'fashion-mnist',
        '--subset',
        '100',
        '--out',
        path.join(dir, 'again'),
        '--examples',
        '2',
        '--json',
      );
      t.is(reported.status, 0, reported.stderr);
      const files = JSON.parse(reported.stdout);
      t.regex(readFileSync(files.markdown, 'utf8'), /Ankle boot/);
      t.regex(readFileSync(files.markdown, 'utf8'), /!\[Augmented examples\]\(examples\.png\)/);
      // Two pairs of 28 x 28 images enlarged to 84 a row: the grid is narrower than the demo's four.
      const [two, four] = await Promise.all(
        [files.examples, result.report.examples].map((file: string) => sharp(file).metadata()),
      );
      t.is(two.format, 'png');
      t.true(two.width < four.width, `${two.width} < ${four.width}`);
      t.is(two.height, four.height, 'a row per class either way');
      const zero = dna('report', '--policy', result.search.policyFile, '--data', 'fashion-mnist', '--examples', '0');
      t.is(zero.status, 2);
      t.regex(zero.stderr, /--examples must be a positive integer, got '0'/);

      const trained = dna(
        'train',
        '--data',
        'fashion-mnist',
        '--policy',
        result.search.policyFile,
        '--model',
        'wrn-10-1',
        '--epochs',
        '1',
        '--subset',
        '100',
        '--batch-size',
        '50',
        '--out',
        path.join(dir, 'train-again'),
        '--json',
      );
      t.is(trained.status, 0, trained.stderr);
      t.is(JSON.parse(trained.stdout.trim().split('\n').at(-1)!).steps, 2);

      const both = dna(
        'train',
        '--data',
        'fashion-mnist',
        '--policy',
        result.search.policyFile,
        '--augmentation',
        'none',
      );
      t.is(both.status, 2);
      t.regex(both.stderr, /--policy and --augmentation exclude each other/);
      const missing = dna('report', '--data', 'fashion-mnist');
      t.is(missing.status, 2);
      t.regex(missing.stderr, /--policy is required/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

// Serial: the other tests here block this worker in spawnSync, which would hold back the timer
// that sends SIGINT until the run had gone past its first epoch.
test.serial(
  'Ctrl-C: the summary names what exists and the command that continues; a used --out is refused by name',
  async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-cli-stop-'));
    try {
      const data = writeTinyIdx(path.join(dir, 'data'), 1600, 40);
      const out = path.join(dir, 'run');
      const args = ['train', '--data', data, '--format', 'idx', '--model', 'wrn-10-1', '--epochs', '2'];
      const run = [...args, '--batch-size', '8', '--out', out, '--log-every', '1'];
      // Stopped by SIGINT once a few steps are logged (200 steps an epoch, so inside the first).
      const child = spawn(process.execPath, [cli, ...run], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const steps = path.join(out, 'train.steps.jsonl');
      const timer = setInterval(() => {
        if (existsSync(steps) && readFileSync(steps, 'utf8').split('\n').length > 3) {
          clearInterval(timer);
          child.kill('SIGINT');
        }
      }, 20);
      const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
      clearInterval(timer);
      t.is(status, 130, stderr);
      t.regex(stderr, /stopping after the current step/);
      t.regex(stdout, new RegExp(`^stopped in epoch 1/2 after step \\d+, ${DURATION} in all$`, 'm'));
      t.regex(stdout, new RegExp(`^checkpoint ${out}/train\\.last\\.ckpt$`, 'm'));
      t.notRegex(stdout, /best|metrics/, 'no file that does not exist');
      const [, command] = /^continue {3}dna (.*)$/m.exec(stdout) ?? [];
      t.is(command, [...run, '--resume'].join(' '));

      const resumed = dna(...command.split(' '));
      t.is(resumed.status, 0, resumed.stderr);
      t.regex(resumed.stderr, new RegExp(`^resuming ${out} in epoch 1/2, after step \\d+ of 400$`, 'm'));
      t.regex(resumed.stdout, new RegExp(`^trained 2 epochs in ${DURATION} \\(resumed after step \\d+\\)$`, 'm'));
      t.regex(resumed.stdout, /^test accuracy \d+\.\d\d% \(error \d+\.\d\d%\), best \d+\.\d\d%$/m);

      const again = dna(...run);
      t.is(again.status, 2);
      t.regex(
        again.stderr,
        /^dna: --out .*run already holds a train run \(train\.last\.ckpt, train\.best\.ckpt, metrics\.jsonl, train\.steps\.jsonl, train\.run\.json\); --resume continues it, --force starts over \(deleting those files\)$/m,
      );
      const changed = dna(...run.map((word) => (word === '2' ? '3' : word)), '--resume');
      t.is(changed.status, 2);
      t.regex(
        changed.stderr,
        /written by a run with other settings: --epochs 2 \(now 3\); resume with the same settings, or start over with --force$/m,
      );
      const finished = dna(...run, '--resume');
      t.regex(finished.stderr, /has finished its 2 epochs already; nothing to resume/);
      t.regex(finished.stdout, /^the run had finished: 2 epochs in/m);
      const fresh = dna(...args, '--batch-size', '8', '--out', path.join(dir, 'fresh'), '--resume', '--epochs', '1');
      t.regex(fresh.stderr, /no checkpoint to resume in .*fresh; starting from the beginning/);

      // Errors in the user's words.
      const file = path.join(dir, 'a-file');
      writeFileSync(file, 'x');
      const outFile = dna(...args, '--out', file);
      t.is(outFile.status, 1);
      t.regex(outFile.stderr, /^dna: train: the output folder .*a-file is a file, not a folder$/m);
      const policy = dna('report', '--policy', file, '--data', data, '--format', 'idx');
      t.regex(
        policy.stderr,
        /a-file is not a policy file \(a policy\.dna written by search\): it is no file of dna-augment at all/,
      );
      const nowhere = dna('train', '--data', path.join(dir, 'nowhere'));
      t.regex(nowhere.stderr, /^dna: --data .*nowhere: no such folder$/m);
      const info = JSON.parse(dna('info', '--json').stdout);
      if (!info.cudaBuilt) {
        const cuda = dna(...args, '--device', 'cuda');
        t.is(cuda.status, 2);
        t.regex(cuda.stderr, /^dna: --device cuda: this build of dna-augment has no CUDA/m);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('--import: a module of TypeScript transforms adds its op to dna search; dna report needs it to read the policy', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dna-cli-import-'));
  try {
    const gamma = path.resolve(path.dirname(cli), '..', 'examples', 'custom-op', 'gamma.js');
    const common = ['--data', 'fashion-mnist', '--model', 'wrn-10-1', '--policy-model', 'wrn-10-1'];
    const searched = dna(
      'search',
      ...common,
      '--epochs',
      '1',
      '--subset',
      '64',
      '--import',
      gamma,
      '--custom-op',
      'Gamma',
      '--out',
      dir,
    );
    t.is(searched.status, 0, searched.stderr);
    // The next commands it names carry the module along.
    t.true(searched.stdout.includes(`dna report --policy ${dir}/policy.dna --data fashion-mnist --import ${gamma}`));
    const report = ['report', '--policy', path.join(dir, 'policy.dna'), '--data', 'fashion-mnist', '--subset', '50'];
    const without = dna(...report);
    t.is(without.status, 1);
    t.regex(
      without.stderr,
      /uses the custom op 'Gamma', which is not loaded: load the module that registers it with --import FILE/,
    );
    const withIt = dna(...report, '--import', gamma, '--out', path.join(dir, 'report'), '--json');
    t.is(withIt.status, 0, withIt.stderr);
    const json = JSON.parse(readFileSync(JSON.parse(withIt.stdout).json, 'utf8'));
    t.is(json.searchSpace.ops.at(-1), 'Gamma');
    t.is(json.searchSpace.identityAt.at(-1), 1 / 3);
    const missing = dna(...report, '--import', path.join(dir, 'nowhere.js'));
    t.is(missing.status, 1);
    t.regex(missing.stderr, /nowhere\.js/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
