// Data-parallel runs over LibTorch's c10d: process groups and their collectives, sharding and
// per-rank seeds, and the launcher behind `dna launch`.
export {
  ProcessGroup,
  initDistributed,
  localGroup,
  processGroupFor,
  distributedBackends,
  type Reduction,
  type ModuleState,
  type BatchNormSync,
} from './group.js';
export {
  distributedSettings,
  glooEndpoint,
  threadsPerRank,
  torchrunEnvironmentPresent,
  DEFAULT_BUCKET_MEGABYTES,
  DEFAULT_TIMEOUT_SECONDS,
  type DistributedOptions,
  type DistributedSettings,
  type DistributedBackend,
  type GlooEndpoint,
} from './environment.js';
export { shardIndices, shardLength, evaluationShard, rankSeed, type ShardOptions } from './sampler.js';
export { launch, type LaunchOptions, type LaunchResult, type RankExit } from './launch.js';
