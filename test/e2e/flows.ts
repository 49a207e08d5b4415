// User flows shared by the e2e tests (test/e2e/*.e2e.ts): workspaces holding the
// lab fixtures or the bundled demo, the four data quick picks, and checks of the
// audit view against the report.json the audit wrote.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import h5wasm from 'h5wasm/node';
import { PNG } from 'pngjs';
import type { FrameLocator, Page } from 'playwright-core';
import { writeDatasetH5 } from '../../src/core/h5/write';
import { closeNotificationCenter, openNotificationCenter, repoRoot, resultsDir, runCommand, waitForQuickInput, webviewFrame } from './harness';

export const labDir = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'lab-badnet');
export const LAB_MODEL = 'bd_net_pruned45_keras2.15.h5';
export const LAB_CLEAN = 'faces_clean.h5';
export const LAB_POISONED = 'faces_sunglasses.h5';
export const hasLab = [LAB_MODEL, LAB_CLEAN, LAB_POISONED].every((f) => existsSync(path.join(labDir, f)));
/** node:test prints this next to each skipped test. */
export const needsLab = hasLab ? undefined : `needs the lab fixtures in ${labDir} (absent here)`;

/** The bundled demo (npm run make-demo); BDA_E2E_DEMO_DIR points the tests at another copy. */
export const demoDir = path.resolve(process.env.BDA_E2E_DEMO_DIR ?? path.join(repoRoot, 'demo'));
export const DEMO_FILES = { model: 'bd_net.h5', cleanValid: 'valid.h5', poisonedValid: 'bd_valid.h5', cleanTest: 'test.h5', poisonedTest: 'bd_test.h5' };
export const hasDemo = Object.values(DEMO_FILES).every((f) => existsSync(path.join(demoDir, f)));
export const needsDemo = hasDemo ? undefined : `needs the bundled demo in ${demoDir} (npm run make-demo)`;
export const demoFile = (f: string) => path.join(demoDir, f);

/** Image `index` of a lab-layout data file (uint8, channels first) as a PNG named with its label, as the lab's PNGs are. */
export async function writeLabelledPng(src: string, index: number, dir: string): Promise<string> {
  await h5wasm.ready;
  const f = new h5wasm.File(src, 'r');
  try {
    const data = f.get('data') as InstanceType<typeof h5wasm.Dataset>;
    const [, c, h, w] = data.shape!;
    const pixels = data.slice([[index, index + 1]]) as unknown as ArrayLike<number>;
    const label = Number(((f.get('label') as InstanceType<typeof h5wasm.Dataset>).slice([[index, index + 1]]) as unknown as ArrayLike<number>)[0]);
    const png = new PNG({ width: w, height: h });
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < 4; k++) png.data[(y * w + x) * 4 + k] = k < c ? pixels[(k * h + y) * w + x] : 255;
      }
    }
    const file = path.join(dir, `${path.basename(src, '.h5')}_${index}_label-${label}.png`);
    writeFileSync(file, PNG.sync.write(png));
    return file;
  } finally {
    f.close();
  }
}

export const screenshotsDir = path.join(repoRoot, 'docs', 'screenshots');

const workspaceRoots = new Map<string, string>();

/**
 * A temp workspace folder holding copies of `files` (absolute paths), writable (the
 * fixtures are read-only). `name` gives the folder a stable name (it shows in the
 * window title and the views) inside a fresh temp folder. Remove with removeWorkspace.
 */
export function tempWorkspace(files: string[], name?: string): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'bda-ws-'));
  const dir = name ? path.join(root, name) : root;
  mkdirSync(dir, { recursive: true });
  workspaceRoots.set(dir, root);
  for (const f of files) {
    const to = path.join(dir, path.basename(f));
    copyFileSync(f, to);
    chmodSync(to, 0o644);
  }
  return dir;
}

export function removeWorkspace(dir: string): void {
  if (process.env.BDA_KEEP_TMP) return;
  rmSync(workspaceRoots.get(dir) ?? dir, { recursive: true, force: true });
  workspaceRoots.delete(dir);
}

/**
 * A bigger data file in the lab's layout: the images of `src` repeated to `n` rows
 * (uint8, as pixel values 0..255 fit), so an audit runs long enough to be cancelled.
 */
export async function writeRepeatedData(src: string, dst: string, n: number): Promise<void> {
  await h5wasm.ready;
  const f = new h5wasm.File(src, 'r');
  try {
    const data = f.get('data') as InstanceType<typeof h5wasm.Dataset>;
    const label = f.get('label') as InstanceType<typeof h5wasm.Dataset>;
    const pixels = data.value as Float64Array | Float32Array;
    const labels = label.value as Float64Array;
    const rows = data.shape![0];
    const per = pixels.length / rows;
    const out = new Uint8Array(n * per);
    const outLabels = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const k = i % rows;
      for (let j = 0; j < per; j++) out[i * per + j] = pixels[k * per + j];
      outLabels[i] = labels[k];
    }
    await writeDatasetH5(dst, out, [n, ...data.shape!.slice(1)], outLabels);
  } finally {
    f.close();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown from a waitUntil callback: stop waiting now (the thing waited for cannot happen). */
export class GiveUp extends Error {}

/**
 * Polls `fn` until it returns a truthy value; throws with `what` after timeoutMs.
 * Errors from `fn` count as "not yet", except GiveUp, which ends the wait.
 */
export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined | false | null>, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message.split('\n')[0]})` : ''}`);
    await sleep(everyMs);
  }
}

const quickInput = (page: Page) => page.locator('.quick-input-widget');

/** The focused row of the open quick pick, when its label is `label` (exactly, for a string). */
function focusedRow(page: Page, label: string | RegExp) {
  const re = typeof label === 'string' ? new RegExp(`^\\s*${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) : label;
  return quickInput(page).locator('.monaco-list-row.focused', { has: page.locator('.label-name', { hasText: re }) });
}

/**
 * Answers the open quick pick titled `title` like a user: waits for the title, types
 * `filter` and, once the list has settled with the row labelled `expect` focused,
 * accepts with Enter. Returns the title's text.
 */
async function answerPick(page: Page, title: string, filter: string, expect: string | RegExp): Promise<string> {
  await waitForQuickInput(page);
  const heading = quickInput(page).locator('.quick-input-title', { hasText: title });
  await heading.waitFor({ state: 'visible', timeout: 15_000 });
  const box = quickInput(page).locator('input');
  await box.fill(filter);
  await focusedRow(page, expect).waitFor({ state: 'visible', timeout: 10_000 });
  const text = (await heading.textContent()) ?? '';
  await box.press('Enter');
  return text;
}

/**
 * Answers step `step` of `of` data quick picks (see answerPick): 4 for an audit, 1 for a
 * scan, 2 for an audit with a trigger. After an audit's step 4 the repair pick follows:
 * `repair` 'default' accepts "Pruning only"; 'ask' leaves it open for answerRepairStep.
 * Returns the step's title.
 */
export async function answerDataStep(page: Page, step: number, filter: string, expect: string | RegExp = filter, of = 4, repair: 'default' | 'ask' = 'default'): Promise<string> {
  const text = await answerPick(page, `(${step}/${of})`, filter, expect);
  if (of === 4 && step === 4 && repair === 'default') await acceptRepairStep(page);
  return text;
}

/**
 * After the four data steps the audit asks how to repair each B′; accepts the
 * default, "Pruning only (as the lab)", which these flows check against report.json.
 */
export async function acceptRepairStep(page: Page): Promise<void> {
  await waitForQuickInput(page);
  await quickInput(page).locator('.quick-input-title', { hasText: ': repair' }).waitFor({ state: 'visible', timeout: 15_000 });
  await focusedRow(page, 'Pruning only (as the lab)').waitFor({ state: 'visible', timeout: 10_000 });
  await quickInput(page).locator('input').press('Enter');
}

/** Chooses the repair whose label is `label` (e.g. "Fine-tune after pruning") by typing its first words. */
export async function answerRepairStep(page: Page, label: string): Promise<void> {
  await answerPick(page, ': repair', label.split(' ').slice(0, 2).join(' '), label);
}

/** Chooses the trigger file `file` (its name) in the pick that follows "Unlearn with a trigger file…". */
export async function answerTriggerStep(page: Page, file: string): Promise<void> {
  await answerPick(page, ': trigger to unlearn', file, file);
}

/**
 * Accepts step `step` as it is (a remembered or preselected choice), after
 * checking the focused row is labelled `expect`.
 */
export async function acceptDataStep(page: Page, step: number, expect: string | RegExp): Promise<void> {
  await waitForQuickInput(page);
  await quickInput(page).locator('.quick-input-title', { hasText: `(${step}/4)` }).waitFor({ state: 'visible', timeout: 15_000 });
  await focusedRow(page, expect).waitFor({ state: 'visible', timeout: 10_000 });
  await quickInput(page).locator('input').press('Enter');
  if (step === 4) await acceptRepairStep(page);
}

/**
 * Records, from now on, every text the workbench shows in notifications (toasts or
 * the center) and in our status bar item, so a short-lived progress notification
 * cannot be missed between two polls. Read with seenTexts(): "notification: …" and
 * "status bar: …" lines.
 */
export async function recordNotifications(page: Page): Promise<void> {
  // A string, not a function: tsx would wrap named inner functions in its __name helper.
  await page.evaluate(`(() => {
    const seen = window.__bdaSeen = [];
    const grab = () => {
      for (const el of document.querySelectorAll('.notification-list-item-message, [id$="backdoorAudit.running"]')) {
        const t = (el.classList.contains('notification-list-item-message') ? 'notification: ' : 'status bar: ') + (el.textContent || '').trim();
        if (!seen.includes(t)) seen.push(t);
      }
    };
    new MutationObserver(grab).observe(document.body, { subtree: true, childList: true, characterData: true });
    grab();
  })()`);
}

export async function seenTexts(page: Page): Promise<string[]> {
  return page.evaluate('window.__bdaSeen || []') as Promise<string[]>;
}

// ---------- the audit view ----------

/**
 * The audit webview, once its results table is rendered. Watches the notification
 * center meanwhile (it holds the progress), and fails at once with the message when
 * an error notification appears (e.g. "Audit of … failed: …").
 */
export async function waitForAuditView(page: Page, modelName: string, timeoutMs = 60_000): Promise<FrameLocator> {
  const tab = page.locator('.tab', { hasText: `Audit: ${modelName}` }).first();
  const errors = page.locator('.notifications-center .notification-list-item', { has: page.locator('.codicon-error') });
  await waitUntil(`the audit view of ${modelName}`, async () => {
    if (await tab.isVisible()) return true;
    if (await errors.count()) throw new GiveUp(`an error instead of the audit view: ${(await errors.first().textContent())?.trim()}`);
    await openNotificationCenter(page);
    return false;
  }, timeoutMs, 250);
  await closeNotificationCenter(page);
  const frame = webviewFrame(page);
  // The report is on disk by now: drawing it takes the webview a moment, not minutes.
  await frame.locator('#results-table vscode-table-row').first().waitFor({ state: 'attached', timeout: 20_000 }).catch((err: Error) => {
    throw new Error(`the audit tab opened, but its webview rendered no results table within 20 s: ${err.message.split('\n')[0]}`);
  });
  return frame;
}

/**
 * A function for evaluate() built from source text: functions written in this file
 * would reach the browser wrapped in tsx's __name helper, which is not defined there.
 */
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const browserFn = <R>(params: string[], body: string) => new Function(...params, body) as (...args: any[]) => R;

export interface CanvasStats { id: string; width: number; height: number; opaque: number; colours: number }

/**
 * Pixel statistics of every canvas in the sections with these ids (curve, channels,
 * maps), once each has been drawn: painted pixels and distinct colours.
 */
export async function canvasStats(frame: FrameLocator, sections: string[]): Promise<CanvasStats[]> {
  return frame.locator('body').evaluate(browserFn<CanvasStats[]>(['body', 'ids'], `
    const out = [];
    for (const id of ids) {
      const canvases = body.querySelectorAll('section#' + id + ' canvas');
      if (!canvases.length) out.push({ id, width: 0, height: 0, opaque: 0, colours: 0 });
      canvases.forEach((c, i) => {
        const ctx = c.getContext('2d');
        const stats = { id: canvases.length > 1 ? id + '[' + i + ']' : id, width: c.width, height: c.height, opaque: 0, colours: 0 };
        if (ctx && c.width > 1 && c.height > 1) {
          const px = ctx.getImageData(0, 0, c.width, c.height).data;
          const colours = new Set();
          for (let p = 0; p < px.length; p += 4) {
            if (px[p + 3] === 0) continue;
            stats.opaque++;
            if (colours.size < 5000) colours.add((px[p] << 16) | (px[p + 1] << 8) | px[p + 2]);
          }
          stats.colours = colours.size;
        }
        out.push(stats);
      });
    }
    return out;
  `), sections);
}

/**
 * Waits until the canvases of `sections` (default the heat strip, pruning curve and
 * spatial grid; 'training' is the repair's training curve) are drawn and
 * not blank: each has a size, paints a good share of its area (heatmaps) or at least
 * some of it (the curve's lines), and uses many colours (colour map, anti-aliasing).
 */
export async function assertChartsDrawn(frame: FrameLocator, sections = ['curve', 'channels', 'maps']): Promise<CanvasStats[]> {
  let last: CanvasStats[] = [];
  const ok = (s: CanvasStats) => s.width > 100 && s.height > 50 && s.opaque > s.width * s.height * 0.02 && s.colours >= 16;
  try {
    return await waitUntil('non-blank charts', async () => {
      last = await canvasStats(frame, sections);
      return sections.every((id) => last.some((s) => s.id.startsWith(id))) && last.every(ok) ? last : undefined;
    }, 20_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncanvas stats: ${JSON.stringify(last)}`);
  }
}

/** Header and rows (cell texts) of the threshold results table. */
export async function readResultsTable(frame: FrameLocator): Promise<{ header: string[]; rows: string[][] }> {
  return frame.locator('#results-table').evaluate(browserFn<{ header: string[]; rows: string[][] }>(['table'], `
    const text = (el) => (el.textContent || '').replace(/\\s+/g, ' ').trim();
    return {
      header: [...table.querySelectorAll('vscode-table-header-cell')].map(text),
      rows: [...table.querySelectorAll('vscode-table-body vscode-table-row')]
        .map((r) => [...r.querySelectorAll(':scope > vscode-table-cell')].map(text)),
    };
  `));
}

/** What the inspect view shows: the format badge, the layer table's rows, the zeroed-channels note. */
/** `facts`: the header's facts, name to value (Parameters, Architecture file, ...). */
export interface InspectViewText { format: string; layers: string[][]; notes: string; facts: Record<string, string>; frame: FrameLocator }

/** The inspect view (Model Inspector editor) of `modelName`, once its layer table is rendered. */
export async function waitForInspectView(page: Page, modelName: string, timeoutMs = 60_000): Promise<InspectViewText> {
  await page.locator('.tab', { hasText: modelName }).first().waitFor({ state: 'visible', timeout: timeoutMs });
  const frame = webviewFrame(page);
  await frame.locator('#layer-table vscode-table-row').first().waitFor({ state: 'attached', timeout: timeoutMs });
  const text = await frame.locator('body').evaluate(browserFn<Omit<InspectViewText, 'frame'>>(['body'], `
    const text = (el) => (el ? el.textContent || '' : '').replace(/\\s+/g, ' ').trim();
    return {
      format: text(body.querySelector('.page-head vscode-badge')),
      layers: [...body.querySelectorAll('#layer-table vscode-table-body vscode-table-row')]
        .map((r) => [...r.querySelectorAll(':scope > vscode-table-cell')].map(text)),
      notes: text(body.querySelector('.callout.info')),
      facts: Object.fromEntries([...body.querySelectorAll('.page-head .fact')].map((f) => [text(f.querySelector('dt')), text(f.querySelector('dd'))])),
    };
  `));
  return { ...text, frame };
}

interface Report {
  model: string;
  target?: number;
  backend: string;
  layer: string;
  attackEstimate?: string;
  baseline: { validAccuracy: number; testAccuracy?: number; testAttackRate?: number };
  thresholds: {
    drop: number; reached: boolean; pruned: number; validAccuracy?: number;
    prunedModel: { testAccuracy?: number; testAttackRate?: number };
    goodNet: { testAccuracy?: number; testAttackRate?: number; cleanFlagged?: number; poisonedFlagged?: number };
    repairedModel?: string;
    /** B′ after fine-tuning or unlearning (epoch 0 is B′ before training) */
    fineTuned?: {
      method: 'fine-tune' | 'unlearn';
      epochs: { epoch: number; loss: number | null; validAccuracy: number; validAttackRate?: number }[];
      prunedModel: { testAccuracy?: number; testAttackRate?: number };
      goodNet: { testAccuracy?: number; testAttackRate?: number; cleanFlagged?: number; poisonedFlagged?: number };
      repairedModel?: string;
    };
  }[];
  ranking: unknown[];
  samples?: unknown[];
}

export function readReportJson(auditDir: string): Report {
  return JSON.parse(readFileSync(path.join(auditDir, 'report.json'), 'utf8')) as Report;
}

/** Percent with 4 decimals, as the lab's tables print rates (fractions 0..1 in report.json). */
const pct = (v: number | undefined) => (v === undefined ? undefined : (v * 100).toFixed(4));

/**
 * The numbers each row of the webview's results table must show, computed here from
 * report.json on its own (not with the webview's formatting code), keyed by column label.
 */
export function expectedTableRows(r: Report): Record<string, string | undefined>[] {
  // An audit with a scan's reconstructed trigger marks its attack-rate columns as estimates.
  const est = r.attackEstimate === 'reconstructed-trigger';
  const attack = est ? 'Est. attack rate (%)' : 'Attack rate (%)';
  const gAttack = est ? 'G est. attack rate (%)' : 'G attack rate (%)';
  const base: Record<string, string | undefined> = {
    'Channels pruned': '0',
    'Valid acc (%)': pct(r.baseline.validAccuracy),
    'Test acc (%)': pct(r.baseline.testAccuracy),
    [attack]: pct(r.baseline.testAttackRate),
  };
  const rates = (m: { testAccuracy?: number; testAttackRate?: number }, g: Report['thresholds'][number]['goodNet']) => ({
    'Test acc (%)': pct(m.testAccuracy),
    [attack]: pct(m.testAttackRate),
    'G test acc (%)': pct(g.testAccuracy),
    [gAttack]: pct(g.testAttackRate),
    'G clean flagged (%)': pct(g.cleanFlagged),
    'G poisoned flagged (%)': pct(g.poisonedFlagged),
  });
  // Each threshold's row, then (when B′ was trained) the trained B′'s row: valid accuracy after the last epoch.
  const rows = [...r.thresholds].sort((a, b) => a.drop - b.drop).flatMap((t) => {
    const row: Record<string, string | undefined> = {
      'Accuracy drop (%)': String(t.drop),
      'Channels pruned': t.reached ? String(t.pruned) : 'not reached',
      'Valid acc (%)': pct(t.validAccuracy),
      ...rates(t.prunedModel, t.goodNet),
    };
    const f = t.fineTuned;
    if (!f) return [row];
    const trained = f.epochs.length - 1;
    return [row, {
      Model: `B′ (${t.drop}% drop) ${f.method === 'unlearn' ? 'unlearned' : 'fine-tuned'} for ${trained} epoch${trained === 1 ? '' : 's'}`,
      'Accuracy drop (%)': String(t.drop),
      'Channels pruned': String(t.pruned),
      'Valid acc (%)': pct(f.epochs.at(-1)?.validAccuracy),
      ...rates(f.prunedModel, f.goodNet),
    }];
  });
  return [base, ...rows];
}

/** Asserts the webview's results table shows exactly the numbers of report.json. */
export async function assertTableMatchesReport(frame: FrameLocator, report: Report): Promise<void> {
  const { header, rows } = await readResultsTable(frame);
  const expected = expectedTableRows(report);
  assert.equal(rows.length, expected.length, `table rows: ${JSON.stringify(rows)}`);
  assert.match(rows[0][0], /^B\b/, `first row is the baseline: ${rows[0].join(' | ')}`);
  let compared = 0;
  expected.forEach((want, i) => {
    for (const [label, value] of Object.entries(want)) {
      if (value === undefined) continue;
      const col = header.indexOf(label);
      assert.ok(col >= 0, `column "${label}" missing from the table header ${JSON.stringify(header)}`);
      assert.equal(rows[i][col], value, `row ${i} (${rows[i][0]}), column "${label}": table shows ${rows[i][col]}, report.json says ${value}`);
      compared++;
    }
  });
  assert.ok(compared >= expected.length * 2, `only ${compared} cells compared`);
}

/**
 * The repair's training curve: its canvas is drawn (not blank), and the epochs table
 * beside it lists, per trained threshold, each epoch's validation accuracy and attack
 * rate as report.json holds them.
 */
export async function assertTrainingCurveMatchesReport(frame: FrameLocator, report: Report): Promise<CanvasStats[]> {
  const stats = await assertChartsDrawn(frame, ['training']);
  const rows = await frame.locator('section#training table.data').evaluate(browserFn<string[][]>(['table'], `
    return [...table.querySelectorAll('tbody tr')].map((r) => [...r.querySelectorAll('td')].map((c) => (c.textContent || '').trim()));
  `));
  const trained = [...report.thresholds].filter((t) => t.fineTuned?.epochs.length);
  const want = trained.flatMap((t) => t.fineTuned!.epochs.map((e) => [`${t.drop}%`, String(e.epoch), pct(e.validAccuracy), pct(e.validAttackRate)]));
  assert.ok(want.length > 0, 'report.json has no training epochs');
  assert.equal(rows.length, want.length, `training table rows: ${JSON.stringify(rows)}`);
  want.forEach(([drop, epoch, acc, attack], i) => {
    assert.deepEqual(rows[i].slice(0, 2), [drop, epoch], `training table row ${i}`);
    assert.equal(rows[i][3], acc, `training table row ${i} (${drop}, epoch ${epoch}): valid acc`);
    if (attack !== undefined) assert.equal(rows[i][4], attack, `training table row ${i} (${drop}, epoch ${epoch}): attack rate`);
  });
  return stats;
}

/** Writes a screenshot of the whole page to `file` (for the README). */
export async function saveScreenshot(page: Page, file: string): Promise<string> {
  mkdirSync(path.dirname(file), { recursive: true });
  await page.screenshot({ path: file });
  return file;
}

/** Widths of the view's canvases, to see when a relayout has settled. */
async function canvasWidths(frame: FrameLocator): Promise<string> {
  return frame.locator('body').evaluate(browserFn<string>(['body'], `
    return [...body.querySelectorAll('canvas')].map((c) => c.width + 'x' + c.height).join(',');
  `));
}

/**
 * Frames a webview for a README screenshot: 1400x1000 window, no side bar, no
 * notification center, no hover, charts redrawn at the new size, and the view
 * scrolled so `section` (a section id, or the top when undefined) starts the view.
 */
export async function frameForScreenshot(page: Page, frame: FrameLocator, section?: string): Promise<void> {
  const before = await canvasWidths(frame);
  await page.setViewportSize({ width: 1400, height: 1000 });
  if (await page.locator('.part.sidebar').isVisible()) await runCommand(page, 'View: Close Primary Side Bar');
  await closeNotificationCenter(page);
  await page.locator('.part.sidebar').waitFor({ state: 'hidden', timeout: 5_000 });
  // The charts redraw (on a ResizeObserver) when their width changes: wait until
  // their sizes have stayed put for a few polls.
  if (before) {
    let last = '';
    let stable = 0;
    await waitUntil('the charts to settle at the new size', async () => {
      const now = await canvasWidths(frame);
      stable = now === last ? stable + 1 : 0;
      last = now;
      return stable >= 3;
    }, 10_000, 150);
  }
  await frame.locator('body').evaluate(browserFn<void>(['body', 'id'], `
    const el = id ? body.querySelector('section#' + id) : null;
    if (el) el.scrollIntoView({ block: 'start' }); else window.scrollTo(0, 0);
  `), section ?? '');
  await page.mouse.move(1100, 12); // over the title bar right of the command center: no hover tooltip on a chart or on the title
  await sleep(300); // the scroll position settles (it is saved after 200 ms)
}

export { resultsDir };
