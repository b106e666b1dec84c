// The fused engine on CUDA against the CPU path: every op (float32 and uint8 input, odd sizes,
// every op in both slots of a sub-policy), the preprocessing, and every gradient rule of SPEC 1.4
// (straight-through and exact magnitudes, the identity and DADA baselines for c). The device side
// runs with poisoned outputs (they start as NaN), so a value a kernel leaves unwritten shows.
// Random draws (Cutout centres) are passed in explicitly, so both devices see the same ones.
//
// Tolerances: ops 1e-5 absolute on [0, 1] pixels, except that up to 0.1% of values may differ by
// a rounding step where a threshold op (Posterize, Solarize, Equalize's bins) meets a value on its
// boundary; preprocessing exactly; gradients 1e-4 relative (|a - b| / (1 + |b|)).
//
// Without a CUDA device the same checks compare the CPU path, poisoned, with itself: the check
// that CPU kernels write every value, and of this file's own machinery.
import test, { type ExecutionContext } from 'ava';

import * as dna from '../lib/index.js';
import { native } from '../lib/engine/native.js';
import { OPS, defaultSearchSpace, kernelTableTensors } from '../lib/augment/search-space.js';
import { assertClose, randomImages } from './helpers/gradient-reference.js';

const { tensor, tidy, Generator, rand } = dna;

const DEVICE: dna.Device = dna.backend().cuda ? 'cuda' : 'cpu';
const AGAINST = DEVICE === 'cuda' ? 'CUDA against the CPU' : 'the CPU with poisoned outputs against the CPU';

test.before((t) => {
  if (DEVICE === 'cpu') t.log('no CUDA device here: the CPU path, with poisoned outputs, is compared with itself');
});

/** `run` on the CPU, and on DEVICE with kernel outputs poisoned; both results as arrays. */
function onBoth<T>(run: (device: dna.Device) => T): { cpu: T; device: T } {
  const cpu = run('cpu');
  const previous = native.setOutputPoisoning(true);
  try {
    return { cpu, device: run(DEVICE) };
  } finally {
    native.setOutputPoisoning(previous);
  }
}

function compareImages(t: ExecutionContext, actual: Float32Array, expected: Float32Array, what: string): void {
  t.is(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let off = 0;
  let nan = 0;
  for (let k = 0; k < expected.length; k++) {
    if (Number.isNaN(actual[k])) nan++;
    const error = Math.abs(actual[k] - expected[k]);
    if (error > 1e-5) off++;
    if (error > worst) worst = error;
  }
  t.is(nan, 0, `${what}: ${nan} values left unwritten (NaN)`);
  t.true(
    off <= expected.length * 1e-3,
    `${what}: ${off} of ${expected.length} values differ by more than 1e-5 (worst ${worst})`,
  );
}

const SHAPES = [
  [7, 3, 16, 16],
  [5, 1, 9, 13],
];

for (const shape of SHAPES) {
  for (const dtype of ['float32', 'uint8'] as const) {
    test(
      `${AGAINST}: every op on ${shape.join('x')} ${dtype} images, in either slot, with per-image ` + `magnitudes`,
      (t) => {
        const B = shape[0];
        const g = new Generator(shape[1] * 10 + (dtype === 'uint8' ? 1 : 0));
        const floats = randomImages(shape, shape[2]);
        const images = dtype === 'uint8' ? tidy(() => floats.mul(255).round().toDtype('uint8')) : floats;
        const values = rand([B, 2], { generator: g });
        const bits = rand([B, 2], { generator: g }).lt(0.8).float();
        const noise = rand([B, 2, 2], { generator: g });
        for (const op of OPS) {
          for (const slot of [0, 1]) {
            // The op in `slot`, a random op (or none) in the other: kinds [B, 2].
            const kinds = new Int32Array(B * 2).map((_, k) =>
              k % 2 === slot ? op.kind : ((k * 7 + op.kind) % (OPS.length + 1)) - 1,
            );
            const [lo, hi] = op.range ?? [0, 0];
            const { cpu, device } = onBoth((d) =>
              tidy(() => {
                const v = values
                  .to(d)
                  .mul(hi - lo)
                  .add(lo);
                const out = native.augmentBatch(
                  images.to(d).handle,
                  tensor(kinds, [B, 2], { device: d }).handle,
                  v.handle,
                  bits.to(d).handle,
                  noise.to(d).handle,
                );
                return new dna.Tensor(out).to('cpu').data() as Float32Array;
              }),
            );
            compareImages(t, device, cpu, `${op.name} in slot ${slot + 1}`);
          }
        }
        dna.dispose([floats, images, values, bits, noise]);
      },
    );
  }
}

test(`${AGAINST}: preprocessing (flip, shift, Cutout) is exact`, (t) => {
  for (const shape of SHAPES) {
    const [B, , H, W] = shape;
    const images = randomImages(shape, 3);
    const params = new Int32Array(B * 6).map((_, k) => {
      const i = Math.floor(k / 6);
      return [i % 2, (i % 5) - 2, 2 - (i % 4), i % 3 === 0 ? 0 : 1 + (i % 6), i % H, (i * 3) % W][k % 6];
    });
    const { cpu, device } = onBoth((d) =>
      tidy(
        () =>
          new dna.Tensor(native.preprocessBatch(images.to(d).handle, tensor(params, [B, 6], { device: d }).handle))
            .to('cpu')
            .data() as Float32Array,
      ),
    );
    t.deepEqual(device, cpu, `preprocessing of ${shape.join('x')}`);
    images.dispose();
  }
});

// Sub-policies with gradients: c one-hot (every sub-policy of the space is selected by some image
// across the cases), b in {0, 1}, m uniform; G random.
function subPolicyGradients(device: dna.Device, seed: number, dada: boolean, exact: boolean) {
  const space = defaultSearchSpace();
  const S = space.subPolicies.length;
  const B = 21;
  const shape = [B, 3, 11, 10];
  return tidy(() => {
    const g = new Generator(seed);
    const images = randomImages(shape, seed).to(device);
    const index = dna.arange(0, B, 1, { dtype: 'int64' }).mul(5).add(seed).remainder(S);
    const c = index.oneHot(S).float().to(device).requireGrad();
    const b = rand([B, S, 2], { generator: g }).lt(0.7).float().to(device).requireGrad();
    const m = rand([B, S, 2], { generator: g }).to(device).requireGrad();
    const noise = rand([B, 2, 2], { generator: g }).to(device);
    const grad = dna.randn(shape, { generator: g }).to(device);
    const tables = kernelTableTensors(space, device);
    const out = new dna.Tensor(
      native.applySubPolicies(
        images.handle,
        c.handle,
        b.handle,
        m.handle,
        tables.kinds.handle,
        tables.ranges.handle,
        noise.handle,
        dada,
        exact,
      ),
    );
    out.mul(grad).sum().backward();
    const read = (x: dna.Tensor) => Array.from(x.to('cpu').data() as Float32Array);
    return { out: out.detach().to('cpu').data() as Float32Array, c: read(c.grad!), b: read(b.grad!), m: read(m.grad!) };
  });
}

for (const exact of [false, true]) {
  for (const dada of [false, true]) {
    const rule = `${exact ? 'exact' : 'straight-through'} magnitudes, ${dada ? 'DADA' : 'identity'} baseline for c`;
    test(`${AGAINST}: applySubPolicies forward and the gradients into c, b and m (${rule})`, (t) => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const { cpu, device } = onBoth((d) => subPolicyGradients(d, seed, dada, exact));
        compareImages(t, device.out, cpu.out, `forward (seed ${seed})`);
        assertClose(t, device.c, cpu.c, 1e-4, `dL/dc (seed ${seed})`);
        assertClose(t, device.b, cpu.b, 1e-4, `dL/db (seed ${seed})`);
        assertClose(t, device.m, cpu.m, 1e-4, `dL/dm (seed ${seed})`);
      }
    });
  }
}

test(`${AGAINST}: a WideResNet step in float32, channels-last and bfloat16`, (t) => {
  if (DEVICE === 'cpu') {
    t.log('skipped here: test/execution.test.ts covers the CPU');
    t.pass();
    return;
  }
  const images = randomImages([8, 3, 16, 16], 9);
  const labels = tensor([0, 1, 2, 3, 4, 0, 1, 2], [8], { dtype: 'int64' });
  const step = (device: dna.Device, execution: dna.Execution) => {
    const model = dna
      .wideResNet({ ...dna.WRN_10_1, classes: 5, inChannels: 3, seed: 4 })
      .to(device)
      .setExecution(execution);
    try {
      return tidy(() => {
        const logits = model.forward(images.to(device));
        dna.crossEntropy(logits, labels.to(device)).backward();
        return {
          logits: Array.from(logits.to('cpu').data() as Float32Array),
          grad: Array.from(model.namedParameters()['conv1.weight'].grad!.to('cpu').data() as Float32Array),
        };
      });
    } finally {
      model.dispose();
    }
  };
  const reference = step('cpu', {});
  // cuDNN may use TF32 for float32 convolutions (10-bit mantissa): 1e-2 relative.
  for (const [execution, tolerance] of [
    [{}, 1e-2],
    [{ memoryFormat: 'channelsLast' }, 1e-2],
    [{ precision: 'bfloat16' }, 5e-2],
    [{ memoryFormat: 'channelsLast', precision: 'bfloat16' }, 5e-2],
  ] as Array<[dna.Execution, number]>) {
    const onDevice = step('cuda', execution);
    assertClose(t, onDevice.logits, reference.logits, tolerance, `logits ${JSON.stringify(execution)}`);
    assertClose(t, onDevice.grad, reference.grad, tolerance * 10, `conv1 gradient ${JSON.stringify(execution)}`);
  }
  dna.dispose([images, labels]);
});
