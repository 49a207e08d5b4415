// The four quick picks that choose an audit's data: clean validation (required),
// poisoned validation, clean test and poisoned test (optional). The last choice for a
// model is remembered in workspaceState; the settings give the defaults.
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { DATA_SLOTS, SLOT_LABELS, looksLikeData, matchesSlot, rankDataFiles, type DataSlot } from './dataFiles';
import type { DataChoice, HostSettings, RepairChoice } from './options';
import { modelKey } from './paths';
import { defaultDataFile } from './settings';

interface Item extends vscode.QuickPickItem {
  file?: string;
  action?: 'none' | 'browse';
}

/** Remembered per model: a path, or '' for an optional slot answered "None". */
type Remembered = Partial<Record<DataSlot, string>>;

const memoryKey = (model: string) => `backdoorAudit.data:${modelKey(model)}`;

async function workspaceH5Files(): Promise<string[]> {
  const uris = await vscode.workspace.findFiles('**/*.{h5,hdf5}', '**/{node_modules,.git}/**', 5000);
  return uris.filter((u) => u.scheme === 'file').map((u) => u.fsPath);
}

function fileItem(file: string, detail?: string): Item {
  // The relative path tells files of the same name apart; for a file at the top of the
  // workspace it would only repeat the label.
  const label = path.basename(file);
  const relative = vscode.workspace.asRelativePath(file);
  return { label, description: relative === label ? undefined : relative, detail, file };
}

function pickOne(title: string, step: number, steps: number, items: Item[], active: Item | undefined, placeholder: string): Promise<Item | undefined> {
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = title;
  qp.step = step;
  qp.totalSteps = steps;
  qp.placeholder = placeholder;
  qp.items = items;
  qp.matchOnDescription = true;
  qp.ignoreFocusOut = true; // picking a file in another window must not lose three answers
  if (active) qp.activeItems = [active];
  return new Promise((resolve) => {
    let done = false;
    qp.onDidAccept(() => {
      done = true;
      resolve(qp.selectedItems[0] ?? qp.activeItems[0]);
      qp.hide();
    });
    qp.onDidHide(() => {
      if (!done) resolve(undefined);
      qp.dispose();
    });
    qp.show();
  });
}

async function browse(model: string, slot: DataSlot): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({
    title: `Choose the ${SLOT_LABELS[slot]}`,
    defaultUri: vscode.Uri.file(path.dirname(model)),
    canSelectMany: false,
    filters: { 'HDF5 data': ['h5', 'hdf5'] },
    openLabel: 'Use as ' + SLOT_LABELS[slot],
  });
  return picked?.[0]?.fsPath;
}

/**
 * Asks for the data files of `slots` (by default the audit's four). Resolves undefined when
 * the user backs out at any step. Optional steps offer "None"; every step offers "Browse…"
 * for files outside the workspace. A scan asks for the clean data only, "Audit with this
 * trigger" for the clean validation and test data, under their own `title`.
 */
export async function pickAuditData(
  model: string, settings: HostSettings, memento: vscode.Memento,
  slots: readonly DataSlot[] = DATA_SLOTS, title = `Audit ${path.basename(model)}`,
): Promise<DataChoice | undefined> {
  const files = await workspaceH5Files();
  const remembered = memento.get<Remembered>(memoryKey(model)) ?? {};
  const chosen: Remembered = {};

  for (const [i, slot] of slots.entries()) {
    const optional = slot !== 'cleanValid';
    const items: Item[] = [];
    let active: Item | undefined;
    const none: Item = { label: '$(circle-slash) None', description: `audit without ${SLOT_LABELS[slot]}`, action: 'none' };
    if (optional) items.push(none);

    // The last choice for this model first, else the setting's default.
    const last = remembered[slot];
    const fromSettings = defaultDataFile(settings, slot, model);
    const preferred = last && existsSync(last) ? { file: last, why: 'last used for this model' }
      : fromSettings && existsSync(fromSettings) ? { file: fromSettings, why: 'from settings' } : undefined;
    if (preferred) {
      active = { ...fileItem(preferred.file), detail: preferred.why };
      items.push(active);
    } else if (optional && last === '') {
      active = none;
    }

    const ranked = rankDataFiles(files, model, slot).filter((f) => f !== preferred?.file);
    const likely = ranked.filter(looksLikeData);
    const others = ranked.filter((f) => !looksLikeData(f));
    if (likely.length) {
      items.push({ label: 'likely', kind: vscode.QuickPickItemKind.Separator }, ...likely.map((f) => fileItem(f)));
    }
    if (others.length) {
      items.push({ label: 'other .h5 files', kind: vscode.QuickPickItemKind.Separator }, ...others.map((f) => fileItem(f)));
    }
    items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(folder-opened) Browse…', action: 'browse' });
    // Without a remembered answer, a step starts on the best-ranked file when its name
    // says it is exactly that data; otherwise a required step starts on the top file and
    // an optional one on "None".
    if (!active && ranked.length) {
      const top = items.find((it) => it.file === ranked[0]);
      if (!optional || matchesSlot(ranked[0], slot)) active = top;
    }

    const pick = await pickOne(`${title}: ${SLOT_LABELS[slot]}`, i + 1, slots.length, items, active,
      optional ? `Choose the ${SLOT_LABELS[slot]} (optional)` : `Choose the ${SLOT_LABELS[slot]} (required)`);
    if (!pick) return undefined;
    if (pick.action === 'none') {
      chosen[slot] = '';
      continue;
    }
    const file = pick.action === 'browse' ? await browse(model, slot) : pick.file;
    if (!file) return undefined;
    chosen[slot] = file;
  }

  await memento.update(memoryKey(model), { ...remembered, ...chosen });
  const choice: DataChoice = { cleanValid: chosen.cleanValid! };
  for (const slot of ['poisonedValid', 'cleanTest', 'poisonedTest'] as const) {
    if (chosen[slot]) choice[slot] = chosen[slot];
  }
  return choice;
}

interface RepairItem extends vscode.QuickPickItem { choice?: RepairChoice; next?: 'trigger' }

/**
 * After the data: how to repair each B′. Pruning only (the lab's way) is the default;
 * fine-tuning and unlearning train B′ with the repair settings. Undefined when the user backs out.
 */
export async function pickRepair(model: string, settings: HostSettings, data: DataChoice): Promise<RepairChoice | undefined> {
  const r = settings.repair;
  const how = `${r.epochs} epoch${r.epochs === 1 ? '' : 's'}, ${r.optimizer} lr ${r.learningRate}, ${r.layers === 'all' ? 'every layer' : 'layers above the pruned one'}`;
  const items: RepairItem[] = [
    { label: 'Pruning only (as the lab)', description: 'no training', choice: { method: 'none' } },
    { label: 'Fine-tune after pruning', description: how, detail: 'Liu et al. 2018: train each B′ on the clean validation data, pruned channels kept at zero', choice: { method: 'fine-tune' } },
    { label: 'Unlearn with a trigger file…', description: how, detail: `Wang et al. 2019: ${Math.round(r.share * 100)}% of each batch stamped with the trigger, true labels kept`, next: 'trigger' },
  ];
  if (data.poisonedValid) {
    items.push({ label: 'Unlearn a trigger derived from the poisoned validation set', description: 'needs it to pair with the clean set image by image', choice: { method: 'unlearn', fromPoisoned: true } });
  }
  const pick = await vscode.window.showQuickPick(items, { title: `Audit ${path.basename(model)}: repair`, placeHolder: 'Repair each pruned network B′?', ignoreFocusOut: true });
  if (!pick) return undefined;
  if (pick.choice) return pick.choice;
  const files = (await workspaceH5Files()).sort((a, b) => Number(/trigger/i.test(path.basename(b))) - Number(/trigger/i.test(path.basename(a))));
  const browseItem: Item = { label: '$(folder-opened) Browse…', action: 'browse' };
  const trig = await vscode.window.showQuickPick<Item>([...files.map((f) => fileItem(f)), browseItem], {
    title: `Audit ${path.basename(model)}: trigger to unlearn`, placeHolder: 'A trigger file: mask (H, W) and pattern (H, W, C), e.g. a scan\'s trigger_<label>.h5', ignoreFocusOut: true, matchOnDescription: true,
  });
  if (!trig) return undefined;
  const file = trig.action === 'browse'
    ? (await vscode.window.showOpenDialog({ title: 'Choose the trigger to unlearn', defaultUri: vscode.Uri.file(path.dirname(model)), canSelectMany: false, filters: { 'HDF5 trigger': ['h5', 'hdf5'] }, openLabel: 'Unlearn this trigger' }))?.[0]?.fsPath
    : trig.file;
  return file ? { method: 'unlearn', trigger: file } : undefined;
}
