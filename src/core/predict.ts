import { openDataset } from './data/dataset';
import { topRow } from './model/outputs';
import { loadRunnable } from './runnable';
import type { Backend, Prediction, PredictResult } from './types';

export interface PredictOptions {
  arch?: string;
  backend?: Backend | 'auto';
  batchSize?: number;
  top?: number;
}

export async function predictFiles(modelFile: string, inputs: string[], opts: PredictOptions = {}): Promise<PredictResult> {
  const { net, backend } = await loadRunnable(modelFile, opts.arch, opts.backend);
  const batch = opts.batchSize ?? 256;
  const topK = Math.min(opts.top ?? 3, net.classes);
  const predictions: Prediction[] = [];
  const orders = new Set<string>();
  let correct = 0, labelled = 0;
  try {
    for (const file of inputs) {
      const src = await openDataset(file, net.graph.inputShape, net.classes);
      orders.add(src.info.axisOrder);
      try {
        for (let s = 0; s < src.info.count; s += batch) {
          const e = Math.min(src.info.count, s + batch);
          const probs = (await net.compute({ [net.graph.inputs[0]]: src.read(s, e) }, e - s, [net.outputName])).get(net.outputName)!;
          for (let i = 0; i < e - s; i++) {
            const top = topRow(probs, net.classes, i, topK);
            const p: Prediction = { index: s + i, label: top[0].label, prob: top[0].prob, top };
            if (inputs.length > 1) p.source = file;
            if (src.labels) {
              p.trueLabel = src.labels[s + i];
              labelled++;
              if (p.trueLabel === p.label) correct++;
            }
            predictions.push(p);
          }
        }
      } finally {
        src.close();
      }
    }
  } finally {
    net.dispose();
  }
  const result: PredictResult = { backend, axisOrder: [...orders].join(', '), predictions };
  if (labelled) result.accuracy = correct / labelled;
  return result;
}
