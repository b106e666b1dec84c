// Execution settings of a model (memory format and autocast precision): they change how the
// model runs, not what it computes beyond rounding. Channels-last must match NCHW to float32
// rounding, in outputs and gradients; bfloat16 autocast must stay within bfloat16's precision,
// keep parameters, gradients and logits float32, and leave no autocast state behind. On a GPU the
// same checks run on CUDA (test/cuda.test.ts).
import test from 'ava';
import * as dna from '../lib/index.js';
import { maxAbsDiff } from './helpers/augment-reference.js';
import { tinyDataset } from './helpers/tiny-data.js';

const { tidy, noGrad } = dna;

const model = (execution?: dna.Execution) => {
  const m = dna.wideResNet({ ...dna.WRN_10_1, classes: 5, inChannels: 3, seed: 11 });
  return execution === undefined ? m : m.setExecution(execution);
};
const images = (seed = 1, batch = 6, size = 12) =>
  dna.rand([batch, 3, size, size], { generator: new dna.Generator(seed) });
const labels = dna.tensor([0, 1, 2, 3, 4, 0], [6], { dtype: 'int64' });

/** Logits and the gradient of every parameter (by name) for one batch. */
function forwardBackward(
  m: dna.Module,
  x: dna.Tensor,
): { logits: Float32Array; grads: Record<string, Float32Array>; dtypes: string[] } {
  for (const p of m.parameters()) p.zeroGrad();
  return tidy(() => {
    const logits = m.forward(x);
    dna.crossEntropy(logits, labels).backward();
    const named = m.namedParameters();
    return {
      logits: logits.data() as Float32Array,
      grads: Object.fromEntries(Object.entries(named).map(([name, p]) => [name, p.grad!.data() as Float32Array])),
      dtypes: [logits.dtype, ...Object.values(named).map((p) => p.grad!.dtype)],
    };
  });
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

test('defaults: NCHW float32; setExecution reports what it set, and unset fields return to their defaults', (t) => {
  const m = model();
  t.deepEqual(m.execution, { memoryFormat: 'contiguous', precision: 'float32' });
  t.is(m.setExecution({ memoryFormat: 'channelsLast', precision: 'bfloat16' }), m);
  t.deepEqual(m.execution, { memoryFormat: 'channelsLast', precision: 'bfloat16' });
  m.setExecution({ precision: 'bfloat16' });
  t.deepEqual(m.execution, { memoryFormat: 'contiguous', precision: 'bfloat16' });
  m.setExecution({});
  t.deepEqual(m.execution, { memoryFormat: 'contiguous', precision: 'float32' });
  m.dispose();
});

test(
  'channels-last: the same logits and parameter gradients as NCHW, to float32 rounding, in ' + 'training and eval',
  (t) => {
    const x = images();
    const plain = model();
    const nhwc = model({ memoryFormat: 'channelsLast' });
    const a = forwardBackward(plain, x);
    const b = forwardBackward(nhwc, x);
    t.true(
      maxAbsDiff(a.logits, b.logits) <= 1e-5 * Math.max(1, maxAbs(a.logits)),
      `logits differ by ${maxAbsDiff(a.logits, b.logits)}`,
    );
    for (const [name, grad] of Object.entries(a.grads)) {
      const error = maxAbsDiff(grad, b.grads[name]);
      t.true(
        error <= 1e-4 * Math.max(1e-3, maxAbs(grad)),
        `${name}: gradients differ by ${error} (scale ${maxAbs(grad)})`,
      );
    }
    plain.eval();
    nhwc.eval();
    const evalA = tidy(() => noGrad(() => plain.forward(x).data() as Float32Array));
    const evalB = tidy(() => noGrad(() => nhwc.forward(x).data() as Float32Array));
    t.true(maxAbsDiff(evalA, evalB) <= 1e-5 * Math.max(1, maxAbs(evalA)));
    dna.dispose([plain, nhwc, x]);
  },
);

test(
  'channels-last changes the weights in place: parameter handles and the optimiser follow, state dicts move ' +
    'between formats',
  (t) => {
    const x = images(2);
    const m = model();
    const handle = m.namedParameters()['conv1.weight'];
    const optimizer = dna.sgd(m, { lr: 0.1, momentum: 0.9 });
    m.setExecution({ memoryFormat: 'channelsLast' });
    const before = handle.data() as Float32Array;
    tidy(() => {
      optimizer.zeroGrad();
      dna.crossEntropy(m.forward(x), labels).backward();
      optimizer.step();
    });
    const after = handle.data() as Float32Array;
    t.true(maxAbsDiff(before, after) > 0, 'the handle taken before the conversion sees the step');
    t.deepEqual(after, m.namedParameters()['conv1.weight'].data());

    // A state dict of the channels-last model restores the same outputs in an NCHW one, and back.
    const plain = model();
    const state = m.stateDict();
    plain.loadStateDict(state);
    m.eval();
    plain.eval();
    const fromNhwc = tidy(() => noGrad(() => m.forward(x).data() as Float32Array));
    const fromNchw = tidy(() => noGrad(() => plain.forward(x).data() as Float32Array));
    t.true(maxAbsDiff(fromNhwc, fromNchw) <= 1e-5 * Math.max(1, maxAbs(fromNchw)));
    m.setExecution({});
    const backToNchw = tidy(() => noGrad(() => m.forward(x).data() as Float32Array));
    t.true(maxAbsDiff(backToNchw, fromNchw) <= 1e-5 * Math.max(1, maxAbs(fromNchw)));
    dna.dispose([...Object.values(state), m, plain, optimizer, x]);
  },
);

test('bfloat16 autocast: float32 logits and gradients, within bfloat16 precision of float32', (t) => {
  const x = images(3);
  const exact = forwardBackward(model(), x);
  const bf16 = model({ precision: 'bfloat16' });
  const low = forwardBackward(bf16, x);
  t.deepEqual([...new Set(low.dtypes)], ['float32']);
  for (const p of bf16.parameters()) t.is(p.dtype, 'float32');
  // bfloat16 keeps 8 significant bits: a relative rounding of 2^-8 per op, a few percent after
  // ten layers. The logits differ, but not by more than that.
  const logitError = maxAbsDiff(exact.logits, low.logits);
  t.true(logitError > 0, 'autocast changed the arithmetic');
  t.true(logitError <= 0.05 * Math.max(1, maxAbs(exact.logits)), `logits differ by ${logitError}`);
  // How close bfloat16 gradients come depends on the CPU's bfloat16 kernels: on an AMD EPYC
  // without AVX-512 the whole gradient measured 0.967-0.973 in cosine similarity and a 16-value
  // batch-norm bias 0.93; a wrong gradient rule would be far below either bound.
  const names = Object.keys(exact.grads).filter((name) => maxAbs(exact.grads[name]) > 1e-6);
  for (const name of names) {
    const similarity = cosine(exact.grads[name], low.grads[name]);
    t.true(similarity > 0.9, `${name}: gradient cosine similarity ${similarity.toFixed(4)}`);
  }
  const whole = (grads: Record<string, Float32Array>) =>
    Float32Array.from(names.flatMap((name) => Array.from(grads[name])));
  const overall = cosine(whole(exact.grads), whole(low.grads));
  t.true(overall > 0.95, `whole gradient cosine similarity ${overall.toFixed(4)}`);
  dna.dispose([bf16, x]);
});

test('the autocast scope ends with the forward pass: float32 work afterwards is bit-identical', (t) => {
  const x = images(4);
  const plain = model();
  const before = forwardBackward(plain, x);
  const bf16 = model({ precision: 'bfloat16' });
  tidy(() => bf16.forward(x));
  const after = forwardBackward(plain, x);
  t.deepEqual(after.logits, before.logits);
  t.deepEqual(after.grads['conv1.weight'], before.grads['conv1.weight']);
  // A failing forward (wrong channels) under autocast leaves no state behind either.
  t.throws(() => bf16.forward(dna.zeros([2, 1, 8, 8])), { message: /3-channel images/ });
  t.deepEqual(forwardBackward(plain, x).logits, before.logits);
  dna.dispose([plain, bf16, x]);
});

test('train and search run with channels-last and bfloat16, and learn', async (t) => {
  const data = tinyDataset(64, 3, 8);
  const execution: dna.Execution = { memoryFormat: 'channelsLast', precision: 'bfloat16' };
  const epochLosses: number[] = [];
  const trained = await dna.train({
    train: data,
    model: { ...dna.WRN_10_1 },
    epochs: 4,
    batchSize: 16,
    lr: 0.05,
    seed: 1,
    execution,
    onProgress: (p) => {
      if (p.phase === 'epoch') epochLosses.push(p.loss);
    },
  });
  t.deepEqual(trained.model.execution, execution);
  t.true(epochLosses.every(Number.isFinite));
  t.true(
    epochLosses[epochLosses.length - 1] < epochLosses[0],
    `epoch losses ${epochLosses.map((l) => l.toFixed(3)).join(', ')}`,
  );
  trained.model.dispose();

  const searched = await dna.search({
    train: data,
    classifier: dna.WRN_10_1,
    policy: dna.WRN_10_1,
    epochs: 1,
    batchSize: 16,
    seed: 1,
    execution,
  });
  t.deepEqual(searched.policy.network.execution, execution);
  t.is(searched.steps, 4);
  searched.policy.dispose();
});

test('bad execution settings: an Error that names the setting', async (t) => {
  const m = model();
  t.throws(() => m.setExecution({ precision: 'float16' as 'bfloat16' }), {
    message: /precision must be one of float32, bfloat16, got 'float16'/,
  });
  t.throws(() => m.setExecution({ memoryFormat: 'nhwc' as 'channelsLast' }), {
    message: /memoryFormat must be one of contiguous, channelsLast, got 'nhwc'/,
  });
  t.throws(() => m.setExecution(null as unknown as dna.Execution), { message: /execution settings must be an object/ });
  t.deepEqual(m.execution, { memoryFormat: 'contiguous', precision: 'float32' });
  const data = tinyDataset(16, 3, 8);
  await t.throwsAsync(
    dna.train({ train: data, model: dna.WRN_10_1, epochs: 1, execution: { precision: 'half' as 'bfloat16' } }),
    { message: /^train: precision must be/ },
  );
  await t.throwsAsync(
    dna.search({
      train: data,
      classifier: dna.WRN_10_1,
      policy: dna.WRN_10_1,
      epochs: 1,
      execution: { memoryFormat: 'x' as 'contiguous' },
    }),
    { message: /^search: memoryFormat must be/ },
  );
  m.dispose();
});
