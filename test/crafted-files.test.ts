// Files from users are data, not code: a policy file or a run checkpoint is checked (version,
// search space, recorded network, tensor names and shapes, run position) before anything is
// built from it, an invalid one is refused with an Error naming the file, and nothing in a file
// (paths, operator names, odd tensor names) makes the process read or write elsewhere.
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as dna from '../lib/index.js';
import { tinyDataset } from './helpers/tiny-data.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'dna-crafted-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

let files = 0;
const fresh = (name: string) => path.join(root, `${++files}-${name}`);

// A real policy file and a real training run to craft from.
const made = (async () => {
  const data = tinyDataset(16);
  const searched = await dna.search({
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: 1,
    batchSize: 16,
    outDir: path.join(root, 'search'),
  });
  searched.policy.dispose();
  const trained = await dna.train({
    train: data,
    model: dna.WRN_10_1,
    epochs: 1,
    batchSize: 16,
    outDir: path.join(root, 'train'),
  });
  trained.model.dispose();
  return { policy: searched.policyFile!, run: trained.checkpoints!.last };
})();

type Meta = Record<string, unknown>;

/** A copy of `source` with its meta (and tensors) changed by `change`. */
async function craft(
  source: string,
  name: string,
  change: (meta: Meta, tensors: Record<string, dna.Tensor>) => void,
): Promise<string> {
  const checkpoint = await dna.loadCheckpoint(source);
  const meta = structuredClone(checkpoint.meta) as Meta;
  change(meta, checkpoint.tensors);
  const file = fresh(name);
  await dna.saveCheckpoint(file, { kind: checkpoint.kind, meta, tensors: checkpoint.tensors });
  dna.dispose(checkpoint.tensors);
  return file;
}

async function refused(t: import('ava').ExecutionContext, promise: Promise<unknown>, file: string, pattern: RegExp) {
  const error = await t.throwsAsync(promise);
  t.true(error!.message.includes(file), `names the file: ${error!.message}`);
  t.regex(error!.message, pattern);
}

test('a policy file that records a huge network is refused before the network is built', async (t) => {
  const { policy } = await made;
  const file = await craft(policy, 'huge.dna', (meta) => (meta.backbone = { depth: 1000, widen: 64 }));
  const started = performance.now();
  await refused(
    t,
    dna.loadPolicy(file),
    file,
    /records \(depth 1000, widen 64, 525 outputs\) has \d+ parameters, but the file holds \d+ values/,
  );
  t.true(performance.now() - started < 5000, 'refused at once, nothing allocated');
  // Thousands of sub-policies make a huge head: refused the same way.
  const wide = await craft(policy, 'wide.dna', (meta) => {
    const space = meta.searchSpace as { subPolicies: number[][] };
    space.subPolicies = Array.from({ length: 100_000 }, (_, k) => [k % 15, (k + 1) % 15]);
  });
  await refused(t, dna.loadPolicy(wide), wide, /has \d+ parameters, but the file holds/);
});

test('a policy file with an invalid search space, version or backbone is refused naming the file', async (t) => {
  const { policy } = await made;
  type Space = { ops: Record<string, unknown>[]; subPolicies: unknown[] };
  const cases: Array<[string, (meta: Meta) => void, RegExp]> = [
    ['unknown kernel kind', (m) => ((m.searchSpace as Space).ops[3].kind = 99), /unknown kernel kind 99/],
    [
      'sub-policy out of range',
      (m) => ((m.searchSpace as Space).subPolicies[7] = [0, 40]),
      /sub-policy 7 refers to op 40/,
    ],
    ['sub-policy not a pair', (m) => ((m.searchSpace as Space).subPolicies[2] = 5), /sub-policy 2 must be a pair/],
    [
      'range not numbers',
      (m) => ((m.searchSpace as Space).ops[0].range = { lo: 0 }),
      /range must be two finite numbers/,
    ],
    ['duplicate op', (m) => ((m.searchSpace as Space).ops[1].name = 'ShearX'), /appears twice/],
    ['no ops', (m) => (m.searchSpace = { ops: [], subPolicies: [] }), /no ops/],
    ['search space missing', (m) => delete m.searchSpace, /a search space is/],
    ['future version', (m) => (m.version = 3), /policy file version 3, this version reads 1 and 2/],
    ['unknown magnitude form', (m) => (m.magnitudes = 'wide'), /unknown magnitude form 'wide'/],
    ['unknown head', (m) => (m.head = { kind: 'attention' }), /records an unknown head/],
    [
      'a feature head larger than its tensors',
      (m) => (m.head = { kind: 'features', hidden: 1_000_000, classes: 10 }),
      /\S/,
    ],
    ['backbone missing', (m) => delete m.backbone, /records no backbone/],
    ['backbone of another depth', (m) => (m.backbone = { depth: 16, widen: 1 }), /\S/],
    ['channels of another kind', (m) => (m.inChannels = 3), /\S/],
  ];
  for (const [name, change, pattern] of cases) {
    const file = await craft(policy, `${name.replace(/ /g, '-')}.dna`, change);
    await refused(t, dna.loadPolicy(file), file, pattern);
  }
});

test(
  'a policy file whose tensors do not fit its network is refused: missing, extra, reshaped ' + 'or retyped',
  async (t) => {
    const { policy } = await made;
    const cases: Array<[string, (tensors: Record<string, dna.Tensor>) => void]> = [
      ['missing', (x) => delete x['fc.weight']],
      ['extra', (x) => (x['../../etc/passwd'] = dna.zeros([1]))],
      ['reshaped', (x) => (x['fc.bias'] = dna.zeros([3]))],
      ['retyped', (x) => (x['conv1.weight'] = x['conv1.weight'].toDtype('int32'))],
    ];
    for (const [name, change] of cases) {
      const file = await craft(policy, `${name}.dna`, (_, tensors) => change(tensors));
      await refused(t, dna.loadPolicy(file), file, /\S/);
    }
  },
);

test(
  'paths, operator names and odd names inside a file are data: nothing is read, loaded or ' + 'written elsewhere',
  async (t) => {
    const { policy } = await made;
    const dir = fresh('sandbox');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'sentinel'), 'untouched');
    const evil = path.join(dir, 'evil.so');
    writeFileSync(evil, 'not a library');
    // A custom op named by a path or by an operator that is not loaded: refused, never dlopen'ed.
    for (const custom of [evil, 'dna_evil::x', '../../lib/libc.so.6']) {
      const file = await craft(policy, 'custom.dna', (meta) => {
        const space = meta.searchSpace as { ops: Record<string, unknown>[] };
        space.ops[14] = { name: 'Evil', custom, range: [0, 1], identityAt: null };
      });
      await refused(t, dna.loadPolicy(file), file, /custom op 'Evil', which is not available in this process/);
    }
    t.throws(() => dna.applyOp(dna.zeros([1, 1, 4, 4]), 'Evil', 0.5), { message: /unknown op 'Evil'/ });
    // Provenance and extra fields naming paths are carried as strings; the report goes only where asked.
    const file = await craft(policy, 'paths.dna', (meta) => {
      (meta.provenance as Meta).dataset = '../../../etc/passwd';
      meta.outDir = dir;
      meta.file = '/etc/shadow';
    });
    const loaded = await dna.loadPolicy(file);
    t.is(loaded.provenance.dataset, '../../../etc/passwd');
    const report = await dna.policyReport({ policy: loaded, data: tinyDataset(8) });
    const out = fresh('report');
    await dna.writePolicyReport(report, out);
    loaded.dispose();
    t.deepEqual(readdirSync(dir).sort(), ['evil.so', 'sentinel']);
    t.true(readdirSync(out).includes('report.md'));
    t.false(existsSync(path.join(root, 'etc')));
  },
);

test('a run checkpoint with a crafted position, version or network is refused naming the file', async (t) => {
  const { run } = await made;
  // The settings of the run crafted from (a resumed run must keep them).
  const options = { train: tinyDataset(16), model: dna.WRN_10_1, epochs: 1, batchSize: 16, resume: true };
  const position = (value: unknown) => (meta: Meta) => ((meta.position as Meta).epoch = value);
  const cases: Array<[string, (meta: Meta) => void, RegExp]> = [
    ['negative epoch', position(-3), /position\.epoch is -3, not a non-negative integer/],
    ['string epoch', position('1'), /position\.epoch is "1"/],
    ['fractional batch', (m) => ((m.position as Meta).batch = 0.5), /position\.batch is 0\.5/],
    ['no position', (m) => delete m.position, /position\.epoch is missing/],
    ['version', (m) => (m.version = 99), /checkpoint version 99/],
    ['another network', (m) => ((m.modules as Record<string, Meta>).model.depth = 16), /checkpoint of another model/],
  ];
  for (const [name, change, pattern] of cases) {
    const dir = fresh(name.replace(/ /g, '-'));
    mkdirSync(dir);
    const file = await craft(run, 'x', change);
    const target = path.join(dir, 'train.last.ckpt');
    renameSync(file, target);
    await refused(t, dna.train({ ...options, outDir: dir }), target, pattern);
  }
  // loadTrainedModel builds the network a checkpoint records: a huge one is refused first.
  const huge = await craft(run, 'huge.ckpt', (meta) =>
    Object.assign((meta.modules as Record<string, Meta>).model, { depth: 1000, widen: 64 }),
  );
  const started = performance.now();
  await refused(t, dna.loadTrainedModel(huge), huge, /has \d+ parameters, but the file holds \d+ values/);
  t.true(performance.now() - started < 5000);
  // The untouched checkpoint still resumes.
  const dir = fresh('good');
  mkdirSync(dir);
  renameSync(await craft(run, 'good', () => {}), path.join(dir, 'train.last.ckpt'));
  const resumed = await dna.train({ ...options, outDir: dir });
  t.deepEqual(resumed.resumedFrom, { epoch: 1, step: 1 });
  t.is(resumed.steps, 1);
  resumed.model.dispose();
});
