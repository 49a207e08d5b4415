// Plain data shapes produced by the engine. No behaviour here: every layer
// (CLI, worker, extension host, webview) reads these, so they stay JSON-safe.

export type Backend = 'tensorflow' | 'wasm' | 'cpu';
export type ModelFormat = 'keras2-h5' | 'keras3-h5' | 'keras3-zip' | 'weights-only+arch';

export interface WeightStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  /** share of exactly-zero entries, 0..1 */
  zeros: number;
}

export interface LayerInfo {
  name: string;
  className: string;
  /** Keras-style shape with null for the batch axis */
  outputShape: (number | null)[];
  params: number;
  inbound: string[];
  activation?: string;
  /** Conv2D/Dense output channels whose kernel slice and bias are all zero */
  zeroChannels?: number[];
  /** per weight (kernel, bias, gamma, ...) */
  weightStats?: Record<string, WeightStats>;
}

export interface ModelWarning {
  code: 'lambda-layer' | 'custom-object' | 'unknown-layer' | 'nested-model' | 'unexpected-key' | string;
  layer?: string;
  message: string;
}

export interface InspectResult {
  file: string;
  format: ModelFormat;
  kerasVersion?: string;
  backendSavedWith?: string;
  archFile?: string;
  inputShape: number[];
  outputClasses: number;
  params: number;
  layers: LayerInfo[];
  warnings: ModelWarning[];
}

export interface Prediction {
  index: number;
  /** the file it came from when several were given */
  source?: string;
  label: number;
  prob: number;
  top?: { label: number; prob: number }[];
  trueLabel?: number;
}

export interface PredictResult {
  backend: Backend;
  axisOrder?: string;
  predictions: Prediction[];
  accuracy?: number;
}

export type Threshold = number;
export type RankOrder = 'increasing' | 'decreasing';
export type RankBy = 'pool' | 'conv';

export interface AuditOptions {
  model: string;
  arch?: string;
  cleanValid: string;
  poisonedValid?: string;
  cleanTest?: string;
  poisonedTest?: string;
  layer?: string;
  thresholds: Threshold[];
  order: RankOrder;
  rankBy: RankBy;
  target?: number;
  fullSweep: boolean;
  out: string;
  batchSize: number;
  backend?: Backend;
  /** parallel inference processes; 0 = one per core */
  workers?: number;
  /** how many images of each set get spatial activation maps in the report */
  sampleMaps?: number;
}

export interface AuditMetrics {
  validAccuracy: number;
  validAttackRate?: number;
  testAccuracy?: number;
  testAttackRate?: number;
}

export interface ChannelRank {
  channel: number;
  meanActivation: number;
  /** the same mean over the poisoned validation set, when given */
  meanActivationPoisoned?: number;
}

export interface SweepStep {
  pruned: number;
  channel: number;
  validAccuracy: number;
  validAttackRate?: number;
}

export interface ThresholdResult {
  drop: number;
  /** false when the sweep ended before accuracy fell this far */
  reached: boolean;
  pruned: number;
  prunedChannels: number[];
  validAccuracy: number;
  repairedModel?: string;
  prunedModel: { testAccuracy?: number; testAttackRate?: number };
  goodNet: { testAccuracy?: number; testAttackRate?: number; cleanFlagged?: number; poisonedFlagged?: number };
}

/** Spatial activation maps of the pruned layer for one image: values[c][y*w+x] */
export interface ChannelMaps {
  source: 'clean' | 'poisoned' | 'image';
  file: string;
  index: number;
  label?: number;
  predicted: number;
  height: number;
  width: number;
  channels: number;
  /** channel-major, length channels*height*width */
  values: number[];
  max: number;
}

export interface DataSetInfo {
  file: string;
  count: number;
  shape: number[];
  dtype: string;
  axisOrder: 'channels_first' | 'channels_last';
}

export interface AuditReport {
  version: 1;
  createdAt: string;
  model: string;
  arch?: string;
  backend: Backend;
  workers: number;
  layer: string;
  rankedBy: string;
  order: RankOrder;
  classes: number;
  target?: number;
  options: Omit<AuditOptions, 'out'>;
  data: { cleanValid: DataSetInfo; poisonedValid?: DataSetInfo; cleanTest?: DataSetInfo; poisonedTest?: DataSetInfo };
  baseline: AuditMetrics;
  ranking: ChannelRank[];
  steps: SweepStep[];
  thresholds: ThresholdResult[];
  /** G_X: B and B'_X agree -> that label, else `flaggedClass` */
  repairedNetwork: { rule: string; badNet: string; flaggedClass: number; prunedNets: Record<string, string> };
  samples: ChannelMaps[];
  timing: { totalSeconds: number; phases: Record<string, number>; imagesPerSecond?: number };
}

export interface Progress {
  phase: 'reading' | 'lower-layers' | 'ranking' | 'sweep' | 'evaluating' | 'writing' | 'done';
  message: string;
  step?: number;
  total?: number;
  validAccuracy?: number;
  validAttackRate?: number;
  imagesPerSecond?: number;
}
