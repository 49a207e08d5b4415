// Repair after pruning, chosen in the editor, end to end in a real workbench
// (code-server + chromium) on the bundled demo: right-click the model → "Audit for
// Backdoors…" → the four data picks → "Fine-tune after pruning" in the repair pick
// (one epoch, from the settings) → the audit view, whose table shows under each
// threshold the fine-tuned B′ with exactly the numbers of report.json, and whose
// training curve is drawn, its epochs table equal to report.json's. Screenshot:
// docs/screenshots/audit-repair.png.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { explorerContextMenu, extensionBuilt, hostUnavailableReason, openNotificationCenter, repoRoot, withWorkbench } from './harness';
import {
  DEMO_FILES, answerDataStep, answerRepairStep, assertTableMatchesReport, assertTrainingCurveMatchesReport, demoFile,
  frameForScreenshot, needsDemo, readReportJson, removeWorkspace, saveScreenshot, screenshotsDir, tempWorkspace, waitForAuditView,
} from './flows';

const skip = hostUnavailableReason() ?? (extensionBuilt() ? undefined : 'dist/extension.cjs is missing: run npm run build') ?? needsDemo;
const { model: MODEL, cleanValid: CLEAN, poisonedValid: POISONED, cleanTest: TEST, poisonedTest: BD_TEST } = DEMO_FILES;

test('repair pick "Fine-tune after pruning" → fine-tuned rows under each threshold and a training curve, matching report.json', { skip, timeout: 900_000 }, async () => {
  const folder = tempWorkspace([MODEL, CLEAN, POISONED, TEST, BD_TEST].map(demoFile), 'badnet-audit');
  try {
    // One epoch of the layers above the pruned one: the shortest training the settings allow.
    const settings = { 'backdoorAudit.repair.epochs': 1, 'backdoorAudit.repair.layers': 'above' };
    await withWorkbench('audit-repair', { extensionDevelopmentPath: repoRoot, folder, settings }, async ({ page }) => {
      await explorerContextMenu(page, MODEL, 'Audit for Backdoors…');
      await answerDataStep(page, 1, 'valid', CLEAN);
      await answerDataStep(page, 2, 'bd_valid', POISONED);
      await answerDataStep(page, 3, 'test', TEST);
      await answerDataStep(page, 4, 'bd_test', BD_TEST, 4, 'ask');
      await answerRepairStep(page, 'Fine-tune after pruning');
      await openNotificationCenter(page);
      // Three thresholds, each trained one epoch on a shared machine: minutes, not seconds.
      const frame = await waitForAuditView(page, MODEL, 600_000);

      const dir = path.join(folder, `${MODEL}.audit`);
      const report = readReportJson(dir);
      const reached = report.thresholds.filter((t) => t.reached);
      assert.ok(reached.length > 0, 'no threshold was reached');
      for (const t of reached) {
        assert.equal(t.fineTuned?.method, 'fine-tune', `the ${t.drop}% row was not fine-tuned`);
        assert.deepEqual(t.fineTuned.epochs.map((e) => e.epoch), [0, 1], `the ${t.drop}% row's epochs`);
        assert.ok(t.fineTuned.repairedModel && existsSync(path.join(dir, t.fineTuned.repairedModel)), `no fine-tuned model for ${t.drop}%`);
      }
      // Each reached threshold's row is followed by its fine-tuned row, every number as in report.json.
      await assertTableMatchesReport(frame, report);
      const stats = await assertTrainingCurveMatchesReport(frame, report);
      console.log(`training curve: ${stats.map((s) => `${s.width}x${s.height} ${s.colours} colours`).join(', ')}`);

      await frameForScreenshot(page, frame, 'results');
      await assertTrainingCurveMatchesReport(frame, report);
      await saveScreenshot(page, path.join(screenshotsDir, 'audit-repair.png'));
    });
  } finally {
    removeWorkspace(folder);
  }
});
