// Repair settings checked before any work, with messages that name the option
// (the CLI calls this too, so it stays free of tfjs).
import { UserError } from '../errors';
import type { RepairOptions } from '../types';

/** Checks settings before any work, with messages that name the option. */
export function checkRepairOptions(o: RepairOptions) {
  const bad = (m: string) => { throw new UserError(m, undefined, 'bad-option'); };
  if (!Number.isInteger(o.epochs) || o.epochs < 1 || o.epochs > 1000) bad(`--fine-tune ${o.epochs}: give a whole number of epochs from 1 to 1000`);
  if (!(o.learningRate > 0 && o.learningRate < 10)) bad(`--lr ${o.learningRate}: the learning rate must be above 0 and below 10`);
  if (o.optimizer !== 'adam' && o.optimizer !== 'sgd') bad(`--optimizer ${o.optimizer}: use adam or sgd`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > 65536) bad(`--train-batch ${o.batchSize}: give a whole number of images from 1 to 65536`);
  if (o.layers !== 'all' && o.layers !== 'above') bad(`--fine-tune-layers ${o.layers}: use all or above`);
  if (o.trigger && o.triggerFromPoisoned) bad('give either --unlearn-trigger or --unlearn-from-poisoned, not both');
  const unlearn = Boolean(o.trigger || o.triggerFromPoisoned);
  if (unlearn && !(o.share > 0 && o.share < 1)) bad(`--unlearn-share ${o.share}: the share of stamped images must be above 0 and below 1`);
  if (!Number.isInteger(o.seed)) bad(`--seed ${o.seed}: give a whole number`);
}

