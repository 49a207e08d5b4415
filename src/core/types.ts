// Plain data shapes produced by the engine. No behaviour here: every layer
// (CLI, worker, extension host, webview) reads these, so they stay JSON-safe.

export type Backend = 'onnxruntime' | 'tensorflow' | 'wasm' | 'cpu';
/** ONNX Runtime's convolution kernels: channels in blocks (NCHWc) or plain NCHW */
export type KernelLayout = 'blocked' | 'plain';
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
  /** where the architecture of a weights-only file came from (set by the editor) */
  archNote?: string;
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
  /**
   * A reconstructed trigger (a scan's trigger_<label>.h5): the poisoned validation
   * (and test) sets are made by stamping it onto the clean images not of the target.
   */
  trigger?: string;
  /** the label the trigger serves; default: the <label> in the trigger's file name */
  triggerTarget?: number;
  /** train each B'_X after pruning (fine-tuning, or unlearning a trigger); absent: pruning only, as the lab */
  repair?: RepairOptions;
}

export type RepairMethod = 'fine-tune' | 'unlearn';

export interface RepairOptions {
  /** epochs per threshold reached */
  epochs: number;
  learningRate: number;
  optimizer: 'adam' | 'sgd';
  /** images per training batch */
  batchSize: number;
  /** 'all': every Conv2D/Dense layer; 'above': only the layers after the pruned one, from cached activations */
  layers: 'all' | 'above';
  /** labelled clean training data (lab layout); default the clean validation set */
  data?: string;
  /** unlearning: a trigger file (mask (H, W), pattern (H, W, C)) ... */
  trigger?: string;
  /** ... or derived from the poisoned validation set */
  triggerFromPoisoned?: boolean;
  /** unlearning: share of each batch stamped with the trigger, keeping the true label */
  share: number;
  /** seeds the shuffling and the choice of stamped images */
  seed: number;
}

export interface TrainEpoch {
  epoch: number;
  /** mean training loss over the epoch's batches (null for epoch 0, before training) */
  loss: number | null;
  /** clean validation accuracy after the epoch */
  validAccuracy: number;
  validAttackRate?: number;
  /** time of the epoch's training steps (without the validation pass) */
  seconds: number;
}

/** A repaired B'_X after training, and G built from B and it. */
export interface FineTuned {
  method: RepairMethod;
  layers: 'all' | 'above';
  /** epoch 0 is B'_X before training */
  epochs: TrainEpoch[];
  prunedModel: { testAccuracy?: number; testAttackRate?: number };
  goodNet: { testAccuracy?: number; testAttackRate?: number; cleanFlagged?: number; poisonedFlagged?: number };
  repairedModel?: string;
}

/** Where the unlearning trigger came from. */
export interface TriggerInfo {
  source: 'file' | 'paired-poisoned';
  file: string;
  /** pixels with mask > 0 */
  pixels: number;
  note: string;
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
  fineTuned?: FineTuned;
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
  /** the unlearning trigger, when unlearning ran */
  trigger?: TriggerInfo;
  timing: { totalSeconds: number; phases: Record<string, number>; imagesPerSecond?: number };
  /** set when the poisoned sets were made with a reconstructed trigger: attack rates are estimates */
  attackEstimate?: 'reconstructed-trigger';
  /** the trigger file used, with `attackEstimate` */
  reconstructedTrigger?: string;
}

export interface Progress {
  phase: 'reading' | 'lower-layers' | 'ranking' | 'sweep' | 'evaluating' | 'training' | 'writing' | 'done';
  message: string;
  step?: number;
  total?: number;
  validAccuracy?: number;
  validAttackRate?: number;
  imagesPerSecond?: number;
  /** training: the epoch under way and the loss of the last batch */
  epoch?: number;
  loss?: number;
}

// ---------- scan: find a backdoor with clean data only ----------

export interface ScanOptions {
  model: string;
  arch?: string;
  /** clean images (lab layout .h5); labels are optional */
  clean: string;
  /** Conv2D layer whose channels are stimulated; default as the audit's */
  layer?: string;
  /** clean images used (default 200; works down to 5) */
  images: number;
  /** top candidate labels from stimulation whose trigger is reconstructed (default 3) */
  labels: number;
  /** other labels, seeded sample, optimised to calibrate the anomaly index (default 20; all when classes <= 50) */
  calibration: number;
  seed: number;
  out: string;
  batchSize: number;
  backend?: Backend;
  workers?: number;
}

/** What stimulating one channel did: the label it pushes to at its strongest level. */
export interface ScanChannel {
  channel: number;
  /** the label the most images flipped to */
  label: number;
  /** share of the images whose prediction became `label` at `level` (0..1) */
  flipRate: number;
  /** the stimulation level (activation value) where `flipRate` was reached */
  level: number;
  /** rise of `label`'s logit over its clean value, mean over images, at `level` */
  logitRise: number;
  /** rise of `label`'s logit minus the largest other logit's rise (ABS's elevation difference) */
  elevation: number;
  compromised: boolean;
}

/**
 * A compromised site: one channel stimulated at one position of the cache point's map only (the layers above
 * still see the clean values elsewhere). A trigger confined to a small patch excites its channels there and
 * hardly moves their map means, so whole-map stimulation dilutes it by the map's size.
 */
export interface ScanSite {
  channel: number;
  /** (row, column) in the cache point's map (the pooled map when the conv is pooled) */
  position: [number, number];
  label: number;
  flipRate: number;
  level: number;
  logitRise: number;
  elevation: number;
}

/** One optimised label (Neural Cleanse style): the smallest trigger found that turns clean images into it. */
export interface ScanLabel {
  label: number;
  /** a candidate from stimulation, or a calibration label */
  role: 'candidate' | 'calibration';
  maskL1: number;
  /** share of held-out clean images (not of this label) that the reconstructed trigger turns into this label */
  triggerAttackRate: number;
  /** how many held-out clean images that share is of */
  heldOut: number;
  /** |L1 - median| / (1.4826 MAD), positive for masks smaller than the median */
  anomalyIndex: number;
  /** file name in the scan folder (trigger_<label>.h5) */
  trigger?: string;
}

/**
 * A stimulated channel's own trigger (ABS): the small input pattern that
 * excites the channel most, and what it does to held-out clean images.
 */
export interface ScanChannelTrigger {
  channel: number;
  /** for a site's trigger: the site's position; the trigger excites the channel there (absent: the whole map) */
  position?: [number, number];
  /** the label stimulating the channel pushed to */
  stimulatedLabel: number;
  maskL1: number;
  /** the channel's mean over its map (over the site's positions for a site): stamped, and clean */
  activation: number;
  cleanActivation: number;
  /** the label the stamped held-out images turn into most */
  label: number;
  /** held-out images not of `label` */
  heldOut: number;
  /** share of those that the trigger turns into `label` */
  attackRate: number;
}

export interface ScanTarget {
  label: number;
  anomalyIndex: number;
  maskL1: number;
  triggerAttackRate: number;
  /** compromised channels that push to this label, and channels whose own trigger serves it */
  channels: number[];
  trigger: string;
  /**
   * which test flagged it: its mask is abnormally small (Neural Cleanse), a channel's own trigger serves it (ABS),
   * the trigger of a compromised site (a channel at one position) serves it
   */
  foundBy: ('mask-size' | 'channel-trigger' | 'site-trigger')[];
}

export interface ScanReport {
  version: 1;
  kind: 'scan';
  createdAt: string;
  model: string;
  arch?: string;
  backend: Backend;
  /** ONNX Runtime's convolution kernels, the same in every process of the scan (to reproduce its numbers) */
  kernels?: KernelLayout;
  layer: string;
  /** clean images used */
  images: number;
  classes: number;
  verdict: 'backdoor' | 'clean';
  /** false when the clean images were too few for any test to confirm a trigger (absent in older scans: read as true) */
  conclusive?: boolean;
  /** the numbers that decided the verdict, in words */
  evidence: string[];
  /** most suspicious first; empty for a clean verdict */
  targets: ScanTarget[];
  /** every channel of the layer */
  channels: ScanChannel[];
  /** stimulation levels as multiples of the largest clean activation of the layer */
  levels: number[];
  /** the channels whose own trigger was reversed (most elevating first) */
  channelTriggers: ScanChannelTrigger[];
  /** compromised sites (channel × position), the most elevating first; absent in scans before sites */
  sites?: ScanSite[];
  /** the triggers of the most elevating compromised sites */
  siteTriggers?: ScanChannelTrigger[];
  /** their masks' bound, as a share of the input's area */
  maxTriggerArea: number;
  labelsOptimised: number[];
  labels: ScanLabel[];
  data: DataSetInfo;
  options: Omit<ScanOptions, 'out'>;
  /** for the view: input size and one clean image (H*W*C, model units) with the top target's trigger */
  preview?: { height: number; width: number; channels: number; min: number; max: number; image: number[]; mask?: number[]; pattern?: number[]; stamped?: number[]; label?: number };
  timing: { totalSeconds: number; phases: Record<string, number> };
}

export interface ScanProgress {
  phase: 'reading' | 'lower-layers' | 'stimulation' | 'channel-trigger' | 'trigger' | 'writing' | 'done';
  message: string;
  step?: number;
  total?: number;
}

// ---------- architectures for weights-only files ----------

export interface ArchFit {
  arch: string;
  fits: boolean;
  /** why it does not fit, one line per layer */
  problems: string[];
}

export interface ArchFitResult {
  model: string;
  weightsOnly: boolean;
  fits: ArchFit[];
}
