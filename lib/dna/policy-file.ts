// Policy files: a searched policy network's weights with everything needed to use it (search
// space, backbone, magnitude form, head, provenance, the settle check), and `loadPolicy`, which
// turns one into a frozen policy.
//
// Version 2 adds `magnitudes` ('point' or 'range'), `head` (a backbone of its own, or an MLP on a
// WideResNet's features: then the tensors are `backbone.*` and `head.*`) and `settled` (the
// check of dna/settle.ts). Version 1 files (point magnitudes, a backbone of their own, not
// settled) still load.
import { requireCustomOps } from '../augment/custom-ops.js';
import { validateSearchSpace, type SearchSpace } from '../augment/search-space.js';
import { loadCheckpoint, saveCheckpoint, withPrefix } from '../engine/checkpoint.js';
import { checkRecordedNetwork, wideResNet, type Module } from '../engine/models.js';
import { dispose, type Device, type Tensor } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';
import { frozenPolicy, type LoadedPolicy, type PolicyProvenance } from './frozen-policy.js';
import { MAGNITUDE_FORMS, PolicyNetwork, type MagnitudeForm, type PolicyNetworkConfig } from './policy-network.js';
import type { SettleCheck } from './settle.js';

export const POLICY_FILE_KIND = 'dna-augment/policy';
const POLICY_FILE_VERSION = 2;
/** Versions this one reads. */
const READABLE_VERSIONS = [1, 2];

type Backbone = PolicyNetworkConfig['backbone'];

/** A backbone of its own (the paper), or an MLP of `hidden` units on the features of a WideResNet with `classes` outputs. */
type HeadRecord = { kind: 'network' } | { kind: 'features'; hidden: number; classes: number };

interface PolicyFileMeta {
  version: number;
  searchSpace: SearchSpace;
  backbone: Backbone;
  inChannels: number;
  provenance: PolicyProvenance;
  /** Version 2. */
  magnitudes?: MagnitudeForm;
  head?: HeadRecord;
  settled?: SettleCheck;
}

/** The backbone's architecture as a policy file records it. */
function backboneRecord(network: Module): Backbone {
  const config = network.config;
  return { depth: config.depth, widen: config.widen, dropout: config.dropout, mean: config.mean, std: config.std };
}

/** The tensors of a policy: the network's state dict, or for a feature head `backbone.*` and `head.*`. */
function policyTensors(policy: PolicyNetwork): Record<string, Tensor> {
  if (policy.head === undefined) return policy.network.stateDict();
  const prefixed = (prefix: string, dict: Record<string, Tensor>) =>
    Object.fromEntries(Object.entries(dict).map(([name, t]) => [`${prefix}${name}`, t]));
  return { ...prefixed('backbone.', policy.network.stateDict()), ...prefixed('head.', policy.head.stateDict()) };
}

/** Writes a policy file: the policy network's weights and everything needed to use them. */
export async function savePolicy(
  file: string,
  policy: PolicyNetwork,
  provenance: Omit<PolicyFileMeta['provenance'], 'library'>,
  settled?: SettleCheck,
): Promise<void> {
  if (!(policy instanceof PolicyNetwork))
    throw new TypeError(`savePolicy: policy must be a PolicyNetwork, got ${describe(policy)}`);
  const state = policyTensors(policy);
  try {
    const headConfig = policy.head?.config as { hidden?: number } | undefined;
    const meta: PolicyFileMeta = {
      version: POLICY_FILE_VERSION,
      searchSpace: policy.searchSpace,
      backbone: backboneRecord(policy.network),
      inChannels: policy.network.config.inChannels,
      provenance: { ...provenance, library: 'dna-augment' },
      magnitudes: policy.magnitudes,
      head:
        headConfig === undefined
          ? { kind: 'network' }
          : { kind: 'features', hidden: Number(headConfig.hidden), classes: policy.network.config.classes },
      ...(settled === undefined ? {} : { settled }),
    };
    await saveCheckpoint(file, { kind: POLICY_FILE_KIND, meta, tensors: state });
  } finally {
    dispose(state);
  }
}

/** The policy network a file describes, with its weights loaded. */
function buildPolicy(meta: PolicyFileMeta, tensors: Record<string, Tensor>, file: string): PolicyNetwork {
  const magnitudes = meta.magnitudes ?? 'point';
  if (!MAGNITUDE_FORMS.includes(magnitudes))
    throw new Error(`${file}: unknown magnitude form ${describe(magnitudes)} (one of ${MAGNITUDE_FORMS.join(', ')})`);
  const head = meta.head ?? { kind: 'network' };
  const perSubPolicy = magnitudes === 'range' ? 7 : 5;
  const S = meta.searchSpace.subPolicies.length;
  if (head.kind === 'network') {
    checkRecordedNetwork({ ...meta.backbone, classes: perSubPolicy * S, inChannels: meta.inChannels }, tensors, file);
    const network = new PolicyNetwork({
      backbone: meta.backbone,
      inChannels: meta.inChannels,
      searchSpace: meta.searchSpace,
      magnitudes,
    });
    try {
      network.network.loadStateDict(tensors);
      return network;
    } catch (error) {
      network.dispose();
      throw error;
    }
  }
  if (head.kind !== 'features' || !Number.isInteger(head.hidden) || !Number.isInteger(head.classes))
    throw new Error(`${file}: the policy file records an unknown head ${describe(head)}`);
  const backboneTensors = withPrefix(tensors, 'backbone.');
  checkRecordedNetwork({ ...meta.backbone, classes: head.classes, inChannels: meta.inChannels }, backboneTensors, file);
  // Like checkRecordedNetwork for the head: a crafted hidden size must not allocate without bound.
  const headTensors = withPrefix(tensors, 'head.');
  const inputs = 64 * Number(meta.backbone.widen);
  const outputs = perSubPolicy * S;
  const needed = (inputs + 1) * head.hidden + (head.hidden + 1) * outputs;
  const stored = Object.values(headTensors).reduce((sum, t) => sum + t.numel, 0);
  if (!(head.hidden >= 1 && needed <= stored))
    throw new RangeError(
      `${file}: the head it records (${head.hidden} hidden units, ${outputs} outputs) has ${needed} parameters, ` +
        `but the file holds ${stored} values for it`,
    );
  const backbone = wideResNet({ ...meta.backbone, classes: head.classes, inChannels: meta.inChannels });
  let network: PolicyNetwork | undefined;
  try {
    backbone.loadStateDict(backboneTensors);
    network = new PolicyNetwork({
      backbone: meta.backbone,
      inChannels: meta.inChannels,
      searchSpace: meta.searchSpace,
      magnitudes,
      features: { network: backbone, hidden: head.hidden },
    });
    network.head!.loadStateDict(headTensors);
    return network;
  } catch (error) {
    if (network === undefined) backbone.dispose();
    else network.dispose();
    throw error;
  }
}

/** Loads a policy file written by `search` as an augmenter usable in any pipeline. */
export async function loadPolicy(file: string, options: { device?: Device } = {}): Promise<LoadedPolicy> {
  const { device } = optionsObject(options, 'loadPolicy');
  const checkpoint = await loadCheckpoint(file, {
    kind: POLICY_FILE_KIND,
    what: 'a policy file (a policy.dna written by search)',
  });
  try {
    const meta = checkpoint.meta as PolicyFileMeta;
    if (!READABLE_VERSIONS.includes(meta?.version))
      throw new Error(
        `${file}: policy file version ${String(meta?.version)}, this version reads ${READABLE_VERSIONS.join(' and ')}`,
      );
    try {
      validateSearchSpace(meta.searchSpace);
    } catch (error) {
      throw new Error(`${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
    requireCustomOps(meta.searchSpace, file);
    if (meta.backbone === null || typeof meta.backbone !== 'object')
      throw new Error(`${file}: the policy file records no backbone`);
    let network: PolicyNetwork;
    try {
      network = buildPolicy(meta, checkpoint.tensors, file);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(message.startsWith(file) ? message : `${file}: ${message}`);
    }
    network.to(device ?? 'cpu').eval();
    return frozenPolicy(network, { inChannels: meta.inChannels, provenance: meta.provenance, settled: meta.settled });
  } finally {
    dispose(checkpoint.tensors);
  }
}
