// Policy files: a searched policy network's weights with everything needed to use it (search
// space, backbone, provenance), and `loadPolicy`, which turns one into a frozen policy.
import { requireCustomOps } from '../augment/custom-ops.js';
import { validateSearchSpace, type SearchSpace } from '../augment/search-space.js';
import { loadCheckpoint, saveCheckpoint } from '../engine/checkpoint.js';
import { checkRecordedNetwork } from '../engine/models.js';
import { dispose, type Device } from '../engine/tensor.js';
import { describe, optionsObject } from '../util/describe.js';
import { frozenPolicy, type LoadedPolicy, type PolicyProvenance } from './frozen-policy.js';
import { PolicyNetwork, type PolicyNetworkConfig } from './policy-network.js';

export const POLICY_FILE_KIND = 'dna-augment/policy';
const POLICY_FILE_VERSION = 1;

type Backbone = PolicyNetworkConfig['backbone'];

interface PolicyFileMeta {
  version: number;
  searchSpace: SearchSpace;
  backbone: Backbone;
  inChannels: number;
  provenance: PolicyProvenance;
}

/** Writes a policy file: the policy network's weights and everything needed to use them. */
export async function savePolicy(
  file: string,
  policy: PolicyNetwork,
  provenance: Omit<PolicyFileMeta['provenance'], 'library'>,
): Promise<void> {
  if (!(policy instanceof PolicyNetwork))
    throw new TypeError(`savePolicy: policy must be a PolicyNetwork, got ${describe(policy)}`);
  const config = policy.network.config;
  const state = policy.network.stateDict();
  try {
    const meta: PolicyFileMeta = {
      version: POLICY_FILE_VERSION,
      searchSpace: policy.searchSpace,
      backbone: {
        depth: config.depth,
        widen: config.widen,
        dropout: config.dropout,
        mean: config.mean,
        std: config.std,
      },
      inChannels: config.inChannels,
      provenance: { ...provenance, library: 'dna-augment' },
    };
    await saveCheckpoint(file, { kind: POLICY_FILE_KIND, meta, tensors: state });
  } finally {
    dispose(state);
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
    if (meta?.version !== POLICY_FILE_VERSION)
      throw new Error(
        `${file}: policy file version ${String(meta?.version)}, this version reads ${POLICY_FILE_VERSION}`,
      );
    try {
      validateSearchSpace(meta.searchSpace);
    } catch (error) {
      throw new Error(`${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
    requireCustomOps(meta.searchSpace, file);
    if (meta.backbone === null || typeof meta.backbone !== 'object')
      throw new Error(`${file}: the policy file records no backbone`);
    checkRecordedNetwork(
      { ...meta.backbone, classes: 5 * meta.searchSpace.subPolicies.length, inChannels: meta.inChannels },
      checkpoint.tensors,
      file,
    );
    let network: PolicyNetwork | undefined;
    try {
      network = new PolicyNetwork({
        backbone: meta.backbone,
        inChannels: meta.inChannels,
        searchSpace: meta.searchSpace,
      });
      network.network.loadStateDict(checkpoint.tensors);
    } catch (error) {
      network?.dispose();
      throw new Error(`${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
    network.to(device ?? 'cpu').eval();
    return frozenPolicy(network, { inChannels: meta.inChannels, provenance: meta.provenance });
  } finally {
    dispose(checkpoint.tensors);
  }
}
