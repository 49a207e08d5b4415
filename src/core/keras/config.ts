// Turns a Keras model config (Keras 2.2 .. 3.x, Functional or Sequential) into
// a plain layer graph. The config is data: nothing in it is ever executed.
import { UserError } from '../errors';
import type { ModelWarning } from '../types';

export interface LayerNode {
  name: string;
  className: string;
  config: Record<string, unknown>;
  inbound: string[];
}

export interface ModelGraph {
  name: string;
  layers: LayerNode[]; // topological order
  inputs: string[];
  outputs: string[];
  /** (H, W, C) without the batch axis */
  inputShape: number[];
}

/** Layers the executor can run. */
export const SUPPORTED = new Set([
  'InputLayer', 'Conv2D', 'MaxPooling2D', 'AveragePooling2D', 'Dense', 'Flatten', 'Add', 'Concatenate',
  'Activation', 'ReLU', 'Dropout', 'BatchNormalization', 'Rescaling', 'Softmax', 'LeakyReLU',
  'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'ZeroPadding2D', 'SpatialDropout2D', 'Average',
  'Maximum', 'Subtract', 'Multiply',
]);
/** Aliases older Keras versions wrote. */
const ALIASES: Record<string, string> = {
  Convolution2D: 'Conv2D', MaxPool2D: 'MaxPooling2D', AvgPool2D: 'AveragePooling2D', AveragePooling2d: 'AveragePooling2D',
  GlobalAvgPool2D: 'GlobalAveragePooling2D', GlobalMaxPool2D: 'GlobalMaxPooling2D',
};
const MODEL_CLASSES = new Set(['Functional', 'Model', 'Sequential']);
/** Keys we know in a layer entry; anything else is reported, not interpreted. */
const LAYER_KEYS = new Set(['class_name', 'config', 'name', 'inbound_nodes', 'module', 'registered_name', 'build_config', 'compile_config', 'shared_object_id']);

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseConfigText(text: string, file: string): Json {
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new UserError(`model config is not valid JSON: ${(e as Error).message}`, file, 'bad-config');
  }
  if (!isObj(cfg)) throw new UserError('model config is not a JSON object', file, 'bad-config');
  // A bare Keras JSON file may wrap the model: {"model_config": {...}} or {"config": ...}
  if (isObj(cfg.model_config)) return cfg.model_config;
  return cfg;
}

/** Scan the whole config tree for things that would run code if Keras loaded it. */
export function scanWarnings(cfg: Json): ModelWarning[] {
  const warnings: ModelWarning[] = [];
  const seen = new Set<string>();
  const add = (w: ModelWarning) => {
    const key = `${w.code}|${w.layer}`;
    if (!seen.has(key)) {
      seen.add(key);
      warnings.push(w);
    }
  };
  const visit = (node: unknown, depth: number, owner: string | undefined) => {
    if (depth > 64) return;
    if (Array.isArray(node)) {
      for (const x of node) visit(x, depth + 1, owner);
      return;
    }
    if (!isObj(node)) return;
    const cls = typeof node.class_name === 'string' ? node.class_name : undefined;
    const inner = isObj(node.config) ? node.config : undefined;
    const name = (typeof inner?.name === 'string' && inner.name) || (typeof node.name === 'string' && node.name) || owner;
    if (cls) {
      if (cls === 'Lambda' || cls === 'TFOpLambda' || cls === 'SlicingOpLambda') {
        const hasCode = inner && (inner.function !== undefined || inner.function_type !== undefined);
        add({ code: 'lambda-layer', layer: name, message: `Lambda layer "${name}" carries ${hasCode ? 'serialized Python code' : 'a Python function'}; Keras would execute it on load. It is never executed here.` });
      } else if (depth > 0 && MODEL_CLASSES.has(cls) && Array.isArray(inner?.layers)) {
        add({ code: 'nested-model', layer: name, message: `nested model "${name}" inside the model; nested models are not run by this tool` });
      }
      const registered = node.registered_name;
      const mod = node.module;
      if (typeof registered === 'string' && registered !== cls && !registered.startsWith('keras') && registered.includes('>')) {
        add({ code: 'custom-object', layer: name, message: `custom object "${registered}" (class ${cls}): its Python code is not part of the file and is never run here` });
      } else if (typeof mod === 'string' && !/^(keras|tensorflow|tf_keras|builtins)(\.|$)/.test(mod)) {
        add({ code: 'custom-object', layer: name, message: `object "${cls}" from module "${mod}" is not a Keras built-in` });
      }
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === 'function' && typeof v !== 'object') continue; // the Lambda payload: never parsed
      visit(v, depth + 1, name);
    }
  };
  visit(cfg, 0, undefined);
  // Layers the graph reader will list but not run.
  const layers = modelLayers(cfg);
  for (const l of layers ?? []) {
    if (!isObj(l)) continue;
    const cls = canonicalClass(String(l.class_name ?? ''));
    const name = layerName(l);
    if (!SUPPORTED.has(cls) && !MODEL_CLASSES.has(cls) && !cls.includes('Lambda')) {
      add({ code: 'unknown-layer', layer: name, message: `layer "${name}" of class ${cls} is not supported by this tool` });
    }
    const extra = Object.keys(l).filter((k) => !LAYER_KEYS.has(k));
    if (extra.length) add({ code: 'unexpected-key', layer: name, message: `layer "${name}" has unexpected keys: ${extra.join(', ')}` });
  }
  return warnings;
}

function canonicalClass(cls: string): string {
  return ALIASES[cls] ?? cls;
}
function layerName(l: Json): string {
  const c = isObj(l.config) ? l.config : {};
  return String(c.name ?? l.name ?? '?');
}
function modelLayers(cfg: Json): unknown[] | undefined {
  const c = cfg.config;
  if (Array.isArray(c)) return c; // Keras 2.2 Sequential: config is the layer list
  if (isObj(c) && Array.isArray(c.layers)) return c.layers;
  return undefined;
}

/** Names of the layers feeding one inbound node, in Keras 2 or Keras 3 form. */
function inboundNames(nodes: unknown, owner: string, file: string): string[] {
  if (!Array.isArray(nodes) || nodes.length === 0) return [];
  if (nodes.length > 1) throw new UserError(`layer "${owner}" is called more than once (shared layers are not supported)`, file, 'unsupported');
  const node = nodes[0];
  const names: string[] = [];
  if (Array.isArray(node)) {
    // Keras 2: [["name", nodeIndex, tensorIndex, {kwargs}], ...]
    for (const ref of node) {
      if (Array.isArray(ref) && typeof ref[0] === 'string') names.push(ref[0]);
      else throw new UserError(`layer "${owner}" has an inbound node of unknown form`, file, 'bad-config');
    }
    return names;
  }
  if (isObj(node)) {
    // Keras 3: {"args": [...], "kwargs": {...}} with __keras_tensor__ entries anywhere in args
    const collect = (v: unknown, depth: number) => {
      if (depth > 16) return;
      if (Array.isArray(v)) v.forEach((x) => collect(x, depth + 1));
      else if (isObj(v)) {
        if (v.class_name === '__keras_tensor__' && isObj(v.config) && Array.isArray(v.config.keras_history)) {
          names.push(String(v.config.keras_history[0]));
        } else Object.values(v).forEach((x) => collect(x, depth + 1));
      }
    };
    collect(node.args, 0);
    return names;
  }
  throw new UserError(`layer "${owner}" has an inbound node of unknown form`, file, 'bad-config');
}

function refNames(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  if (typeof v[0] === 'string') return [v[0]]; // a single ["name", 0, 0]
  return v.filter(Array.isArray).map((r) => String((r as unknown[])[0]));
}

function inputShapeOf(cfg: Json): number[] | undefined {
  const shape = (cfg.batch_input_shape ?? cfg.batch_shape) as unknown;
  if (Array.isArray(shape)) return shape.slice(1).map((d) => (typeof d === 'number' ? d : -1));
  if (Array.isArray(cfg.input_shape)) return (cfg.input_shape as unknown[]).map((d) => (typeof d === 'number' ? d : -1));
  return undefined;
}

export function buildGraph(cfg: Json, file: string): ModelGraph {
  const cls = String(cfg.class_name ?? '');
  const layersRaw = modelLayers(cfg);
  if (!MODEL_CLASSES.has(cls) || !layersRaw) {
    throw new UserError(`model config has class "${cls || '?'}", expected a Functional or Sequential model`, file, 'bad-config');
  }
  const inner = isObj(cfg.config) ? cfg.config : {};
  const modelName = String(inner.name ?? 'model');
  const layers: LayerNode[] = [];
  for (const raw of layersRaw) {
    if (!isObj(raw)) throw new UserError('a layer entry in the config is not an object', file, 'bad-config');
    const className = canonicalClass(String(raw.class_name ?? ''));
    const config = isObj(raw.config) ? raw.config : {};
    const name = layerName(raw);
    layers.push({ name, className, config, inbound: [] });
  }
  const byName = new Map<string, LayerNode>();
  for (const l of layers) {
    if (byName.has(l.name)) throw new UserError(`two layers are named "${l.name}"`, file, 'bad-config');
    byName.set(l.name, l);
  }

  let inputs: string[];
  let outputs: string[];
  if (cls === 'Sequential') {
    // A chain; Keras 2 puts the input shape on the first layer instead of an InputLayer.
    if (layers.length === 0) throw new UserError('the Sequential model has no layers', file, 'bad-config');
    if (layers[0].className !== 'InputLayer') {
      const shape = inputShapeOf(layers[0].config) ?? inputShapeOf(inner);
      if (!shape) throw new UserError('the Sequential model does not declare its input shape', file, 'bad-config');
      const input: LayerNode = { name: `${modelName}_input`, className: 'InputLayer', config: { batch_input_shape: [null, ...shape] }, inbound: [] };
      layers.unshift(input);
      byName.set(input.name, input);
    }
    for (let i = 1; i < layers.length; i++) layers[i].inbound = [layers[i - 1].name];
    inputs = [layers[0].name];
    outputs = [layers[layers.length - 1].name];
  } else {
    layersRaw.forEach((raw, i) => {
      layers[i].inbound = inboundNames((raw as Json).inbound_nodes, layers[i].name, file);
    });
    inputs = refNames(inner.input_layers);
    outputs = refNames(inner.output_layers);
    if (inputs.length === 0) inputs = layers.filter((l) => l.className === 'InputLayer').map((l) => l.name);
    if (outputs.length === 0) throw new UserError('the model config names no output layer', file, 'bad-config');
  }
  for (const l of layers) {
    for (const src of l.inbound) {
      if (!byName.has(src)) throw new UserError(`layer "${l.name}" takes input from unknown layer "${src}"`, file, 'bad-config');
    }
  }
  for (const n of [...inputs, ...outputs]) {
    if (!byName.has(n)) throw new UserError(`the config names unknown layer "${n}" as model input/output`, file, 'bad-config');
  }
  if (inputs.length !== 1) throw new UserError(`the model has ${inputs.length} inputs; only single-input models are supported`, file, 'unsupported');
  if (outputs.length !== 1) throw new UserError(`the model has ${outputs.length} outputs; only single-output models are supported`, file, 'unsupported');
  const inputShape = inputShapeOf(byName.get(inputs[0])!.config);
  if (!inputShape || inputShape.length !== 3 || inputShape.some((d) => !(d > 0))) {
    throw new UserError(inputShape ? `the model input shape ${JSON.stringify(inputShape)} is not a fixed (height, width, channels) image shape` : `the input layer "${inputs[0]}" declares no input shape`, file, inputShape ? 'unsupported' : 'bad-config');
  }
  // Running the model starts with one zero image of this shape: a corrupt or hostile
  // config must not make that image gigabytes large (2^25 values is 4096x2730x3).
  if (inputShape.some((d) => !Number.isInteger(d)) || inputShape.reduce((a, b) => a * b, 1) > 2 ** 25) {
    throw new UserError(`the model input shape ${JSON.stringify(inputShape)} is not a plausible image size`, file, 'bad-config');
  }
  return { name: modelName, layers: topoSort(layers, file), inputs, outputs, inputShape };
}

function topoSort(layers: LayerNode[], file: string): LayerNode[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const state = new Map<string, 1 | 2>();
  const out: LayerNode[] = [];
  const visit = (l: LayerNode, depth: number) => {
    const s = state.get(l.name);
    if (s === 2) return;
    if (s === 1 || depth > layers.length) throw new UserError(`the model graph has a cycle at layer "${l.name}"`, file, 'bad-config');
    state.set(l.name, 1);
    for (const src of l.inbound) visit(byName.get(src)!, depth + 1);
    state.set(l.name, 2);
    out.push(l);
  };
  for (const l of layers) visit(l, 0);
  return out;
}
