// Steps off the main thread: classifierStep, forwardAsync, backwardAsync and stepAsync give what
// the synchronous ops give (the plain composition is the reference), keep Node's event loop
// running while they compute, refuse any use of what they hold until they settle, and reject
// with Errors that name the call.
import test from 'ava';

import * as dna from '../lib/index.js';
import { tasksInFlight } from '../lib/engine/backend.js';
import { classifierStep } from '../lib/engine/steps.js';
import { maxAbsDiff } from './helpers/augment-reference.js';

const { tidy } = dna;

const model = (seed = 1) => dna.wideResNet({ ...dna.WRN_10_1, classes: 4, inChannels: 3, seed });
const images = (batch = 8, seed = 2) => dna.rand([batch, 3, 12, 12], { generator: new dna.Generator(seed) });
const labels = (batch = 8, seed = 3) => dna.randint(0, 4, [batch], { generator: new dna.Generator(seed) });
const grads = (m: dna.Module) =>
  tidy(() =>
    Object.fromEntries(Object.entries(m.namedParameters()).map(([name, p]) => [name, p.grad!.data() as Float32Array])),
  );
const weights = (m: dna.Module) =>
  tidy(() =>
    Object.fromEntries(
      Object.entries(m.stateDict())
        .filter(([, p]) => p.dtype === 'float32')
        .map(([name, p]) => [name, p.data() as Float32Array]),
    ),
  );

test('classifierStep gives the loss, hits, per-image losses, input and parameter gradients and update of the plain ops', async (t) => {
  const x = images();
  const y = labels();
  const fast = model();
  const plain = model();
  const fastOptimizer = dna.sgd(fast, { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 });
  const plainOptimizer = dna.sgd(plain, { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 });

  const result = await classifierStep(fast, x, y, {
    optimizer: fastOptimizer,
    zeroGrad: true,
    step: true,
    inputGradient: true,
    perImageLoss: true,
  });
  const reference = tidy(() => {
    const leaf = x.detach().requireGrad();
    const logits = plain.forward(leaf);
    const loss = dna.crossEntropy(logits, y);
    plainOptimizer.zeroGrad();
    loss.backward();
    const perImage = logits.logSoftmax(1).gather(1, y.unsqueeze(1)).squeeze(1).neg();
    return {
      loss: loss.item(),
      correct: logits.argmax(1).eq(y).sum().item(),
      perImage: perImage.data() as Float32Array,
      input: leaf.grad!.data() as Float32Array,
      grads: grads(plain),
    };
  });
  plainOptimizer.step();

  t.true(Math.abs(result.loss.item() - reference.loss) < 1e-5, `loss ${result.loss.item()} against ${reference.loss}`);
  t.is(result.correct.item(), reference.correct);
  t.true(maxAbsDiff(result.perImageLoss!.data() as Float32Array, reference.perImage) < 1e-5);
  t.true(maxAbsDiff(result.inputGradient!.data() as Float32Array, reference.input) < 1e-6);
  const fastGrads = grads(fast);
  for (const name of Object.keys(reference.grads)) {
    t.true(maxAbsDiff(fastGrads[name], reference.grads[name]) < 1e-5, `${name} gradient`);
  }
  const [after, expected] = [weights(fast), weights(plain)];
  for (const name of Object.keys(expected))
    t.true(maxAbsDiff(after[name], expected[name]) < 1e-5, `${name} after the update`);
  dna.dispose([result, x, y, fast, plain, fastOptimizer, plainOptimizer]);
});

test('forwardAsync, backwardAsync and stepAsync match forward, backward and step', async (t) => {
  const x = images();
  const y = labels();
  const [a, b] = [model(), model()];
  const [optA, optB] = [dna.sgd(a, { lr: 0.05 }), dna.sgd(b, { lr: 0.05 })];
  const logits = await a.forwardAsync(x);
  const expected = tidy(() => b.forward(x));
  t.deepEqual(logits.data(), expected.data());
  const loss = dna.crossEntropy(logits, y);
  await loss.backwardAsync([a]);
  tidy(() => dna.crossEntropy(expected, y).backward());
  const [gradA, gradB] = [grads(a), grads(b)];
  for (const name of Object.keys(gradB)) t.deepEqual(gradA[name], gradB[name], name);
  await optA.stepAsync();
  optB.step();
  const [wa, wb] = [weights(a), weights(b)];
  for (const name of Object.keys(wb)) t.deepEqual(wa[name], wb[name], name);
  // Under noGrad at the call, the forward pass records no graph.
  const quiet = await dna.noGrad(() => a.forwardAsync(x));
  t.false(quiet.requiresGrad);
  dna.dispose([x, y, a, b, optA, optB, logits, expected, loss, quiet]);
});

test.serial('what a call holds is busy until it settles: uses and disposals throw, then work again', async (t) => {
  const m = model();
  const x = images(16);
  const y = labels(16);
  const optimizer = dna.sgd(m, { lr: 0.1 });
  const pending = classifierStep(m, x, y, { optimizer, zeroGrad: true, step: true });
  const busy = /in use by an asynchronous call: await its Promise first/;
  t.throws(() => m.forward(x), { message: busy });
  t.throws(() => x.add(1), { message: busy });
  t.throws(() => y.dispose(), { message: busy });
  t.throws(() => m.dispose(), { message: busy });
  t.throws(() => optimizer.step(), { message: busy });
  t.throws(() => dna.tidy(() => dna.cat([x, x])), { message: /argument 1\[0\] is a Tensor in use/ });
  t.true(tasksInFlight() >= 1);
  const result = await pending;
  t.is(tasksInFlight(), 0);
  tidy(() => m.forward(x.add(1)));
  optimizer.step();
  dna.dispose([result, m, x, y, optimizer]);
  t.pass();
});

test.serial('errors reject the Promise with an Error naming the call, and free what it held', async (t) => {
  const m = model();
  const gray = dna.rand([2, 1, 12, 12]);
  await t.throwsAsync(m.forwardAsync(gray), { message: /^moduleForwardAsync: .*3-channel images/ });
  t.notThrows(() => gray.add(1).dispose());
  const x = images(4);
  await t.throwsAsync(classifierStep(m, x, dna.tensor([0, 1, 2, 9], [4], { dtype: 'int64' })), {
    message: /^classifierStep: label 9 is out of range for 4 classes/,
  });
  await t.throwsAsync(classifierStep(m, x, dna.tensor([0, 1], [2], { dtype: 'int64' })), {
    message: /labels must have shape \[4\]/,
  });
  await t.throwsAsync(classifierStep(m, x, dna.tensor([0, 1, 2, 3], [4], { dtype: 'int64' }), { step: true }), {
    message: /zeroGrad and step need options\.optimizer/,
  });
  await t.throwsAsync(dna.tensor([1, 2]).backwardAsync(), { message: /backward needs a tensor with one element/ });
  t.is(tasksInFlight(), 0);
  dna.dispose([m, gray, x]);
});

test.serial('the event loop runs during a long step: a 10 ms timer keeps firing', async (t) => {
  const m = dna.wideResNet({ ...dna.WRN_16_1, classes: 10, inChannels: 3, seed: 1 });
  const x = dna.rand([128, 3, 32, 32], { generator: new dna.Generator(1) });
  const y = dna.randint(0, 10, [128], { generator: new dna.Generator(2) });
  const optimizer = dna.sgd(m, { lr: 0.1 });
  const gaps: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 10);
  const started = performance.now();
  const result = await classifierStep(m, x, y, { optimizer, zeroGrad: true, step: true });
  const step = performance.now() - started;
  clearInterval(timer);
  const longest = Math.max(...gaps);
  t.log(
    `a step of ${step.toFixed(0)} ms; the timer fired ${gaps.length} times, the longest gap ${longest.toFixed(1)} ms`,
  );
  // Run synchronously, the step would be one gap as long as itself and the timer would not fire.
  t.true(step > 100, `the step took ${step.toFixed(0)} ms (too short to show anything)`);
  t.true(gaps.length >= step / 10 / 4, `${gaps.length} ticks in ${step.toFixed(0)} ms`);
  t.true(longest < step / 2, `longest gap ${longest.toFixed(1)} ms of a ${step.toFixed(0)} ms step`);
  dna.dispose([result, m, x, y, optimizer]);
});
