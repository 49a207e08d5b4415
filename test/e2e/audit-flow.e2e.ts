// A new user's audit, end to end in a real workbench (code-server + chromium), with
// the extension in development mode and the bundled demo copied into a temp workspace:
// right-click the model in the explorer → "Audit for Backdoors…" → the four data
// quick picks → progress notification → the audit view, whose charts are drawn and
// whose table shows exactly the numbers of the report.json written to disk; then the
// table's actions: Copy as Markdown, Export CSV, Reveal report, and Open on a repaired model;
// and "Reveal Repaired Models" in the Backdoor Audits view.
// Also: cancelling from the progress notification leaves no report behind and no
// worker running, and the audit then runs again to completion; and in an audit view
// opened from the palette, maps for another index and for a picked PNG, and a re-run
// with other thresholds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { AuditReport } from '../../src/core/types';
import { resultsCsv, resultsMarkdown } from '../../webview/format';
import {
  clickNotificationButton, closeNotificationCenter, explorerContextMenu, extensionBuilt, hostUnavailableReason,
  openNotificationCenter, pickFile, pickQuickItem, repoRoot, rowContextMenu, runCommand, waitForNotification, withWorkbench,
} from './harness';
import {
  DEMO_FILES, acceptDataStep, answerDataStep, assertChartsDrawn, assertTableMatchesReport, demoFile,
  needsDemo, readReportJson, removeWorkspace, recordNotifications, seenTexts, tempWorkspace,
  waitForAuditView, waitForInspectView, waitUntil, writeLabelledPng, writeRepeatedData,
} from './flows';

const skip = hostUnavailableReason() ?? (extensionBuilt() ? undefined : 'dist/extension.cjs is missing: run npm run build') ?? needsDemo;
const { model: MODEL, cleanValid: CLEAN, poisonedValid: POISONED, cleanTest: TEST, poisonedTest: BD_TEST } = DEMO_FILES;
const AUDIT_DIR = `${MODEL}.audit`;
const MODEL_RE = MODEL.replace('.', '\\.');

test('explorer context menu → data quick picks → progress → audit view matching report.json', { skip, timeout: 120_000 }, async () => {
  const folder = tempWorkspace([MODEL, CLEAN, POISONED, TEST, BD_TEST].map(demoFile));
  try {
    await withWorkbench('audit-flow', { extensionDevelopmentPath: repoRoot, folder }, async ({ page, server }) => {
      await recordNotifications(page);
      await explorerContextMenu(page, MODEL, 'Audit for Backdoors…');

      // Type into each picker like a user; the titles say which data each step is for.
      const titles = [
        await answerDataStep(page, 1, 'valid', CLEAN),
        await answerDataStep(page, 2, 'bd_valid', POISONED),
        await answerDataStep(page, 3, 'test', TEST),
        await answerDataStep(page, 4, 'bd_test', BD_TEST),
      ];
      assert.match(titles[0], new RegExp(`Audit ${MODEL_RE}: clean validation data`));
      assert.match(titles[1], /poisoned validation data/);
      assert.match(titles[2], /clean test data/);
      assert.match(titles[3], /poisoned test data/);
      // The progress notification lives in the notification center here (no toasts
      // with the smoke-test driver): open it at once; the recorder keeps what it showed.
      await openNotificationCenter(page);
      const frame = await waitForAuditView(page, MODEL);
      const seen = await seenTexts(page);
      assert.ok(seen.some((t) => new RegExp(`^notification: Auditing ${MODEL_RE}`).test(t)),
        `no "Auditing …" progress notification was shown; saw: ${JSON.stringify(seen)}`);
      assert.ok(seen.some((t) => new RegExp(`^status bar: .*Auditing ${MODEL_RE}`).test(t)),
        `no "Auditing …" status bar item was shown; saw: ${JSON.stringify(seen)}`);

      const dir = path.join(folder, AUDIT_DIR);
      assert.ok(existsSync(path.join(dir, 'report.json')), `no report.json in ${dir}`);
      const report = readReportJson(dir);
      assert.equal(report.model, path.join(folder, MODEL));
      assert.equal(report.layer, 'conv_3');
      await assertTableMatchesReport(frame, report);
      const stats = await assertChartsDrawn(frame);
      console.log(`charts: ${stats.map((s) => `${s.id} ${s.width}x${s.height} ${s.colours} colours`).join(', ')}`);

      // The table's actions, each through the host to where the user looks for the result.
      const full = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as AuditReport;
      await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(server.url).origin });
      await frame.locator('#copy-md').click();
      const clipboard = await waitUntil('the results in the clipboard', async () => {
        const text = await page.evaluate('navigator.clipboard.readText()').catch(() => '') as string;
        return text.includes('|') ? text : undefined;
      }, 10_000);
      assert.equal(clipboard, resultsMarkdown(full));

      const csvFile = path.join(folder, 'exported results.csv');
      await frame.locator('#export-csv').click();
      await pickFile(page, csvFile);
      await waitUntil('the exported CSV', async () => existsSync(csvFile), 10_000);
      assert.equal(readFileSync(csvFile, 'utf8'), resultsCsv(full));

      await frame.locator('#reveal-report').click();
      const selected = page.locator('.explorer-folders-view .monaco-list-row.selected');
      await waitUntil('report.json selected in the explorer', async () => (await selected.textContent())?.includes('report.json'), 10_000);

      // "Open" on the first reached row: the repaired model in the Model Inspector, which reads it.
      const first = full.thresholds.find((t) => t.reached)!;
      await frame.locator(`.open-repaired[data-drop="${first.drop}"]`).click();
      const inspected = await waitForInspectView(page, first.repairedModel!);
      assert.ok(inspected.layers.some((row) => row[0] === report.layer), `no ${report.layer} row in the inspector of ${first.repairedModel}: ${JSON.stringify(inspected.layers)}`);

      // The Backdoor Audits view lists this audit. "Reveal Repaired Models" on the last threshold row
      // selects its model in the explorer; on the audit, the first one (the explorer shows another by then).
      const header = page.locator('.pane-header', { hasText: 'Backdoor Audits' });
      if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
      const tree = page.locator('.pane', { has: header });
      const explorerSelection = page.locator('.explorer-folders-view .monaco-list-row.selected');
      const revealed = (name: string) => waitUntil(`${name} selected in the explorer`, async () => (await explorerSelection.textContent())?.includes(name), 10_000);
      const last = full.thresholds.filter((t) => t.reached).at(-1)!;
      assert.notEqual(last.repairedModel, first.repairedModel);
      await rowContextMenu(page, tree.locator('.monaco-list-row', { hasText: `${last.drop}% ` }).first(), `the ${last.drop}% row`, 'Reveal Repaired Models');
      await revealed(last.repairedModel!);
      await rowContextMenu(page, tree.locator('.monaco-list-row', { hasText: MODEL }).first(), 'the audit in Backdoor Audits', 'Reveal Repaired Models');
      await revealed(first.repairedModel!);
    });
  } finally {
    removeWorkspace(folder);
  }
});

test('cancelling from the progress notification leaves no report; the audit then runs to completion', { skip, timeout: 120_000 }, async () => {
  const folder = tempWorkspace([demoFile(MODEL)]);
  try {
    // 6000 images each: long enough to cancel (seconds in one process), small on disk (uint8).
    await writeRepeatedData(demoFile(CLEAN), path.join(folder, 'many_clean_valid.h5'), 6000);
    await writeRepeatedData(demoFile(POISONED), path.join(folder, 'many_bd_valid.h5'), 6000);
    // One worker process: the run must not get short on a machine with many cores.
    await withWorkbench('audit-cancel', {
      extensionDevelopmentPath: repoRoot, folder, settings: { 'backdoorAudit.workers': 1 },
    }, async ({ page, server }) => {
      await explorerContextMenu(page, MODEL, 'Audit for Backdoors…');
      await answerDataStep(page, 1, 'many_clean', 'many_clean_valid.h5');
      await answerDataStep(page, 2, 'many_bd', 'many_bd_valid.h5');
      await answerDataStep(page, 3, 'None');
      await answerDataStep(page, 4, 'None');

      // Cancel while the worker runs (the check below for its exit is then not vacuous).
      await waitUntil('the audit worker to start', async () => workerPids(server.pid).length > 0, 15_000, 100);
      const statusItem = page.locator('[id$="backdoorAudit.running"]');
      await statusItem.waitFor({ state: 'visible', timeout: 5_000 });
      await clickNotificationButton(page, new RegExp(`Auditing ${MODEL_RE}`), 'Cancel', 15_000);
      await waitForNotification(page, `Audit of ${MODEL} cancelled.`, 15_000);
      // The worker (and its shard processes) stop; nothing is left in the workspace.
      await waitUntil('the worker processes to exit', async () => workerPids(server.pid).length === 0, 10_000);
      await statusItem.waitFor({ state: 'hidden', timeout: 5_000 });
      const left = readdirSync(folder).filter((f) => /audit|\.tmp|~/i.test(f));
      assert.deepEqual(left, [], `files left in the workspace after cancelling: ${left.join(', ')}`);
      assert.equal(await page.locator('.tab', { hasText: `Audit: ${MODEL}` }).count(), 0, 'an audit tab opened after cancelling');

      // Again: the pickers now start on the choices remembered for this model.
      await closeNotificationCenter(page);
      await explorerContextMenu(page, MODEL, 'Audit for Backdoors…');
      await acceptDataStep(page, 1, 'many_clean_valid.h5');
      await acceptDataStep(page, 2, 'many_bd_valid.h5');
      await acceptDataStep(page, 3, 'None');
      await acceptDataStep(page, 4, 'None');
      const frame = await waitForAuditView(page, MODEL);
      const report = readReportJson(path.join(folder, AUDIT_DIR));
      await assertTableMatchesReport(frame, report);
      await assertChartsDrawn(frame);
    });
  } finally {
    removeWorkspace(folder);
  }
});

test('audit view: maps of another index and of a picked PNG, then a re-run with other thresholds', { skip, timeout: 240_000 }, async () => {
  const png = await writeLabelledPng(demoFile(CLEAN), 7, os.tmpdir());
  const folder = tempWorkspace([MODEL, CLEAN, POISONED, TEST, BD_TEST].map(demoFile).concat(png));
  try {
    // An audit from the CLI, so this test starts at its report.
    const w = (f: string) => path.join(folder, f);
    const cli = (...args: string[]) => execFileSync(process.execPath, [path.join(repoRoot, 'dist/cli.mjs'), ...args], { encoding: 'utf8', stdio: 'pipe' });
    cli('audit', w(MODEL), '--clean-valid', w(CLEAN), '--poisoned-valid', w(POISONED), '--clean-test', w(TEST), '--poisoned-test', w(BD_TEST), '--out', w(AUDIT_DIR));
    // What the engine predicts for index 4 of each set and for the PNG (the unit tests hold the engine to Keras).
    type Predicted = { predictions: { index: number; source?: string; label: number; trueLabel?: number }[] };
    const all = (JSON.parse(cli('predict', w(MODEL), w(CLEAN), w(POISONED), w(path.basename(png)), '--json')) as Predicted).predictions;
    const predicted = (file: string, i: number) => all.find((p) => p.source === w(file) && p.index === i)!;
    const clean4 = predicted(CLEAN, 4), poisoned4 = predicted(POISONED, 4), fromPng = predicted(path.basename(png), 0);
    const target = readReportJson(w(AUDIT_DIR)).target;
    await withWorkbench('audit-view', { extensionDevelopmentPath: repoRoot, folder }, async ({ page }) => {
      await runCommand(page, 'Backdoor Audit: Open Report');
      await pickQuickItem(page, MODEL);
      let frame = await waitForAuditView(page, MODEL);
      const captions = async () => (await frame.locator('#maps .map-captions .chip').allTextContents()).map((t) => t.trim());

      // Index 4 is past the report's samples (0..3): the host computes its maps.
      const hit = poisoned4.label === target ? ' (attack target)' : '';
      const want4 = `left: clean #4: label ${clean4.trueLabel}, predicted ${clean4.label} | right: poisoned #4: label ${poisoned4.trueLabel}, predicted ${poisoned4.label}${hit}`;
      await frame.locator('#index-field input').fill('4');
      await frame.locator('#index-field input').press('Enter');
      await waitUntil(`the maps of index 4 (${want4})`, async () => (await captions()).join(' | ') === want4 || undefined, 30_000);

      // A PNG through the open dialog: its label comes from its name.
      const label = Number(/label-(\d+)/.exec(png)![1]);
      const wantPng = `left: ${path.basename(png)}: label ${label}, predicted ${fromPng.label}`;
      await frame.locator('#maps vscode-button', { hasText: 'Pick PNG/JPEG…' }).click();
      await pickFile(page, w(path.basename(png)));
      await waitUntil(`the maps of the picked PNG (${wantPng})`, async () => (await captions()).join(' | ') === wantPng || undefined, 30_000);

      // Re-run with other thresholds: a new report in the same folder, shown in the same view.
      await frame.locator('#rerun-field input').fill('2, 30');
      await frame.locator('#rerun').click();
      await waitUntil('the re-run report', async () => {
        const r = readReportJson(w(AUDIT_DIR));
        return r.thresholds.map((t) => t.drop).join() === '2,30' || undefined;
      }, 120_000);
      frame = await waitForAuditView(page, MODEL);
      const report = readReportJson(w(AUDIT_DIR));
      await waitUntil('the table of the re-run', async () => (await frame.locator('#results-table').textContent())?.includes('30% drop') || undefined, 20_000);
      await assertTableMatchesReport(frame, report);
    });
  } finally {
    removeWorkspace(folder);
    rmSync(png, { force: true });
  }
});

/** Worker processes (dist/worker.mjs, audit or shard) in the server's process group, from /proc. */
function workerPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // stat: "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the last ")".
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgrp !== pgid) continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (/worker\.mjs/.test(cmdline)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}
