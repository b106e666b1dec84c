// Optimisers: SGD and Adam steps against their update rules written out in JS, checkpointed
// state that resumes exactly, gradient clipping, the cosine schedule, a small network that
// learns, and clear errors.
import test from 'ava';
import * as dna from '../lib/index.js';
import { mulberry32 } from './helpers/random.js';

const f64 = (values: number[], shape = [values.length]) => dna.tensor(values, shape, { dtype: 'float64' });
const values = (x: dna.Tensor) => Array.from(x.data() as Float64Array);

/** Sets p.grad to exactly `grad` (through backward of sum(p * grad)). */
function setGrad(p: dna.Tensor, grad: number[]): void {
  dna.tidy(() => p.mul(f64(grad, p.shape)).sum().backward());
}

/** The gradients of step k: different every step, for two parameters of 3 and 2x2 values. */
function gradsAt(k: number): [number[], number[]] {
  return [
    [Math.sin(k + 1), Math.cos(2 * k) - 0.5, 0.3 * k - 1],
    [0.5 - k * 0.1, Math.sin(3 * k), 1.5, -0.25 * (k % 3)],
  ];
}
const initial: [number[], number[]] = [
  [0.5, -1.25, 2.0],
  [1.0, -0.5, 0.25, 3.0],
];

function makeParams(start: [number[], number[]] = initial): [dna.Tensor, dna.Tensor] {
  return [f64(start[0]).requireGrad(), f64(start[1], [2, 2]).requireGrad()];
}

/** Runs steps from..to-1 of the schedule of gradients. */
function run(optimizer: dna.Optimizer, params: dna.Tensor[], from: number, to: number): void {
  for (let k = from; k < to; k++) {
    optimizer.zeroGrad();
    gradsAt(k).forEach((g, i) => setGrad(params[i], g));
    optimizer.step();
  }
}

// ---- Update rules, as torch.optim documents them ----

interface SgdRule {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}
function sgdReference(options: SgdRule, steps: number): number[][] {
  const { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false } = options;
  const params = initial.map((p) => [...p]);
  const buffers: Array<number[] | undefined> = [undefined, undefined];
  for (let k = 0; k < steps; k++) {
    gradsAt(k).forEach((grad, i) => {
      const p = params[i];
      let d = grad.map((g, j) => g + weightDecay * p[j]);
      if (momentum !== 0) {
        const previous = buffers[i];
        const buffer = previous === undefined ? [...d] : previous.map((b, j) => momentum * b + (1 - dampening) * d[j]);
        buffers[i] = buffer;
        d = nesterov ? d.map((v, j) => v + momentum * buffer[j]) : buffer;
      }
      params[i] = p.map((v, j) => v - lr * d[j]);
    });
  }
  return params;
}

interface AdamRule {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}
function adamReference({ lr, betas: [b1, b2], eps, weightDecay }: AdamRule, steps: number): number[][] {
  const params = initial.map((p) => [...p]);
  const m = initial.map((p) => p.map(() => 0));
  const v = initial.map((p) => p.map(() => 0));
  for (let k = 0; k < steps; k++) {
    const t = k + 1;
    gradsAt(k).forEach((grad, i) => {
      const g = grad.map((x, j) => x + weightDecay * params[i][j]);
      m[i] = m[i].map((x, j) => b1 * x + (1 - b1) * g[j]);
      v[i] = v[i].map((x, j) => b2 * x + (1 - b2) * g[j] * g[j]);
      const correction1 = 1 - b1 ** t;
      const correction2 = 1 - b2 ** t;
      params[i] = params[i].map(
        (x, j) => x - (lr / correction1) * (m[i][j] / (Math.sqrt(v[i][j]) / Math.sqrt(correction2) + eps)),
      );
    });
  }
  return params;
}

function close(
  t: import('ava').ExecutionContext,
  actual: number[],
  expected: number[],
  label: string,
  tolerance = 1e-12,
): void {
  t.is(actual.length, expected.length, label);
  const worst = Math.max(...actual.map((a, i) => Math.abs(a - expected[i]) / (1 + Math.abs(expected[i]))));
  t.true(worst <= tolerance, `${label}: ${actual} vs ${expected}`);
}

test('SGD steps follow the update rule (plain, momentum, dampening, Nesterov, weight decay)', (t) => {
  const cases: SgdRule[] = [
    { lr: 0.1 },
    { lr: 0.1, momentum: 0.9 },
    { lr: 0.05, momentum: 0.9, dampening: 0.1 },
    { lr: 0.1, momentum: 0.9, nesterov: true },
    { lr: 0.1, momentum: 0.9, weightDecay: 2e-4, nesterov: true },
    { lr: 0.2, weightDecay: 0.01 },
  ];
  for (const options of cases) {
    dna.tidy(() => {
      const params = makeParams();
      const optimizer = dna.sgd(params, options);
      t.is(optimizer.kind, 'sgd');
      for (let steps = 1; steps <= 4; steps++) {
        run(optimizer, params, steps - 1, steps);
        const expected = sgdReference(options, steps);
        params.forEach((p, i) =>
          close(t, values(p), expected[i], `${JSON.stringify(options)} after ${steps} steps, param ${i}`),
        );
      }
      optimizer.dispose();
    });
  }
});

test('Adam steps follow the update rule (bias correction, betas, eps, weight decay)', (t) => {
  const cases: AdamRule[] = [
    { lr: 0.005, betas: [0.5, 0.999], eps: 1e-8, weightDecay: 0 },
    { lr: 0.01, betas: [0.9, 0.99], eps: 1e-3, weightDecay: 0.05 },
  ];
  for (const options of cases) {
    dna.tidy(() => {
      const params = makeParams();
      const optimizer = dna.adam(params, options);
      t.is(optimizer.kind, 'adam');
      t.deepEqual(optimizer.options, options);
      for (let steps = 1; steps <= 4; steps++) {
        run(optimizer, params, steps - 1, steps);
        const expected = adamReference(options, steps);
        params.forEach((p, i) =>
          close(t, values(p), expected[i], `${JSON.stringify(options)} after ${steps} steps, param ${i}`),
        );
      }
      optimizer.dispose();
    });
  }
  // Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no weight decay.
  dna.tidy(() => {
    const params = makeParams();
    const optimizer = dna.adam(params);
    t.deepEqual(optimizer.options, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    run(optimizer, params, 0, 2);
    const expected = adamReference({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 }, 2);
    params.forEach((p, i) => close(t, values(p), expected[i], `defaults, param ${i}`));
    optimizer.dispose();
  });
});

test('step() leaves parameters without a gradient alone; zeroGrad() drops the gradients', (t) => {
  dna.tidy(() => {
    const [a, b] = makeParams();
    const optimizer = dna.sgd([a, b], { lr: 0.1, momentum: 0.9 });
    setGrad(a, [1, 1, 1]);
    optimizer.step();
    close(
      t,
      values(a),
      initial[0].map((v) => v - 0.1),
      'a moved',
    );
    t.deepEqual(values(b), initial[1], 'b has no gradient: unchanged');
    t.deepEqual(Object.keys(optimizer.state().tensors), ['0.momentumBuffer']);
    optimizer.zeroGrad();
    t.is(a.grad, undefined);
    t.is(b.grad, undefined);
    optimizer.dispose();
  });
});

test('the learning rate can be read and set between steps', (t) => {
  dna.tidy(() => {
    const [a] = makeParams();
    const optimizer = dna.sgd([a], { lr: 0.1 });
    t.is(optimizer.lr, 0.1);
    optimizer.lr = 0.5;
    t.is(optimizer.lr, 0.5);
    t.is((optimizer.options as dna.SgdOptions).lr, 0.5);
    setGrad(a, [1, 2, 3]);
    optimizer.step();
    close(
      t,
      values(a),
      initial[0].map((v, j) => v - 0.5 * (j + 1)),
      'stepped with the new lr',
    );
    t.throws(() => (optimizer.lr = -1), {
      message: /^optimizerSetLr: the learning rate must be a non-negative finite number, got -1$/,
    });
    t.throws(() => (optimizer.lr = NaN), { message: /got nan/ });
    t.is(optimizer.lr, 0.5);
    optimizer.dispose();
  });
});

for (const kind of ['sgd', 'adam'] as const) {
  test(`${kind}: a saved state resumes exactly where an uninterrupted run goes`, (t) => {
    const make = (params: dna.Tensor[], lr: number) =>
      kind === 'sgd'
        ? dna.sgd(params, { lr, momentum: 0.9, weightDecay: 1e-3, nesterov: true })
        : dna.adam(params, { lr, betas: [0.5, 0.999], weightDecay: 1e-3 });
    // Both runs change the learning rate along the way, as a schedule would.
    const schedule = (optimizer: dna.Optimizer, params: dna.Tensor[], from: number, to: number) => {
      for (let k = from; k < to; k++) {
        optimizer.lr = dna.cosineLr(k, 6, 0.1, 0.01);
        run(optimizer, params, k, k + 1);
      }
    };
    dna.tidy(() => {
      const straight = makeParams();
      const uninterrupted = make(straight, 0.1);
      schedule(uninterrupted, straight, 0, 6);

      const first = makeParams();
      const interrupted = make(first, 0.1);
      schedule(interrupted, first, 0, 3);
      const state = interrupted.state();
      const checkpoint = first.map(values) as [number[], number[]];
      interrupted.dispose(); // the state's tensors are copies: they outlive the optimiser
      t.is(state.kind, kind);
      t.is(state.parameters, 2);
      if (kind === 'sgd') {
        t.deepEqual(Object.keys(state.tensors).sort(), ['0.momentumBuffer', '1.momentumBuffer']);
      } else {
        t.deepEqual(Object.keys(state.tensors).sort(), ['0.expAvg', '0.expAvgSq', '1.expAvg', '1.expAvgSq']);
        t.deepEqual(state.numbers, { '0.step': 3, '1.step': 3 });
      }
      t.is(state.options.lr, dna.cosineLr(2, 6, 0.1, 0.01));

      // Resume into fresh tensors and a fresh optimiser built with other hyperparameters.
      const resumed = makeParams(checkpoint);
      const optimizer = make(resumed, 0.7);
      optimizer.loadState(state);
      t.is(optimizer.lr, dna.cosineLr(2, 6, 0.1, 0.01));
      schedule(optimizer, resumed, 3, 6);
      resumed.forEach((p, i) => t.deepEqual(values(p), values(straight[i]), `param ${i}`));
      optimizer.dispose();
      uninterrupted.dispose();
    });
  });
}

test('optimizer state: loading a state that does not fit gives a clear Error and changes nothing', (t) => {
  dna.tidy(() => {
    const params = makeParams();
    const sgd = dna.sgd(params, { lr: 0.1, momentum: 0.9 });
    run(sgd, params, 0, 2);
    const state = sgd.state();
    const adam = dna.adam(makeParams());
    t.throws(() => adam.loadState(state), {
      message: /^optimizerLoadState: the state's kind is 'sgd', this optimizer is 'adam'$/,
    });
    const one = dna.sgd([f64([1, 2, 3]).requireGrad()], { lr: 0.1, momentum: 0.9 });
    t.throws(() => one.loadState(state), { message: /the state is for 2 parameters, this optimizer has 1/ });
    const otherShapes = dna.sgd([f64([1, 2]).requireGrad(), f64([1, 2, 3, 4], [2, 2]).requireGrad()], {
      lr: 0.1,
      momentum: 0.9,
    });
    t.throws(() => otherShapes.loadState(state), {
      message:
        /optimizer state entry '0\.momentumBuffer' has shape \[3\] and dtype float64; parameter 0 has shape \[2\]/,
    });
    t.throws(
      () =>
        sgd.loadState({
          ...state,
          tensors: { ...state.tensors, '5.momentumBuffer': state.tensors['0.momentumBuffer'] },
        }),
      {
        message: /entry '5\.momentumBuffer' does not name a parameter/,
      },
    );
    t.throws(
      () => sgd.loadState({ ...state, tensors: { ...state.tensors, '0.expAvg': state.tensors['0.momentumBuffer'] } }),
      {
        message: /entry '0\.expAvg' is not part of a sgd state/,
      },
    );
    t.throws(() => sgd.loadState({ ...state, options: { lr: -1 } }), {
      message: /state\.options|options\.lr must be non-negative, got -1/,
    });
    t.throws(() => sgd.loadState(null as never), { instanceOf: TypeError });
    // Nothing changed: the optimiser continues as before.
    const before = sgd.state();
    t.deepEqual(values(before.tensors['1.momentumBuffer']), values(state.tensors['1.momentumBuffer']));
    // A state without entries resets the momentum.
    sgd.loadState({ ...state, tensors: {} });
    t.deepEqual(sgd.state().tensors, {});
    const adamState = adam.state();
    run(adam, adam.parameters(), 0, 1);
    t.throws(() => adam.loadState({ ...adam.state(), numbers: {} }), {
      message: /the adam state of parameter 0 needs step, expAvg and expAvgSq together/,
    });
    adam.loadState(adamState);
    for (const o of [sgd, adam, one, otherShapes]) o.dispose();
  });
});

test('clipGradNorm: returns the total L2 norm and scales the gradients down to maxNorm', (t) => {
  dna.tidy(() => {
    const [a, b] = makeParams();
    const unused = f64([1, 1]).requireGrad();
    setGrad(a, [3, 4, 0]);
    setGrad(b, [12, 0, 0, 0]);
    t.is(dna.clipGradNorm([a, b, unused], 100), 13, 'the norm of every gradient together');
    t.deepEqual(values(a.grad!), [3, 4, 0], 'below maxNorm: unchanged');
    const norm = dna.clipGradNorm([a, b, unused], 1);
    t.is(norm, 13);
    const scale = 1 / (13 + 1e-6);
    close(t, values(a.grad!), [3 * scale, 4 * scale, 0], 'a scaled');
    close(t, values(b.grad!), [12 * scale, 0, 0, 0], 'b scaled');
    const after = Math.sqrt([...values(a.grad!), ...values(b.grad!)].reduce((s, g) => s + g * g, 0));
    t.true(Math.abs(after - 1) < 1e-6);
    t.is(dna.clipGradNorm([unused], 1), 0, 'no gradients: norm 0');
    t.throws(() => dna.clipGradNorm([a], 0), {
      message: /^clipGradNorm: maxNorm must be a positive finite number, got 0$/,
    });
    t.throws(() => dna.clipGradNorm([a, 'b' as never], 1), {
      instanceOf: TypeError,
      message: /params\[1\] is not a Tensor/,
    });
  });
});

test('cosineLr: from baseLr down to floorLr along a half cosine, with optional linear warmup', (t) => {
  t.is(dna.cosineLr(0, 100, 0.1), 0.1);
  t.true(Math.abs(dna.cosineLr(50, 100, 0.1) - 0.05) < 1e-15);
  t.true(Math.abs(dna.cosineLr(50, 100, 0.1, 0.02) - 0.06) < 1e-15);
  t.true(Math.abs(dna.cosineLr(25, 100, 0.1) - (0.1 * (1 + Math.cos(Math.PI / 4))) / 2) < 1e-15);
  t.is(dna.cosineLr(100, 100, 0.1, 0.001), 0.001);
  t.is(dna.cosineLr(150, 100, 0.1, 0.001), 0.001, 'stays at the floor');
  const lrs = Array.from({ length: 100 }, (_, k) => dna.cosineLr(k, 100, 0.1, 0.001));
  t.true(
    lrs.every((lr, k) => k === 0 || lr <= lrs[k - 1]),
    'non-increasing',
  );
  // Warmup: linear to baseLr over the first steps, then the cosine over the rest.
  t.is(dna.cosineLr(0, 110, 0.1, 0, 10), 0.01);
  t.true(Math.abs(dna.cosineLr(4, 110, 0.1, 0, 10) - 0.05) < 1e-15);
  t.is(dna.cosineLr(10, 110, 0.1, 0, 10), 0.1);
  t.true(Math.abs(dna.cosineLr(60, 110, 0.1, 0, 10) - 0.05) < 1e-15);
  t.throws(() => dna.cosineLr(-1, 100, 0.1), { instanceOf: RangeError, message: /step must be a non-negative number/ });
  t.throws(() => dna.cosineLr(0, 0, 0.1), { message: /totalSteps must be positive/ });
  t.throws(() => dna.cosineLr(0, 10, 0.1, 0.2), { message: /floorLr must be in \[0, baseLr\]/ });
  t.throws(() => dna.cosineLr(0, 10, 0.1, 0, 10), { message: /warmupSteps must be in \[0, totalSteps\)/ });
});

test('bad parameters or options give Errors that say what is wrong', (t) => {
  dna.tidy(() => {
    const p = f64([1, 2]).requireGrad();
    t.throws(() => dna.sgd([p], { lr: -0.1 }), { message: /^sgd: options\.lr must be non-negative, got -0\.1$/ });
    t.throws(() => dna.sgd([p], {} as never), { message: /^sgd: options\.lr must be a number, got undefined$/ });
    t.throws(() => dna.sgd([p], { lr: 0.1, nesterov: true }), {
      message: /^sgd: options\.nesterov needs a positive momentum and zero dampening$/,
    });
    t.throws(() => dna.sgd([p], { lr: 0.1, momentum: -1 }), {
      message: /options\.momentum must be non-negative, got -1/,
    });
    t.throws(() => dna.sgd([p], { lr: 0.1, weightDecay: Infinity }), {
      message: /options\.weightDecay must be a finite number/,
    });
    t.throws(() => dna.adam([p], { betas: [0.9, 1] }), {
      message: /^adam: options\.betas must be in \[0, 1\), got 1$/,
    });
    t.throws(() => dna.adam([p], { betas: [0.9] as never }), {
      message: /options\.betas must be a number or an array of 2 numbers, got an array of 1/,
    });
    t.throws(() => dna.adam([p], { eps: -1 }), { message: /options\.eps must be non-negative/ });
    t.throws(() => dna.sgd([], { lr: 0.1 }), { message: /^sgd: an optimizer needs at least one parameter$/ });
    t.throws(() => dna.sgd([f64([1, 2])], { lr: 0.1 }), {
      message: /parameter 0 does not require gradients \(call requireGrad\(\) on it first\)/,
    });
    t.throws(() => dna.sgd([p, p], { lr: 0.1 }), { message: /parameter 1 appears twice in the list/ });
    t.throws(() => dna.sgd([p.mul(2)], { lr: 0.1 }), { message: /parameter 0 is computed from other tensors/ });
    t.throws(() => dna.adam([dna.tensor([1, 2], [2], { dtype: 'int64' })]), {
      message: /parameter 0 is int64; parameters must be floating point/,
    });
    const gone = f64([1]).requireGrad();
    gone.dispose();
    t.throws(() => dna.sgd([p, gone], { lr: 0.1 }), { message: /^sgd: argument 1\[1\] is a disposed Tensor$/ });
    t.throws(() => dna.sgd(p as never, { lr: 0.1 }), {
      instanceOf: TypeError,
      message: /params must be an array of Tensors/,
    });

    const optimizer = dna.sgd([p], { lr: 0.1 });
    t.false(optimizer.isDisposed);
    optimizer.dispose();
    optimizer.dispose();
    t.true(optimizer.isDisposed);
    t.throws(() => optimizer.step(), { message: /^optimizerStep: argument 1 is a disposed Optimizer$/ });
    t.throws(() => optimizer.lr, { message: /disposed Optimizer/ });
  });
});

test('a small WideResNet learns a separable task: the loss falls clearly within 30 steps', (t) => {
  // 32 gray 8x8 images: class 0 is bright above and dark below, class 1 the other way round.
  const rnd = mulberry32(42);
  const count = 32;
  const pixels = new Float32Array(count * 64);
  const classes: number[] = [];
  for (let n = 0; n < count; n++) {
    const label = n % 2;
    classes.push(label);
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const bright = y < 4 === (label === 0);
        pixels[n * 64 + y * 8 + x] = (bright ? 0.6 : 0.2) + 0.3 * rnd();
      }
    }
  }
  const images = dna.tensor(pixels, [count, 1, 8, 8]);
  const labels = dna.tensor(classes, [count], { dtype: 'int64' });

  const model = dna.wideResNet({ ...dna.WRN_10_1, classes: 2, inChannels: 1, seed: 1 });
  const optimizer = dna.sgd(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const losses: number[] = [];
  const steps = 30;
  const live = dna.liveTensors();
  for (let step = 0; step < steps; step++) {
    optimizer.lr = dna.cosineLr(step, steps, 0.05, 0.001);
    dna.tidy(() => {
      optimizer.zeroGrad();
      const loss = dna.crossEntropy(model.forward(images), labels);
      loss.backward();
      dna.clipGradNorm(model.parameters(), 5);
      optimizer.step();
      losses.push(loss.item());
    });
  }
  t.is(dna.liveTensors(), live, 'a training step leaves no tensors behind');
  t.log(`loss ${losses[0].toFixed(3)} -> ${losses[steps - 1].toFixed(3)}`);
  t.true(losses[0] > 0.5);
  t.true(losses[steps - 1] < 0.25 * losses[0], `loss ${losses[0]} -> ${losses[steps - 1]}`);
  const accuracy = dna.tidy(() => {
    model.eval();
    const predicted = dna.noGrad(() => model.forward(images)).argmax(1);
    return predicted.eq(labels).float().mean().item();
  });
  t.is(accuracy, 1);
  optimizer.dispose();
  model.dispose();
  images.dispose();
  labels.dispose();
});
