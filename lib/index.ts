// dna-augment: learned, input-conditional data augmentation (Dynamic Network Augmentation).
export {
  backend,
  memoryStats,
  setThreads,
  synchronize,
  type Backend,
  type CpuAllocator,
  type MemoryStats,
} from './engine/backend.js';
export {
  Tensor,
  tidy,
  keep,
  dispose,
  noGrad,
  isGradEnabled,
  liveTensors,
  type DType,
  type Device,
  type TypedArray,
  type NestedArray,
  type Operand,
  type TensorOptions,
} from './engine/tensor.js';
export {
  Generator,
  manualSeed,
  rand,
  randn,
  uniform,
  randint,
  randperm,
  bernoulli,
  type RandomOptions,
} from './engine/random.js';
export { tensor, full, zeros, ones, arange, cat, stack, where } from './engine/creation.js';
export {
  OPS,
  IDENTITY_KIND,
  subPolicies,
  defaultSearchSpace,
  validateSearchSpace,
  findOp,
  subPolicyName,
  hasCustomOps,
  type OpSpec,
  type BuiltinOpSpec,
  type CustomOpSpec,
  type SubPolicy,
  type SearchSpace,
} from './augment/search-space.js';
export {
  loadOpLibrary,
  registerOp,
  MissingOpError,
  type CustomOpDefinition,
  type TransformFunction,
} from './augment/custom-ops.js';
export { applyOp, applySubPolicies, type AugmentOptions, type SubPolicyOptions } from './augment/fused.js';
export { applyCutout, preprocess, PREPROCESS_PRESETS, type PreprocessConfig } from './augment/preprocess.js';
export {
  datasets,
  DataFileError,
  classCounts,
  isStreamed,
  subset,
  stratifiedSubset,
  splitStratified,
  stratifiedQuotas,
  batches,
  batchesAsync,
  batchCount,
  epochOrder,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  type ImageDataset,
  type ImageSource,
  type LoadOptions,
  type Split,
  type Cifar100Options,
  type SvhnOptions,
  type IdxOptions,
  type ImageFolderOptions,
  imageFolderLayout,
  type ImageFolderLayout,
  type Batch,
  type BatchOptions,
} from './data/index.js';
export {
  wideResNet,
  wideResNetParameterCount,
  mlp,
  type MlpConfig,
  Module,
  crossEntropy,
  WRN_40_2,
  WRN_28_10,
  WRN_28_2,
  WRN_16_1,
  WRN_10_1,
  type WideResNetConfig,
  type WideResNetPreset,
  type ModuleConfig,
  type CrossEntropyOptions,
  PRECISIONS,
  type Execution,
  type MemoryFormat,
  type Precision,
} from './engine/models.js';
export {
  sgd,
  adam,
  Optimizer,
  clipGradNorm,
  cosineLr,
  type SgdOptions,
  type AdamOptions,
  type OptimizerState,
  type Parameterized,
} from './engine/optim.js';
export { saveCheckpoint, loadCheckpoint, checkpointPaths } from './engine/checkpoint.js';
export {
  CheckpointError,
  CHECKPOINT_MAGIC,
  CHECKPOINT_VERSION,
  CHECKPOINT_ALIGN,
  type CheckpointData,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  type CheckpointTensorEntry,
  type JSONValue,
} from './engine/checkpoint-format.js';
export {
  autoAugment,
  autoAugmentDraws,
  autoAugmentValue,
  AUTOAUGMENT_POLICIES,
  type AutoAugmentOp,
  type AutoAugmentSubPolicy,
  type AutoAugmentPolicyName,
  type AutoAugmentOptions,
} from './baselines/autoaugment.js';
export {
  randAugment,
  randAugmentDraws,
  randAugmentValue,
  RANDAUGMENT_OPS,
  type RandAugmentOptions,
} from './baselines/randaugment.js';
export {
  trivialAugment,
  trivialAugmentDraws,
  trivialAugmentValue,
  type TrivialAugmentOptions,
} from './baselines/trivialaugment.js';
export { cutout, noAugmentation, type CutoutOptions } from './baselines/cutout.js';
export { baselineAugmenter, BASELINES, type BaselineName } from './baselines/index.js';
export {
  applyAugmentationDraws,
  type Augmenter,
  type AugmentationDraws,
  type AugmenterOptions,
  type BaselineOpName,
  type DrawOptions,
} from './baselines/draws.js';
export {
  train,
  loadTrainedModel,
  loadTrainedRun,
  type TrainedRun,
  CHECKPOINT_KIND as TRAIN_CHECKPOINT_KIND,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  type Augmentation,
} from './run/train.js';
export { evaluate, type EvaluateOptions, type EvaluateResult } from './run/evaluate.js';
export { jsonLinesToCsv, metricsCsv } from './run/metrics-csv.js';
export {
  RunExistsError,
  RunSettingsError,
  RUN_FILES,
  readRunRecord,
  type RunKind,
  type RunRecord,
  type SettingDifference,
} from './run/run-files.js';
export {
  PolicyNetwork,
  MAGNITUDE_FORMS,
  FEATURE_HEAD_HIDDEN,
  type PolicyNetworkConfig,
  type MagnitudeForm,
} from './dna/policy-network.js';
export { widthEntropy, adaptWidthWeight, DEFAULT_WIDTH_ENTROPY, type WidthEntropy } from './dna/ranges.js';
export {
  settlePolicy,
  checkSettled,
  SETTLE_TOLERANCE,
  type SettleCheck,
  type SettleOptions,
  type OutputSummary,
} from './dna/settle.js';
export {
  gumbelSoftmaxST,
  relaxedBernoulliST,
  samplePolicy,
  drawMagnitudes,
  type PolicyOutput,
  type PolicySample,
  type SampleOptions,
} from './dna/sampling.js';
export {
  search,
  SEARCH_CHECKPOINT_KIND,
  type SearchOptions,
  type SearchProgress,
  type SearchResult,
  type SearchMonitor,
} from './run/search.js';
export { SEARCH_OBJECTIVES, type SearchObjective, type Regularisers } from './dna/objectives.js';
export { savePolicy, loadPolicy, POLICY_FILE_KIND } from './dna/policy-file.js';
export { shuffledOutputs, type LoadedPolicy, type PolicyProvenance } from './dna/frozen-policy.js';
export { TrainingDivergedError } from './run/run-state.js';
export {
  PAPER_PRESETS,
  type DatasetPreset,
  type SearchPreset,
  type TrainPreset,
  type PresetName,
} from './run/presets.js';
export {
  policyReport,
  PolicyStatistics,
  entropy,
  jensenShannon,
  POLICY_REPORT_KIND,
  type PolicySource,
  type PolicyReport,
  type PolicyReportOptions,
  type PolicyGroupStatistics,
  type OpStatistics,
  type RankedSubPolicy,
} from './dna/report.js';
export {
  writeAugmentedExamples,
  type AugmentedExample,
  type AugmentedExamplesOptions,
  type DrawnOp,
} from './dna/report-examples.js';
export {
  writePolicyReport,
  rangeText,
  type PolicyReportFiles,
  type WritePolicyReportOptions,
} from './dna/report-files.js';
export {
  demo,
  DEMO_OBJECTIVE,
  type DemoOptions,
  type DemoProgress,
  type DemoResult,
  type DemoRun,
} from './run/demo.js';
export {
  initDistributed,
  localGroup,
  processGroupFor,
  distributedBackends,
  ProcessGroup,
  shardIndices,
  shardLength,
  evaluationShard,
  rankSeed,
  launch,
  type DistributedOptions,
  type DistributedBackend,
  type Reduction,
  type BatchNormSync,
  type ShardOptions,
  type LaunchOptions,
  type LaunchResult,
  type RankExit,
} from './distributed/index.js';
