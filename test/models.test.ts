// Models: the WideResNet architecture (parameter counts against the published networks, output
// shapes), its modes, seeded initialisation, state dicts, the cross-entropy loss, and clear
// errors for bad configs and inputs.
import test from 'ava';
import * as dna from '../lib/index.js';
import { wideResNetParameterCount } from '../lib/engine/models.js';
import { native } from '../lib/engine/native.js';

interface Architecture {
  depth: number;
  widen: number;
  classes: number;
  inChannels: number;
}

/** Parameters of a pre-activation WRN, counted layer by layer from the paper's description. */
function wrnParameterCount({ depth, widen, classes, inChannels }: Architecture): number {
  const blocks = (depth - 4) / 6;
  const widths = [16 * widen, 32 * widen, 64 * widen];
  let count = 16 * inChannels * 3 * 3; // first conv, no bias
  let channels = 16;
  for (let group = 0; group < 3; group++) {
    for (let i = 0; i < blocks; i++) {
      const out = widths[group];
      const stride = i === 0 && group > 0 ? 2 : 1;
      count += 2 * channels; // bn1
      count += out * channels * 9; // conv1
      count += 2 * out; // bn2
      count += out * out * 9; // conv2
      if (channels !== out || stride !== 1) count += out * channels; // 1x1 shortcut
      channels = out;
    }
  }
  count += 2 * channels; // final bn
  count += channels * classes + classes; // linear
  return count;
}

const small = (options: Partial<dna.WideResNetConfig> = {}) =>
  dna.wideResNet({ ...dna.WRN_10_1, classes: 5, inChannels: 3, seed: 7, ...options });

const images = (shape: number[], seed = 1) => dna.rand(shape, { generator: new dna.Generator(seed) });
const labels = (values: number[]) => dna.tensor(values, [values.length], { dtype: 'int64' });
const values = (x: dna.Tensor) => Array.from(x.data() as Float32Array);

test('parameter counts match the published WideResNets', (t) => {
  const wrn402 = { ...dna.WRN_40_2, classes: 10, inChannels: 3 };
  const model = dna.wideResNet(wrn402);
  t.is(model.parameterCount, wrnParameterCount(wrn402));
  t.true(model.parameterCount > 2.1e6 && model.parameterCount < 2.3e6, `WRN-40-2: ${model.parameterCount}`);
  t.is(
    model.parameterCount,
    dna.tidy(() => model.parameters().reduce((n, p) => n + p.numel, 0)),
  );
  model.dispose();

  // WRN-28-10 (SVHN): 36.5 M parameters, 146 MB of float32; built, counted and released.
  const wrn2810 = { ...dna.WRN_28_10, classes: 10, inChannels: 3 };
  const big = dna.wideResNet(wrn2810);
  t.is(big.parameterCount, wrnParameterCount(wrn2810));
  t.is(wideResNetParameterCount(wrn2810), big.parameterCount);
  t.true(big.parameterCount > 36.4e6 && big.parameterCount < 36.6e6, `WRN-28-10: ${big.parameterCount}`);
  big.dispose();
  t.true(big.isDisposed);

  for (const preset of [dna.WRN_28_2, dna.WRN_16_1, dna.WRN_10_1]) {
    for (const inChannels of [1, 3] as const) {
      const config = { ...preset, classes: 100, inChannels };
      const m = dna.wideResNet(config);
      t.is(m.parameterCount, wrnParameterCount(config), JSON.stringify(config));
      t.is(wideResNetParameterCount(config), m.parameterCount, `closed form, ${JSON.stringify(config)}`);
      m.dispose();
    }
  }
});

test('names: parameters and buffers by layer, in a fixed order', (t) => {
  const model = small();
  const names = model.parameterNames;
  t.is(names[0], 'conv1.weight');
  t.deepEqual(names.slice(-2), ['fc.weight', 'fc.bias']);
  t.true(names.includes('group2.0.shortcut.weight'));
  t.false(names.includes('group1.0.shortcut.weight'), 'WRN-10-1 keeps 16 channels in group 1: identity shortcut');
  t.true(model.bufferNames.includes('normalize.mean'));
  t.true(model.bufferNames.includes('group1.0.bn1.running_var'));
  dna.tidy(() => {
    const named = model.namedParameters();
    t.deepEqual(named['conv1.weight'].shape, [16, 3, 3, 3]);
    t.deepEqual(named['fc.weight'].shape, [5, 64]);
    t.deepEqual(Object.keys(model.stateDict()).sort(), [...names, ...model.bufferNames].sort());
  });
  model.dispose();
});

test('initialisation: He-normal convs (fan_out), BN 1 and 0, zero linear bias', (t) => {
  const model = dna.wideResNet({ ...dna.WRN_16_1, classes: 10, inChannels: 3, seed: 3 });
  dna.tidy(() => {
    const p = model.namedParameters();
    const conv = p['group3.0.conv2.weight']; // 64 x 64 x 3 x 3: fan_out 576
    t.true(Math.abs(conv.mean().item()) < 0.01);
    t.true(Math.abs(conv.std().item() - Math.sqrt(2 / 576)) < 0.003, `std ${conv.std().item()}`);
    t.deepEqual(new Set(values(p['group1.1.bn1.weight'])), new Set([1]));
    t.deepEqual(new Set(values(p['group1.1.bn1.bias'])), new Set([0]));
    t.deepEqual(new Set(values(p['fc.bias'])), new Set([0]));
    const bound = 1 / Math.sqrt(64);
    t.true(values(p['fc.weight']).every((v) => Math.abs(v) <= bound));
  });
  model.dispose();

  const neutral = small({ zeroHead: true });
  dna.tidy(() => t.deepEqual(new Set(values(neutral.forward(images([3, 3, 8, 8])))), new Set([0])));
  neutral.dispose();
});

test('forward: logits [B, classes] for 1- and 3-channel images of any size', (t) => {
  for (const inChannels of [1, 3] as const) {
    const model = small({ inChannels, classes: 7 });
    dna.tidy(() => {
      t.deepEqual(model.forward(images([2, inChannels, 32, 32])).shape, [2, 7]);
      t.deepEqual(model.forward(images([3, inChannels, 28, 28])).shape, [3, 7]);
      t.deepEqual(model.forward(images([2, inChannels, 7, 9])).shape, [2, 7]);
      const out = model.forward(images([2, inChannels, 8, 8]));
      t.is(out.dtype, 'float32');
      t.true(out.requiresGrad, 'autograd records the forward');
      t.false(dna.noGrad(() => model.forward(images([2, inChannels, 8, 8]))).requiresGrad);
    });
    model.dispose();
  }
});

test('parameters() are the live tensors: backward fills their gradients', (t) => {
  const model = small();
  dna.tidy(() => {
    const loss = dna.crossEntropy(model.forward(images([4, 3, 8, 8])), labels([0, 1, 2, 3]));
    loss.backward();
    const params = model.parameters();
    t.true(params.every((p) => p.requiresGrad));
    for (const p of params) {
      const grad = p.grad;
      t.truthy(grad);
      t.deepEqual(grad!.shape, p.shape);
    }
    t.true(params.some((p) => p.grad!.abs().max().item() > 0));
  });
  model.dispose();
});

test('train and eval modes: BN running statistics update only in training; eval is per image', (t) => {
  const model = small();
  t.true(model.training, 'a new model is in training mode');
  dna.tidy(() => {
    const x = images([4, 3, 8, 8]);
    const buffers = () => dna.tidy(() => model.namedBuffers());
    const snapshot = () =>
      Object.fromEntries(
        Object.entries(buffers()).map(([name, b]) => [
          name,
          Array.from(b.data() as ArrayLike<number | bigint>, Number),
        ]),
      );

    const before = snapshot();
    model.forward(x);
    const afterTrain = snapshot();
    t.notDeepEqual(afterTrain['group1.0.bn1.running_mean'], before['group1.0.bn1.running_mean']);
    t.notDeepEqual(afterTrain['bn.running_var'], before['bn.running_var']);
    t.deepEqual(afterTrain['bn.num_batches_tracked'], [1]);
    t.deepEqual(afterTrain['normalize.mean'], before['normalize.mean']);

    t.is(model.eval(), model);
    t.false(model.training);
    const evalOut = values(model.forward(x));
    t.deepEqual(snapshot(), afterTrain, 'eval forward leaves the buffers alone');
    // Eval uses running statistics: an image's logits do not depend on the rest of the batch.
    const single = values(model.forward(x.narrow(0, 1, 1)));
    single.forEach((v, i) => t.true(Math.abs(v - evalOut[5 + i]) < 1e-5));
    // Train uses batch statistics: they do.
    model.train();
    const trainOut = values(model.forward(x));
    t.true(trainOut.some((v, i) => Math.abs(v - evalOut[i]) > 1e-4));
  });
  model.dispose();
});

test('dropout: active in training, off in eval', (t) => {
  const model = small({ dropout: 0.5 });
  dna.tidy(() => {
    const x = images([2, 3, 8, 8]);
    model.eval();
    t.deepEqual(values(model.forward(x)), values(model.forward(x)));
    model.train();
    dna.manualSeed(1);
    const a = values(model.forward(x));
    const b = values(model.forward(x));
    t.notDeepEqual(a, b);
    // The dropout masks come from the default generator: manualSeed repeats them.
    dna.manualSeed(1);
    t.deepEqual(values(model.forward(x)), a);
  });
  model.dispose();
  const plain = small({ dropout: 0 });
  dna.tidy(() => {
    const x = images([2, 3, 8, 8]);
    // Without dropout two training forwards differ only through BN running stats, which the output does not use.
    t.deepEqual(values(plain.forward(x)), values(plain.forward(x)));
  });
  plain.dispose();
});

test('seeded initialisation: the same seed gives the same weights, another seed others', (t) => {
  const a = small({ seed: 11 });
  const b = small({ seed: 11 });
  const c = small({ seed: 12 });
  dna.tidy(() => {
    const pa = a.parameters().map(values);
    const pb = b.parameters().map(values);
    const pc = c.parameters().map(values);
    t.deepEqual(pa, pb);
    t.notDeepEqual(pa[0], pc[0]);
    const x = images([2, 3, 8, 8]);
    t.deepEqual(values(a.forward(x)), values(b.forward(x)));
  });
  // Unseeded models draw their seed from the default generator: manualSeed reproduces them.
  dna.manualSeed(5);
  const d = small({ seed: undefined });
  dna.manualSeed(5);
  const e = small({ seed: undefined });
  const f = small({ seed: undefined });
  dna.tidy(() => {
    t.deepEqual(d.parameters().map(values), e.parameters().map(values));
    t.notDeepEqual(values(e.parameters()[0]), values(f.parameters()[0]));
  });
  for (const m of [a, b, c, d, e, f]) m.dispose();
});

test('state dict: a snapshot that restores outputs exactly, in this model or a fresh one', (t) => {
  const model = small();
  dna.tidy(() => {
    const x = images([4, 3, 8, 8]);
    const y = labels([0, 1, 2, 3]);
    model.eval();
    const before = values(model.forward(x));
    const saved = model.stateDict();

    // Train a step: weights and BN statistics change; the snapshot does not.
    model.train();
    const optimizer = dna.sgd(model.parameters(), { lr: 0.5, momentum: 0.9 });
    dna.crossEntropy(model.forward(x), y).backward();
    optimizer.step();
    optimizer.dispose();
    model.eval();
    t.notDeepEqual(values(model.forward(x)), before);
    t.notDeepEqual(values(saved['conv1.weight']), values(model.namedParameters()['conv1.weight']));

    model.loadStateDict(saved);
    t.deepEqual(values(model.forward(x)), before);

    const fresh = small({ seed: 999 }).eval();
    t.notDeepEqual(values(fresh.forward(x)), before);
    fresh.loadStateDict(saved);
    t.deepEqual(values(fresh.forward(x)), before);
    fresh.dispose();

    // Loading converts dtypes of the same kind (a float64 checkpoint into a float32 model).
    const asDouble = Object.fromEntries(
      Object.entries(saved).map(([k, v]) => [k, v.dtype === 'float32' ? v.toDtype('float64') : v]),
    );
    model.loadStateDict(asDouble);
    t.deepEqual(values(model.forward(x)), before);
  });
  model.dispose();
});

test('a state dict from another architecture: a clear Error, and the model is left unchanged', (t) => {
  const gray = small({ inChannels: 1, mean: 0.5, std: 0.25 });
  const rgb = small({ inChannels: 3 });
  const deeper = dna.wideResNet({ ...dna.WRN_16_1, classes: 5, inChannels: 3 });
  const wider = dna.wideResNet({ depth: 10, widen: 2, classes: 5, inChannels: 3 });
  dna.tidy(() => {
    const before = values(gray.parameters()[1]);
    const error = t.throws(() => gray.loadStateDict(rgb.stateDict()), { instanceOf: Error });
    t.regex(
      error!.message,
      /^moduleLoadStateDict: checkpoint does not fit this model: conv1\.weight has shape \[16, 3, 3, 3\], model expects \[16, 1, 3, 3\]/,
    );
    t.deepEqual(values(gray.parameters()[1]), before, 'nothing was written');

    t.throws(() => rgb.loadStateDict(deeper.stateDict()), {
      message: /checkpoint does not fit this model: unexpected group1\.1\.bn1\.weight, .* and \d+ more$/,
    });
    t.throws(() => deeper.loadStateDict(rgb.stateDict()), {
      message: /checkpoint does not fit this model: missing group1\.1\.bn1\.weight/,
    });
    t.throws(() => rgb.loadStateDict(wider.stateDict()), {
      message: /group1\.0\.conv1\.weight has shape \[32, 16, 3, 3\], model expects \[16, 16, 3, 3\]/,
    });

    const dict = rgb.stateDict();
    t.throws(() => rgb.loadStateDict({ ...dict, 'fc.bias': 'zeros' as never }), {
      message: /state dict entry 'fc\.bias' is not a Tensor/,
    });
    const disposed = dict['fc.bias'];
    disposed.dispose();
    t.throws(() => rgb.loadStateDict(dict), { message: /state dict entry 'fc\.bias' is a disposed Tensor/ });
    const ints = { ...rgb.stateDict(), 'fc.bias': dna.zeros([5], { dtype: 'int64' }) };
    t.throws(() => rgb.loadStateDict(ints), { message: /fc\.bias has dtype int64, model expects float32/ });
  });
  for (const m of [gray, rgb, deeper, wider]) m.dispose();
});

test('config: defaults filled in, normalisation as given', (t) => {
  const model = small({ inChannels: 3, mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.243, 0.261], dropout: 0.3 });
  const config = model.config;
  t.is(config.kind, 'wideResNet');
  t.like(config, { depth: 10, widen: 1, classes: 5, inChannels: 3, dropout: 0.3, zeroHead: false });
  config.mean.forEach((v, i) => t.true(Math.abs(v - [0.4914, 0.4822, 0.4465][i]) < 1e-6));
  config.std.forEach((v, i) => t.true(Math.abs(v - [0.247, 0.243, 0.261][i]) < 1e-6));
  // The model normalises: a constant image at the mean gives the same logits as zeros through a
  // model with mean 0 and the same std and weights.
  const other = small({ inChannels: 3, mean: 0, std: [0.247, 0.243, 0.261], dropout: 0.3 });
  dna.tidy(() => {
    model.eval();
    other.eval();
    const weights = Object.fromEntries(
      Object.entries(model.stateDict()).filter(([name]) => !name.startsWith('normalize')),
    );
    other.loadStateDict({
      ...weights,
      'normalize.mean': dna.zeros([3]),
      'normalize.std': dna.tensor([0.247, 0.243, 0.261]),
    });
    const atMean = dna.tensor([0.4914, 0.4822, 0.4465]).reshape([1, 3, 1, 1]).expand([1, 3, 8, 8]).contiguous();
    const a = values(model.forward(atMean));
    const b = values(other.forward(dna.zeros([1, 3, 8, 8])));
    a.forEach((v, i) => t.true(Math.abs(v - b[i]) < 1e-4));
  });
  model.dispose();
  other.dispose();
  t.like(small().config, { dropout: 0, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
});

test('device: models live on the CPU by default and move with to()', (t) => {
  const model = small();
  t.is(model.device, 'cpu');
  t.is(model.to('cpu'), model);
  if (!dna.backend().cuda) {
    t.throws(() => model.to('cuda'), { instanceOf: Error, message: /^moduleTo: / });
    t.is(model.device, 'cpu');
  } else {
    dna.tidy(() => {
      const params = model.parameters();
      model.to('cuda');
      t.is(model.device, 'cuda:0');
      t.is(params[0].device, 'cuda:0', 'handles follow the move');
      t.deepEqual(model.forward(images([2, 3, 8, 8]).to('cuda')).shape, [2, 5]);
      t.throws(() => model.forward(images([2, 3, 8, 8])), {
        message: /the images are on cpu but the model is on cuda:0/,
      });
    });
  }
  model.dispose();
});

test('crossEntropy: the mean negative log-likelihood, with label smoothing, and its gradient', (t) => {
  const logitValues = [
    [2.0, -1.0, 0.5, 0.0],
    [-0.3, 0.8, 1.7, -2.2],
    [0.0, 0.0, 0.0, 0.0],
  ];
  const target = [0, 2, 3];
  const classes = 4;
  const reference = (smoothing: number) => {
    let total = 0;
    const grad: number[][] = [];
    logitValues.forEach((row, r) => {
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      const nll = lse - row[target[r]];
      const uniform = row.reduce((s, v) => s + (lse - v), 0) / classes;
      total += (1 - smoothing) * nll + smoothing * uniform;
      grad.push(
        row.map(
          (v, k) =>
            (Math.exp(v - lse) - ((k === target[r] ? 1 - smoothing : 0) + smoothing / classes)) / logitValues.length,
        ),
      );
    });
    return { loss: total / logitValues.length, grad: grad.flat() };
  };
  for (const smoothing of [0, 0.1, 0.5]) {
    dna.tidy(() => {
      const logits = dna.tensor(logitValues, undefined, { dtype: 'float64', requiresGrad: true });
      const loss = dna.crossEntropy(logits, labels(target), { labelSmoothing: smoothing });
      t.deepEqual(loss.shape, []);
      const expected = reference(smoothing);
      t.true(
        Math.abs(loss.item() - expected.loss) < 1e-12,
        `smoothing ${smoothing}: ${loss.item()} vs ${expected.loss}`,
      );
      loss.backward();
      const grad = Array.from(logits.grad!.data() as Float64Array);
      grad.forEach((g, i) => t.true(Math.abs(g - expected.grad[i]) < 1e-12));
    });
  }
});

test('crossEntropy: bad logits or labels give clear Errors', (t) => {
  dna.tidy(() => {
    const logits = dna.zeros([3, 4]);
    t.throws(() => dna.crossEntropy(logits, labels([0, 4, 1])), {
      message: 'crossEntropy: label 4 is out of range for 4 classes (labels must be in [0, 3])',
    });
    t.throws(() => dna.crossEntropy(logits, labels([0, -1, 1])), { message: /label -1 is out of range for 4 classes/ });
    t.throws(() => dna.crossEntropy(logits, dna.tensor([0, 1, 2])), {
      message: 'crossEntropy: labels must be int64, got float32',
    });
    t.throws(() => dna.crossEntropy(logits, labels([0, 1])), {
      message: /labels must have shape \[3\] \(one per row of logits\), got \[2\]/,
    });
    t.throws(() => dna.crossEntropy(dna.zeros([3, 4, 1]), labels([0, 1, 2])), {
      message: /logits must be a non-empty \[batch, classes\] tensor, got shape \[3, 4, 1\]/,
    });
    t.throws(() => dna.crossEntropy(dna.zeros([3, 4], { dtype: 'int32' }), labels([0, 1, 2])), {
      message: /logits must be floating point, got int32/,
    });
    t.throws(() => dna.crossEntropy(logits, labels([0, 1, 2]), { labelSmoothing: 1.5 }), {
      message: /labelSmoothing must be in \[0, 1\], got 1.5/,
    });
    const gone = labels([0, 1, 2]);
    gone.dispose();
    t.throws(() => dna.crossEntropy(logits, gone), { message: 'crossEntropy: argument 2 is a disposed Tensor' });
  });
});

test('bad configs give Errors that name the field and the rule', (t) => {
  const base = { ...dna.WRN_10_1, classes: 10, inChannels: 3 } as dna.WideResNetConfig;
  const cases: Array<[Partial<Record<keyof dna.WideResNetConfig, unknown>>, RegExp]> = [
    [{ depth: 12 }, /^wideResNet: config\.depth must be 6n\+4 with n >= 1 \(10, 16, 22, 28, 40, .*\), got 12$/],
    [{ depth: 4 }, /config\.depth must be 6n\+4/],
    [{ depth: 10.5 }, /config\.depth must be an integer, got 10\.5/],
    [{ widen: 0 }, /config\.widen must be an integer from 1 to 64, got 0/],
    [{ classes: 1 }, /config\.classes must be an integer from 2 to 1000000, got 1/],
    [{ classes: '10' }, /config\.classes must be an integer, got a string/],
    [{ inChannels: 2 }, /config\.inChannels must be 1 or 3, got 2/],
    [{ dropout: 1 }, /config\.dropout must be in \[0, 1\), got 1/],
    [{ dropout: -0.1 }, /config\.dropout must be in \[0, 1\), got -0\.1/],
    [{ dropout: NaN }, /config\.dropout must be a finite number/],
    [{ std: 0 }, /config\.std must be positive, got 0/],
    [{ mean: [0.5, 0.5] }, /config\.mean must be a number or an array of 3 numbers, got an array of 2/],
    [{ zeroHead: 1 }, /config\.zeroHead must be a boolean, got 1/],
    [{ seed: -1 }, /wideResNet: argument 2 must be a seed/],
  ];
  for (const [change, message] of cases) {
    t.throws(
      () => dna.wideResNet({ ...base, ...change } as dna.WideResNetConfig),
      { instanceOf: Error, message },
      JSON.stringify(change),
    );
  }
  t.throws(() => dna.wideResNet({ ...dna.WRN_40_2 } as dna.WideResNetConfig), {
    message:
      /config\.classes is missing \(a preset such as WRN_40_2 gives depth and widen; add classes and inChannels\)/,
  });
  t.throws(() => dna.wideResNet(null as never), { instanceOf: TypeError, message: /config must be an object/ });
});

test('bad inputs to a model give Errors, never a crash', (t) => {
  const model = small({ inChannels: 3 });
  dna.tidy(() => {
    t.throws(() => model.forward(images([2, 1, 8, 8])), {
      message: 'moduleForward: this WideResNet takes 3-channel images, got 1 channels (input shape [2, 1, 8, 8])',
    });
    t.throws(() => model.forward(images([3, 8, 8])), {
      message: /takes a batch of images \[B, C, H, W\], got shape \[3, 8, 8\]/,
    });
    t.throws(() => model.forward(images([0, 3, 8, 8])), { message: /the batch is empty/ });
    t.throws(() => model.forward(images([2, 3, 8, 8]).toDtype('float64')), {
      message: /the images must be float32 \(values in \[0, 1\]\), got float64/,
    });
    t.throws(() => model.forward(dna.zeros([2, 3, 8, 8], { dtype: 'uint8' })), { message: /got uint8/ });
    const gone = images([2, 3, 8, 8]);
    gone.dispose();
    t.throws(() => model.forward(gone), { message: 'moduleForward: argument 2 is a disposed Tensor' });
    // Training mode needs more than one value per channel for batch statistics (else NaN statistics).
    t.throws(() => model.forward(images([1, 3, 4, 4])), {
      message:
        /^moduleForward: in training mode batch norm needs more than one value per channel, and a batch of shape \[1, 3, 4, 4\] has one at the last group; use a larger batch or eval\(\)$/,
    });
    t.deepEqual(model.forward(images([1, 3, 5, 5])).shape, [1, 5]);
    t.deepEqual(model.forward(images([2, 3, 1, 1])).shape, [2, 5]);
    t.deepEqual(model.eval().forward(images([1, 3, 1, 1])).shape, [1, 5]);
    model.train();
    t.throws(() => model.loadStateDict(null as never), { instanceOf: TypeError });
    t.throws(() => model.loadStateDict([] as never), { message: /state dict must be an object of Tensors by name/ });
    t.throws(() => native.moduleLoadStateDict(model.handle, [] as never), {
      message: /^moduleLoadStateDict: argument 2 must be a state dict/,
    });
  });
  model.dispose();
  model.dispose();
  t.throws(() => model.forward(images([2, 3, 8, 8])), { message: 'moduleForward: argument 1 is a disposed Module' });
  t.throws(() => model.parameterCount, { message: /argument 1 is a disposed Module/ });
  t.throws(() => model.stateDict(), { message: /disposed Module/ });
  // A model's handle is not a tensor, nor a tensor a model.
  t.throws(() => dna.crossEntropy(model as never, labels([0])), { instanceOf: Error });
});

test('memory: forward and backward inside tidy leave no tensors behind; parameter handles free nothing', (t) => {
  const model = small();
  const live = dna.liveTensors();
  for (let i = 0; i < 3; i++) {
    dna.tidy(() => {
      const loss = dna.crossEntropy(model.forward(images([4, 3, 8, 8], i)), labels([0, 1, 2, 3]));
      loss.backward();
      model.parameters().forEach((p) => p.zeroGrad());
    });
  }
  t.is(dna.liveTensors(), live);
  dna.tidy(() => {
    model.parameters();
  }); // disposing parameter handles leaves the model intact
  dna.tidy(() => t.deepEqual(model.forward(images([2, 3, 8, 8])).shape, [2, 5]));
  t.is(dna.liveTensors(), live);
  model.dispose();
});

test(
  'garbage in any argument of the model, loss and optimiser functions: an Error naming the function, ' +
    'never a crash',
  async (t) => {
    type Fn = (...args: unknown[]) => unknown;
    const addon = native as unknown as Record<string, Fn>;
    const made: Array<() => void> = [];
    const module = () => {
      const m = native.wideResNet({ depth: 10, widen: 1, classes: 3, inChannels: 3 }, 1);
      made.push(() => native.moduleDispose(m));
      return m;
    };
    const tensor = (shape: number[], dtype: 'float32' | 'int64' = 'float32') => {
      const x =
        dtype === 'int64'
          ? native.fromData(new BigInt64Array(shape.reduce((a, b) => a * b, 1)), shape)
          : native.full(shape, 0.5);
      made.push(() => native.dispose(x));
      return x;
    };
    const parameter = () => {
      const p = tensor([3]);
      native.setRequiresGrad(p, true);
      return p;
    };
    const optimizer = () => {
      const o = native.sgd([parameter()], { lr: 0.1, momentum: 0.9 });
      made.push(() => native.optimizerDispose(o));
      return o;
    };
    const valid: Record<string, () => unknown[]> = {
      wideResNet: () => [{ depth: 10, widen: 1, classes: 3, inChannels: 3 }, 1],
      mlp: () => [{ inputs: 4, hidden: 3, outputs: 2, zeroHead: true }, 1],
      moduleForward: () => [module(), tensor([2, 3, 4, 4])],
      moduleFeatures: () => [module(), tensor([2, 3, 4, 4])],
      moduleSetBatchNormMomentum: () => [module(), 0.5],
      moduleForwardAsync: () => [module(), tensor([2, 3, 4, 4])],
      moduleFeaturesAsync: () => [module(), tensor([2, 3, 4, 4])],
      moduleTrain: () => [module(), false],
      moduleLoadStateDict: () => {
        const m = module();
        return [m, native.moduleStateDict(m)];
      },
      moduleTo: () => [module(), 'cpu'],
      moduleSetExecution: () => [module(), true, 'bfloat16'],
      crossEntropy: () => [tensor([2, 3]), tensor([2], 'int64'), 0.1],
      sgd: () => [[parameter()], { lr: 0.1, momentum: 0.9, nesterov: true }],
      adam: () => [[parameter()], { lr: 0.1, betas: [0.5, 0.999] }],
      optimizerSetLr: () => [optimizer(), 0.2],
      optimizerLoadState: () => {
        const o = optimizer();
        return [o, native.optimizerState(o)];
      },
      clipGradNorm: () => [[parameter()], 1],
    };
    for (const name of [
      'moduleConfig',
      'moduleIsTraining',
      'moduleParameters',
      'moduleParameterNames',
      'moduleParameterCount',
      'moduleBuffers',
      'moduleBufferNames',
      'moduleStateDict',
      'moduleDevice',
      'moduleExecution',
      'moduleDispose',
      'moduleIsDisposed',
      'moduleResetBatchNormStatistics',
    ]) {
      valid[name] = () => [module()];
    }
    for (const name of [
      'optimizerStep',
      'optimizerStepAsync',
      'optimizerZeroGrad',
      'optimizerGetLr',
      'optimizerOptions',
      'optimizerKind',
      'optimizerParameters',
      'optimizerState',
      'optimizerDispose',
      'optimizerIsDisposed',
    ]) {
      valid[name] = () => [optimizer()];
    }
    const disposedModule = () => {
      const m = module();
      native.moduleDispose(m);
      return m;
    };
    const disposedTensor = () => {
      const x = tensor([2]);
      native.dispose(x);
      return x;
    };
    const garbage: Array<[string, () => unknown]> = [
      ['undefined', () => undefined],
      ['null', () => null],
      ['true', () => true],
      ['0', () => 0],
      ['-1', () => -1],
      ['NaN', () => NaN],
      ['1e300', () => 1e300],
      ["'abc'", () => 'abc'],
      ["'cuda:99999999999'", () => 'cuda:99999999999'],
      ['symbol', () => Symbol('s')],
      ['10n', () => 10n],
      ['{}', () => ({})],
      ['[]', () => []],
      ['[NaN, {}]', () => [NaN, {}]],
      [
        '{ lr: NaN, depth: -4, kind: 5, tensors: 3 }',
        () => ({ lr: NaN, depth: -4, kind: 5, tensors: 3, parameters: 1e20 }),
      ],
      ['function', () => () => 1],
      ['tensor', () => tensor([2, 3])],
      ['[tensor]', () => [tensor([2, 3])]],
      ['disposed tensor', disposedTensor],
      ['[disposed tensor]', () => [disposedTensor()]],
      ['module', module],
      ['disposed module', disposedModule],
      ['[module]', () => [module()]],
      ['optimizer', optimizer],
      ['generator', () => native.generator(1)],
      ['Object.create(module)', () => Object.create(module() as object)],
      ['new (module.constructor)()', () => new ((module() as object).constructor as new () => object)()],
    ];
    t.deepEqual(
      Object.keys(valid).sort(),
      Object.keys(addon)
        .filter((name) => /^(wideResNet|mlp|module|crossEntropy|sgd|adam|optimizer|clipGradNorm)/.test(name))
        .sort(),
      'every model and optimiser function has a valid call',
    );
    const problems: string[] = [];
    let calls = 0;
    // Asynchronous functions reject where synchronous ones throw: the same rule for both.
    const pending: Promise<void>[] = [];
    const judge = (name: string, what: string) => (error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith(`${name}: `)) {
        problems.push(`${name}(${what}) threw ${String(error)}`);
      }
    };
    for (const [name, make] of Object.entries(valid)) {
      let result: unknown;
      t.notThrows(() => {
        result = addon[name](...make());
      }, `${name}: the valid call works`);
      if (result instanceof Promise) await t.notThrowsAsync(result, `${name}: the valid call works`);
      const arity = make().length;
      for (let position = 0; position <= arity; position++) {
        for (const [label, value] of garbage) {
          const args = make();
          args[position] = value();
          calls++;
          try {
            const result = addon[name](...args);
            if (result instanceof Promise) pending.push(result.then(() => {}, judge(name, `#${position} = ${label}`)));
          } catch (error) {
            judge(name, `#${position} = ${label}`)(error);
          }
        }
      }
      await Promise.all(pending.splice(0));
      for (const dispose of made.splice(0)) {
        try {
          dispose();
        } catch {
          // already disposed by the call
        }
      }
    }
    t.true(calls > 1500, `${calls} calls`);
    t.deepEqual(problems, []);
  },
);

// ---- Features, heads on them, batch-norm statistics ----

test("features are what the linear classifier reads: forward = features x fc.weight' + fc.bias", (t) => {
  const model = small();
  const x = images([4, 3, 16, 16], 3);
  const logits = values(model.forward(x));
  const f = model.features(x);
  t.deepEqual(f.shape, [4, 64]);
  const named = model.namedParameters();
  const reference = values(f.matmul(named['fc.weight'].transpose(0, 1)).add(named['fc.bias']));
  logits.forEach((v, k) => t.true(Math.abs(v - reference[k]) < 1e-5, `${v} vs ${reference[k]}`));
  const head = dna.mlp({ inputs: 4, hidden: 3, outputs: 2, seed: 1 });
  t.throws(() => head.features(dna.zeros([2, 4])), { message: /gives no features/ });
  head.dispose();
  model.dispose();
});

test('mlp: Linear-ReLU-Linear as written out; zeroHead starts at zero; bad input names the shape', (t) => {
  const head = dna.mlp({ inputs: 5, hidden: 7, outputs: 3, seed: 2 });
  t.deepEqual(head.config as unknown, { kind: 'mlp', inputs: 5, hidden: 7, outputs: 3, zeroHead: false });
  const x = images([6, 5], 4);
  const w = head.namedParameters();
  const reference = values(
    x
      .matmul(w['hidden.weight'].transpose(0, 1))
      .add(w['hidden.bias'])
      .relu()
      .matmul(w['out.weight'].transpose(0, 1))
      .add(w['out.bias']),
  );
  values(head.forward(x)).forEach((v, k) => t.true(Math.abs(v - reference[k]) < 1e-5));
  const zero = dna.mlp({ inputs: 5, hidden: 7, outputs: 3, zeroHead: true, seed: 2 });
  t.deepEqual(values(zero.forward(x)), new Array(18).fill(0));
  t.throws(() => head.forward(images([6, 4])), {
    message: /takes a batch of feature vectors \[B, 5\], got shape \[6, 4\]/,
  });
  t.throws(() => dna.mlp({ inputs: 0, hidden: 7, outputs: 3 }), { message: /inputs must be an integer from 1/ });
  head.dispose();
  zero.dispose();
});

test('batch norm: momentum null averages every batch since a reset, momentum 0 keeps the statistics', (t) => {
  const model = small();
  const statistics = () =>
    dna.tidy(() =>
      Object.fromEntries(
        Object.entries(model.namedBuffers())
          .filter(([name]) => /running_(mean|var)$/.test(name))
          .map(([name, b]) => [name, values(b)]),
      ),
    );
  const batchA = images([8, 3, 16, 16], 5);
  const batchB = images([6, 3, 16, 16], 6).mul(2);
  // Reference: momentum 1 makes the running statistics those of the last batch alone.
  const alone = (batch: dna.Tensor) => {
    model.resetBatchNormStatistics().setBatchNormMomentum(1);
    dna.noGrad(() => model.forward(batch));
    return statistics();
  };
  const a = alone(batchA);
  const b = alone(batchB);
  model.resetBatchNormStatistics().setBatchNormMomentum(null);
  const reset = statistics();
  t.true(Object.entries(reset).every(([name, v]) => v.every((x) => x === (name.endsWith('mean') ? 0 : 1))));
  dna.noGrad(() => {
    model.forward(batchA);
    model.forward(batchB);
  });
  const averaged = statistics();
  for (const name of Object.keys(averaged)) {
    averaged[name].forEach((v, k) => {
      const expected = (a[name][k] + b[name][k]) / 2;
      t.true(Math.abs(v - expected) < 1e-4 * Math.max(1, Math.abs(expected)), `${name}[${k}]: ${v} vs ${expected}`);
    });
  }
  t.is(
    dna.tidy(() => model.namedBuffers()['bn.num_batches_tracked'].item()),
    2,
  );
  model.setBatchNormMomentum(0);
  dna.noGrad(() => model.forward(images([8, 3, 16, 16], 9)));
  t.deepEqual(statistics(), averaged);
  t.throws(() => model.setBatchNormMomentum(2), { message: /momentum must be in \[0, 1\] or null, got 2/ });
  model.dispose();
});
