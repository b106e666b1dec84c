// What a policy search optimises. Every objective shares one step: the policy samples a
// sub-policy per image, the fused op applies it, Cutout follows, and the classifier takes its
// gradient on the augmented batch. The augmented batch is cut from the graph before the
// classifier, so the classifier's backward gives dL/dy for the images y; each objective turns
// that into the gradient the policy receives through y (and so through the fused op's
// straight-through rules), and regularisers add terms of their own.
//
//   joint    the paper: both networks minimise the training loss (policy gets +dL/dy).
//   bilevel  DADA: the policy minimises the loss of clean held-out images after one unrolled
//            SGD step of the classifier on the augmented batch; the second-order term is a
//            finite-difference Hessian-vector product (two extra classifier passes).
//   teacher  TeachAugment: the policy maximises the classifier's loss while an EMA teacher of
//            the classifier must still recognise the images (policy gets -dL/dy + dL_teacher/dy).
//   invariance
//            the policy looks for the changes each image tolerates: the classifier trains on
//            the images as they are (after flip/crop), and the policy's cost per image is the
//            true rise of its loss, L(augmented) - L(clean), not a linearisation, plus the
//            strength regulariser's deviation from its target. The discrete choices
//            (sub-policy, bits) learn from that cost by the score function (REINFORCE against
//            the other images of the class, or with `draws` against the image's other draws,
//            dna/score-function.ts); the magnitudes by the straight-through path. With a
//            strength target, each image must be changed, and the cheapest change is the one
//            the class is already invariant to. With a change reward
//            instead, each image is changed as much as the classifier tolerates; with a rise
//            target, until its loss rises by about that much. The prior regulariser
//            (dna/prior.ts) keeps the policy broad where the cost says nothing.
import { applyCutout } from '../augment/preprocess.js';
import { applySubPolicies } from '../augment/fused.js';
import type { SearchSpace } from '../augment/search-space.js';
import { stack } from '../engine/creation.js';
import type { ProcessGroup } from '../distributed/group.js';
import { Module } from '../engine/models.js';
import { classifierStep } from '../engine/steps.js';
import type { Optimizer } from '../engine/optim.js';
import { priorDivergence } from './prior.js';
import { changeCost, classBaseline, drawBaseline, invarianceCost, scoreFunctionLoss } from './score-function.js';
import { widthEntropy, type WidthEntropy } from './ranges.js';
import { mapOutputs, samplePolicy, type PolicyOutput } from './sampling.js';
import { type PolicyNetwork } from './policy-network.js';
import { Generator } from '../engine/random.js';
import { dispose, noGrad, tidy, type Tensor } from '../engine/tensor.js';

export const SEARCH_OBJECTIVES = ['joint', 'bilevel', 'teacher', 'invariance'] as const;
export type SearchObjective = (typeof SEARCH_OBJECTIVES)[number];

/** Terms that keep a search from collapsing; each is off unless set. */
export interface Regularisers {
  /** Entropy floor on pi(x), in nats: adds entropyWeight * mean(relu(floor - H(pi(x)))). */
  entropyFloor?: number;
  /** Default 1. */
  entropyWeight?: number;
  /**
   * Augmentation strength target: how much the policy should change each image, as the mean
   * absolute pixel change in [0, 1] (cheap ops that barely change an image do not count).
   * Adds strengthWeight * mean_i (change_i - target)^2 to the policy's loss.
   */
  strength?: number;
  /** Default 10. */
  strengthWeight?: number;
  /**
   * A linear reward per unit of mean pixel change: subtracts changeReward * change_i from the
   * policy's loss, so the policy changes each image as much as the classifier tolerates. Unlike
   * the squared target it does not penalise a large change the classifier does not mind (an
   * Invert on a class that comes inverted anyway).
   */
  changeReward?: number;
  /**
   * Magnitude ranges only: the InstaAug-style bounded entropy of the widths (dna/ranges.ts). The
   * adaptive weight keeps the geometric mean width between widthFloor and widthCeiling (fractions
   * of the whole magnitude range; defaults 0.3 and 0.9), starting at widthWeight (0.01) and
   * moving by the factor widthRate (1.05) per step.
   */
  widthFloor?: number;
  widthCeiling?: number;
  widthWeight?: number;
  widthRate?: number;
  /**
   * The weight of the TrivialAugment-like prior (dna/prior.ts): adds prior * mean_i KL(policy(x_i)
   * || prior) to the policy's loss, so that the policy stays broad except where its objective
   * consistently says otherwise for an image.
   */
  prior?: number;
  /**
   * Objective 'invariance' only: the loss rise, in nats, that an image's change costs nothing
   * under. Its cost is max(0, rise - tolerance) instead of the rise, so that every change the
   * classifier tolerates is as good as no change, and the policy (held broad by the prior) keeps
   * them all rather than settling on the ones that change least.
   */
  tolerance?: number;
  /**
   * Objective 'invariance' only: the loss rise, in nats, each image's change should cause. Its
   * cost is |rise - riseTarget| instead of the rise: an image is changed enough that the
   * classifier has something to learn from it, and not so much that its label is gone. Fragile
   * images get mild changes, robust ones strong changes. Not with `tolerance`.
   */
  riseTarget?: number;
  /**
   * With `riseTarget` only: the weight of a rise short of the target against one past it
   * (default 1). The cost is max(0, rise - riseTarget) + shortfallWeight * max(0, riseTarget -
   * rise): 1 is the symmetric |rise - riseTarget|, 0 the tolerance, and a weight between asks
   * for changes up to the target less firmly than it refuses changes past it.
   */
  shortfallWeight?: number;
}

export interface StepNetworks {
  policy: PolicyNetwork;
  classifier: Module;
  classifierOptimizer: Optimizer;
  policyOptimizer: Optimizer;
  /** The EMA teacher of objective 'teacher'. */
  teacher?: Module;
  /** The ranks of a distributed search: both networks' gradients are averaged over them before the updates. */
  group?: ProcessGroup;
}

export interface StepSettings {
  objective: SearchObjective;
  tau: number;
  lambda: number;
  /** Cutout after the sub-policy (pixels; 0 for none). */
  cutout: number;
  magnitudeGradient: 'straight-through' | 'exact';
  regularisers: Regularisers;
  /** The classifier's lr and weight decay of this step: the unrolled step of 'bilevel' uses them. */
  lr: number;
  weightDecay: number;
  /** EMA decay of the teacher (objective 'teacher'). */
  teacherDecay: number;
  /**
   * Objective 'invariance': how many sub-policies each image draws per step (default 1). With
   * more than one, each draw's cost is scored against the mean cost of the image's other draws
   * instead of the other images of its class.
   */
  draws?: number;
  /** Magnitude ranges: the bounds of the width entropy, and its weight at this step. */
  widthEntropy?: { bounds: WidthEntropy; weight: Tensor | number };
}

export interface StepBatch {
  /** Images after flip and crop, float32 [B, C, H, W] in [0, 1]. */
  images: Tensor;
  labels: Tensor;
  /** Clean held-out images and labels (objective 'bilevel'). */
  validation?: { images: Tensor; labels: Tensor };
}

/** What a search step leaves, on the device; the caller disposes it. */
export interface StepResult {
  /** The classifier's training loss on the augmented batch (a scalar), and how many it got right. */
  loss: Tensor;
  correct: Tensor;
  /** The policy's outputs for the batch, detached (for the collapse monitor). */
  outputs: PolicyOutput;
  /** Mean absolute pixel change the sampled sub-policies made (a scalar). */
  strength: Tensor;
  /** Magnitude ranges: the batch's mean width entropy (mean log width, dna/ranges.ts; a scalar). */
  widthEntropy?: Tensor;
}

/** `t` [B, ...] repeated `times` along its first dimension: [times * B, ...], copy k in rows k * B .. (k + 1) * B - 1. */
function repeatRows(t: Tensor, times: number): Tensor {
  return t.repeat([times, ...new Array<number>(t.ndim - 1).fill(1)]);
}

/** The entropy of pi(x) = softmax(logits) of each image [B], in nats (differentiable). */
function policyEntropy(logits: Tensor): Tensor {
  const logPi = logits.logSoftmax(1);
  return logPi.exp().mul(logPi).sum(1).neg();
}

/** The policy's regularisation loss (a scalar tensor in the policy's graph), or undefined. */
function regularisation(
  settings: StepSettings,
  outputs: PolicyOutput,
  searchSpace: SearchSpace,
  change: Tensor,
  rangeEntropy: Tensor | undefined,
): Tensor | undefined {
  const { entropyFloor, entropyWeight = 1, prior } = settings.regularisers;
  const { logits } = outputs;
  const terms: Tensor[] = [];
  if (prior !== undefined && prior > 0) terms.push(priorDivergence(outputs, searchSpace).mean().mul(prior));
  if (entropyFloor !== undefined)
    terms.push(policyEntropy(logits).neg().add(entropyFloor).relu().mean().mul(entropyWeight));
  const cost = changeCost(settings.regularisers, change);
  if (cost !== undefined) terms.push(cost.mean());
  if (rangeEntropy !== undefined && settings.widthEntropy !== undefined)
    terms.push(rangeEntropy.mean().mul(settings.widthEntropy.weight).neg());
  return terms.length === 0 ? undefined : terms.reduce((sum, term) => sum.add(term));
}

/** A classifier's loss on images, on the device: the mean, the hits, d loss / d images and the per-image losses. */
interface LossGradient {
  loss: Tensor;
  correct: Tensor;
  grad: Tensor;
  perImage: Tensor;
}

/**
 * Loss and gradient of the classifier's loss with respect to the images `y` (a leaf here), its
 * backward adding to the classifier's parameter gradients: a native Module runs it on the step
 * thread (classifierStep), any other model (the smooth test models) as plain tensor ops.
 */
async function lossAndImageGradient(model: UnrollableModel, y: Tensor, labels: Tensor): Promise<LossGradient> {
  if (model instanceof Module) {
    const result = await classifierStep(model, y, labels, { inputGradient: true, perImageLoss: true });
    return { loss: result.loss, correct: result.correct, grad: result.inputGradient!, perImage: result.perImageLoss! };
  }
  return tidy(() => {
    const leaf = y.detach().requireGrad();
    const logits = model.forward(leaf);
    const perImage = logits.logSoftmax(1).gather(1, labels.unsqueeze(1)).squeeze(1).neg();
    const loss = perImage.mean();
    loss.backward();
    const correct = noGrad(() => logits.argmax(1).eq(labels).sum());
    return { loss: loss.detach(), correct, grad: leaf.grad!.detach(), perImage: perImage.detach() };
  });
}

/** What the unrolled step needs of a classifier (a Module, or any model with the same methods). */
export type UnrollableModel = Pick<
  Module,
  'forward' | 'stateDict' | 'loadStateDict' | 'namedParameters' | 'parameters'
>;

/** Drops the gradients of a module's parameters. */
function zeroGrads(model: UnrollableModel): void {
  const parameters = model.parameters();
  for (const p of parameters) p.zeroGrad();
  dispose(parameters);
}

/** Sets every parameter p to p + alpha * direction[p] (direction by parameter name). */
function shiftParameters(
  model: UnrollableModel,
  base: Record<string, Tensor>,
  direction: Record<string, Tensor>,
  alpha: number | Tensor,
): void {
  noGrad(() =>
    tidy(() => {
      const shifted: Record<string, Tensor> = { ...base };
      for (const name of Object.keys(direction)) shifted[name] = base[name].add(direction[name].mul(alpha));
      model.loadStateDict(shifted);
    }),
  );
}

/** The parameters' gradients by name (copies); zeros where a parameter has none. */
function parameterGradients(model: UnrollableModel): Record<string, Tensor> {
  const named = model.namedParameters();
  try {
    return Object.fromEntries(
      Object.entries(named).map(([name, p]) => [name, p.grad?.detach().clone() ?? p.detach().mul(0)]),
    );
  } finally {
    dispose(Object.values(named));
  }
}

/** Sets each parameter's gradient to `gradients[name]`. */
function restoreGradients(model: UnrollableModel, gradients: Record<string, Tensor>): void {
  const named = model.namedParameters();
  try {
    for (const [name, p] of Object.entries(named)) p.setGrad(gradients[name]);
  } finally {
    dispose(Object.values(named));
  }
}

/**
 * dL_val(w')/dy with w' = w - lr * (dL_train/dw + wd * w), by the finite-difference product of
 * DARTS/DADA: -lr * (dL_train(w+)/dy - dL_train(w-)/dy) / (2 eps), w± = w ± eps * v,
 * v = dL_val/dw', eps = 0.01 / |v|. The classifier's gradients must hold dL_train(w)/dw of
 * (y, labels) (the caller's backward: the classifier's own update needs them too). Leaves the
 * classifier's weights, buffers and gradients as it found them.
 */
export async function unrolledImageGradient(
  classifier: UnrollableModel,
  y: Tensor,
  labels: Tensor,
  validation: { images: Tensor; labels: Tensor },
  lr: number,
  weightDecay: number,
): Promise<Tensor> {
  const state = classifier.stateDict();
  const g = parameterGradients(classifier);
  const held: Tensor[] = [];
  try {
    const step = tidy(() =>
      Object.fromEntries(Object.keys(g).map((name) => [name, g[name].add(state[name].mul(weightDecay))])),
    );
    held.push(...Object.values(step));
    shiftParameters(classifier, state, step, -lr);
    zeroGrads(classifier);
    held.push(...Object.values(await lossAndImageGradient(classifier, validation.images, validation.labels)));
    const v = parameterGradients(classifier);
    held.push(...Object.values(v));
    // eps = 0.01 / |v|, on the device: one reduction, no host read.
    const eps = tidy(() =>
      stack(Object.values(v).map((t) => t.square().sum()))
        .sum()
        .sqrt()
        .maximum(1e-12)
        .pow(-1)
        .mul(0.01),
    );
    held.push(eps);
    shiftParameters(classifier, state, v, eps);
    zeroGrads(classifier);
    const plus = await lossAndImageGradient(classifier, y, labels);
    held.push(...Object.values(plus));
    const minusEps = tidy(() => eps.neg());
    held.push(minusEps);
    shiftParameters(classifier, state, v, minusEps);
    zeroGrads(classifier);
    const minus = await lossAndImageGradient(classifier, y, labels);
    held.push(...Object.values(minus));
    return tidy(() => plus.grad.sub(minus.grad).mul(-lr).div(eps.mul(2)));
  } finally {
    noGrad(() => classifier.loadStateDict(state));
    restoreGradients(classifier, g);
    dispose([held, state, g]);
  }
}

/** Moves the teacher toward the classifier: t = decay * t + (1 - decay) * w (parameters and buffers). */
export function updateTeacher(teacher: Module, classifier: Module, decay: number): void {
  noGrad(() =>
    tidy(() => {
      const t = teacher.stateDict();
      const w = classifier.stateDict();
      const next: Record<string, Tensor> = {};
      for (const name of Object.keys(t))
        next[name] = t[name].dtype === 'float32' ? t[name].mul(decay).add(w[name].mul(1 - decay)) : w[name];
      teacher.loadStateDict(next);
    }),
  );
}

/**
 * One search step of `settings.objective`: samples and applies a sub-policy per image, updates
 * the classifier on the augmented batch and the policy by its objective. The networks' forward
 * and backward passes run on the step thread; nothing is read on the host, so both optimisers
 * step whatever the loss: the caller reads the loss and stops a run whose loss is not finite.
 */
export async function searchStep(
  networks: StepNetworks,
  settings: StepSettings,
  batch: StepBatch,
  generator: Generator,
): Promise<StepResult> {
  const { policy, classifier, classifierOptimizer, policyOptimizer, teacher } = networks;
  const held: unknown[] = [];
  const hold = <T>(value: T): T => {
    held.push(value);
    return value;
  };
  try {
    const x = batch.images;
    const outputs = hold(await policy.forwardAsync(x));
    // Under 'invariance' the choices learn by the score function: only the magnitudes take the path through the op.
    const scored = settings.objective === 'invariance';
    // Each image `draws` times (draw-major: row k * B + i is image i's k-th draw), its outputs with it.
    const draws = scored ? (settings.draws ?? 1) : 1;
    const drawn =
      draws === 1
        ? { x, labels: batch.labels, outputs }
        : hold(
            tidy(() => ({
              x: repeatRows(x, draws),
              labels: repeatRows(batch.labels, draws),
              outputs: mapOutputs(outputs, (t) => repeatRows(t, draws)),
            })),
          );
    const { c, b, change, y } = hold(
      tidy(() => {
        // For ranges, m is drawn in each range (reparameterised): the sample's, not the centres.
        const { c, b, m } = samplePolicy(drawn.outputs, { tau: settings.tau, lambda: settings.lambda, generator });
        const augmented = applySubPolicies(drawn.x, scored ? c.detach() : c, scored ? b.detach() : b, m, {
          searchSpace: policy.searchSpace,
          generator,
          magnitudeGradient: settings.magnitudeGradient,
        });
        const change = augmented.sub(drawn.x).abs().mean([1, 2, 3]);
        return { c, b, augmented, change, y: applyCutout(augmented, settings.cutout, { generator }) };
      }),
    );

    classifierOptimizer.zeroGrad();
    policyOptimizer.zeroGrad();
    let train: LossGradient;
    let imageGradient: Tensor;
    let score: Tensor | undefined;
    switch (settings.objective) {
      case 'joint':
        train = hold(await lossAndImageGradient(classifier, y, batch.labels));
        imageGradient = train.grad;
        break;
      case 'teacher': {
        if (teacher === undefined) throw new Error("searchStep: objective 'teacher' needs the teacher network");
        train = hold(await lossAndImageGradient(classifier, y, batch.labels));
        const judged = hold(await lossAndImageGradient(teacher, y, batch.labels));
        zeroGrads(teacher);
        imageGradient = hold(tidy(() => judged.grad.sub(train.grad)));
        break;
      }
      case 'bilevel': {
        if (batch.validation === undefined) throw new Error("searchStep: objective 'bilevel' needs a validation batch");
        // The training gradient at w serves both the unrolled step and the classifier's update.
        train = hold(await lossAndImageGradient(classifier, y, batch.labels));
        imageGradient = hold(
          await unrolledImageGradient(classifier, y, batch.labels, batch.validation, settings.lr, settings.weightDecay),
        );
        break;
      }
      case 'invariance': {
        // The cost is measured by a classifier trained on the images as they are: what it
        // tolerates is the variation the data itself has, class by class.
        const augmentedPass = hold(await lossAndImageGradient(classifier, y, drawn.labels));
        classifierOptimizer.zeroGrad();
        train = hold(await lossAndImageGradient(classifier, x, batch.labels));
        imageGradient = augmentedPass.grad;
        score = hold(
          tidy(() => {
            const clean = draws === 1 ? train.perImage : repeatRows(train.perImage, draws);
            const cost = invarianceCost(augmentedPass.perImage, clean, change.detach(), settings.regularisers);
            const baseline = draws === 1 ? classBaseline(cost, batch.labels) : drawBaseline(cost, draws);
            return scoreFunctionLoss(drawn.outputs, c, b, cost, baseline);
          }),
        );
        break;
      }
    }
    const rangeEntropy = outputs.width === undefined ? undefined : hold(widthEntropy(outputs, policy.searchSpace));
    // The policy's loss: <dObjective/dy, y> carries the objective through the fused op, plus the regularisers.
    const surrogate = hold(
      tidy(() => {
        let total = y.mul(imageGradient).sum();
        const extra = regularisation(settings, outputs, policy.searchSpace, change, rangeEntropy);
        if (extra !== undefined) total = total.add(extra);
        return score === undefined ? total : total.add(score);
      }),
    );
    // What the policy's optimiser trains: the policy network, or a feature head alone.
    const trained = policy.head ?? policy.network;
    await surrogate.backwardAsync([trained]);
    if (networks.group?.isDistributed) await networks.group.averageGradients(classifier, trained);
    await classifierOptimizer.stepAsync();
    await policyOptimizer.stepAsync();
    if (teacher !== undefined) updateTeacher(teacher, classifier, settings.teacherDecay);
    return tidy(() => {
      return {
        loss: train.loss.clone(),
        correct: train.correct.clone(),
        outputs: mapOutputs(outputs, (t) => t.detach()),
        strength: noGrad(() => change.mean()),
        widthEntropy: rangeEntropy === undefined ? undefined : noGrad(() => rangeEntropy.mean()),
      };
    });
  } finally {
    dispose(held);
  }
}
