// Ranks the workspace's .h5 files for each data slot of an audit, so the likely
// file is at the top of the quick pick. Pure (no vscode): unit-tested.
import path from 'node:path';
import { isInAuditFolder, modelKey } from './paths';

export type DataSlot = 'cleanValid' | 'poisonedValid' | 'cleanTest' | 'poisonedTest';

export const DATA_SLOTS: readonly DataSlot[] = ['cleanValid', 'poisonedValid', 'cleanTest', 'poisonedTest'];

export const SLOT_LABELS: Record<DataSlot, string> = {
  cleanValid: 'clean validation data',
  poisonedValid: 'poisoned validation data',
  cleanTest: 'clean test data',
  poisonedTest: 'poisoned test data',
};

const DATA_EXT = /\.(h5|hdf5)$/i;

/** .h5 files that can be data for an audit of `model`: not the model itself, not audit outputs. */
export function candidateDataFiles(files: readonly string[], model: string): string[] {
  const self = modelKey(model);
  return files.filter((f) => DATA_EXT.test(f) && modelKey(f) !== self && !isInAuditFolder(f));
}

interface NameTraits {
  poisoned: boolean;
  clean: boolean;
  valid: boolean;
  test: boolean;
}

// The lab names its files valid.h5, bd_valid.h5, test.h5, bd_test.h5; students use
// clean_/poisoned_ and the trigger's name (sunglasses, eyebrows, lipstick).
function traits(file: string): NameTraits {
  const name = path.basename(file).toLowerCase().replace(DATA_EXT, '');
  return {
    poisoned: /(^|[^a-z])bd([^a-z]|$)|poison|backdoor|trigger|sunglass|eyebrow|lipstick|anoint/.test(name),
    clean: /clean|(^|[^a-z])cl([^a-z]|$)/.test(name),
    valid: /valid|(^|[^a-z])val([^a-z]|$)|(^|[^a-z])dev([^a-z]|$)/.test(name),
    test: /test/.test(name),
  };
}

/** Higher is more likely to be the file for `slot`. 0 means "nothing in the name says so". */
export function scoreDataFile(file: string, slot: DataSlot): number {
  const t = traits(file);
  const wantPoisoned = slot === 'poisonedValid' || slot === 'poisonedTest';
  const wantValid = slot === 'cleanValid' || slot === 'poisonedValid';
  let score = 0;
  if (t.poisoned) score += wantPoisoned ? 4 : -4;
  else if (wantPoisoned) score -= 2;
  if (t.clean) score += wantPoisoned ? -3 : 2;
  if (t.valid) score += wantValid ? 4 : -2;
  if (t.test) score += wantValid ? -2 : 4;
  return score;
}

/** Any hint at all in the name (valid/test/bd/poison/clean...), used to split "likely" from the rest. */
export function looksLikeData(file: string): boolean {
  const t = traits(file);
  return t.poisoned || t.clean || t.valid || t.test;
}

/** The name says exactly this slot (e.g. bd_valid.h5 for poisoned validation): safe to preselect. */
export function matchesSlot(file: string, slot: DataSlot): boolean {
  const t = traits(file);
  const wantPoisoned = slot === 'poisonedValid' || slot === 'poisonedTest';
  const wantValid = slot === 'cleanValid' || slot === 'poisonedValid';
  return t.poisoned === wantPoisoned && (wantValid ? t.valid && !t.test : t.test && !t.valid);
}

/**
 * The candidates for `slot`, best first: files whose names hint at data before the rest,
 * then by score; files in the model's own folder win ties (the lab keeps model and data
 * together), then the path decides, for a stable order.
 */
export function rankDataFiles(files: readonly string[], model: string, slot: DataSlot): string[] {
  const modelDir = path.dirname(path.resolve(model));
  const key = (f: string) =>
    (looksLikeData(f) ? 1000 : 0) + scoreDataFile(f, slot) * 10 + (path.dirname(path.resolve(f)) === modelDir ? 1 : 0);
  return candidateDataFiles(files, model)
    .map((f) => ({ f, k: key(f) }))
    .sort((a, b) => b.k - a.k || a.f.localeCompare(b.f))
    .map((x) => x.f);
}
