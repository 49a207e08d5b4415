// Weights-only files (the lab's bd_weights.h5, a student's B_prime_weights.h5)
// need their architecture from another file. The worker checks which of the
// workspace's models and Keras JSON configs fit (name and shape of every weighted
// layer); the user picks one, or browses, and the choice is remembered per file
// in the workspace until changed with "Change Architecture…".
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { ArchFitResult } from '../protocol';
import { runJob } from '../worker/client';

const KEY = 'backdoorAudit.architectureOf:';
/** Files looked at as candidates, at most: a workspace of data files should not stall the picker. */
const MAX_CANDIDATES = 200;

/** What a command needs to run a model: its architecture file when it is weights-only. */
export interface ModelSource {
  model: string;
  arch?: string;
  /** how the architecture was chosen, for the inspector */
  archNote?: string;
}

export class Architectures {
  /** weights-only or not, per file and modification time (asking costs a worker) */
  private readonly kinds = new Map<string, boolean>();

  constructor(private readonly state: vscode.Memento, private readonly workerPath: string) {}

  /** The remembered architecture of `model`, if its file still exists. */
  remembered(model: string): string | undefined {
    const arch = this.state.get<string>(KEY + model);
    return arch && existsSync(arch) ? arch : undefined;
  }

  /**
   * The model with its architecture: remembered, or asked for when the file is
   * weights-only. Undefined when the user dismissed the question.
   */
  async resolve(model: string): Promise<ModelSource | undefined> {
    const arch = this.remembered(model);
    if (arch) return { model, arch, archNote: `remembered for ${path.basename(model)} in this workspace` };
    if (!(await this.isWeightsOnly(model))) return { model };
    return this.choose(model);
  }

  /** Asks for the architecture of `model` (again), remembers and returns it. */
  async choose(model: string): Promise<ModelSource | undefined> {
    const name = path.basename(model);
    const candidates = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Looking for architectures that fit ${name}…` },
      async () => this.fits(model, await this.workspaceCandidates(model)),
    );
    if (!candidates.weightsOnly) {
      void vscode.window.showInformationMessage(`${name} holds its own architecture (model_config); it needs no other.`);
      return { model };
    }
    const fitting = candidates.fits.filter((f) => f.fits);
    const current = this.remembered(model);
    type Item = vscode.QuickPickItem & { arch?: string; browse?: boolean };
    const items: Item[] = fitting.map((f) => ({
      label: path.basename(f.arch),
      description: vscode.workspace.asRelativePath(f.arch) + (f.arch === current ? ' (current)' : ''),
      detail: 'fits: every weighted layer has the same name and shape',
      arch: f.arch,
    }));
    const closest = candidates.fits.find((f) => !f.fits && /\.(h5|keras|json)$/i.test(f.arch) && !/no model_config|not a full Keras model/.test(f.problems.join()));
    if (!fitting.length) {
      items.push({
        label: 'No model in this workspace fits', kind: vscode.QuickPickItemKind.Separator,
      }, ...(closest ? [{ label: `$(warning) ${path.basename(closest.arch)} does not fit`, detail: closest.problems.slice(0, 3).join('; '), description: vscode.workspace.asRelativePath(closest.arch) }] : []));
    }
    items.push({ label: '$(folder-opened) Browse…', detail: 'a full Keras model (.h5, .keras) or a Keras JSON config', browse: true });
    const pick = await vscode.window.showQuickPick(items, {
      title: `${name} holds weights only: choose its architecture`,
      placeHolder: fitting.length ? 'Models whose layers fit these weights' : 'Nothing here fits; browse for the architecture',
      ignoreFocusOut: true,
    });
    if (!pick) return undefined;
    let arch = pick.arch;
    if (pick.browse) {
      const uri = await vscode.window.showOpenDialog({
        title: `Architecture for ${name}`, canSelectMany: false, openLabel: 'Use as Architecture',
        filters: { 'Keras models and configs': ['h5', 'keras', 'json'] },
      });
      if (!uri?.[0]) return undefined;
      const checked = (await this.fits(model, [uri[0].fsPath])).fits[0];
      if (!checked?.fits) {
        void vscode.window.showErrorMessage(`${path.basename(uri[0].fsPath)} does not fit ${name}: ${checked?.problems.join('; ') ?? 'it could not be read'}`, { modal: true });
        return undefined;
      }
      arch = checked.arch;
    }
    if (!arch) return undefined;
    await this.state.update(KEY + model, arch);
    return { model, arch, archNote: `chosen for ${name} in this workspace` };
  }

  private async isWeightsOnly(model: string): Promise<boolean> {
    const key = `${model}@${statSync(model, { throwIfNoEntry: false })?.mtimeMs ?? 0}`;
    let known = this.kinds.get(key);
    if (known === undefined) {
      known = (await this.fits(model, [])).weightsOnly;
      this.kinds.set(key, known);
    }
    return known;
  }

  private fits(model: string, candidates: string[]): Promise<ArchFitResult> {
    return runJob<ArchFitResult>({ kind: 'archFit', model, candidates }, { workerPath: this.workerPath });
  }

  /** Model files and JSON configs of the workspace, those beside the model first. */
  private async workspaceCandidates(model: string): Promise<string[]> {
    const uris = await vscode.workspace.findFiles('**/*.{h5,keras,json}', '**/{node_modules,.git,.vscode,*.audit,*.scan}/**', MAX_CANDIDATES * 2);
    const dir = path.dirname(model);
    return uris.map((u) => u.fsPath)
      .filter((f) => f !== model && !/(^|[\\/])(package(-lock)?|tsconfig|settings|launch)\.json$/i.test(f))
      .sort((a, b) => Number(path.dirname(b) === dir) - Number(path.dirname(a) === dir) || a.localeCompare(b))
      .slice(0, MAX_CANDIDATES);
  }
}
