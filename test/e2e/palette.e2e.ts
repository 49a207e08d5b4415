// The command palette path, in a real workbench with the extension in development
// mode: "Backdoor Audit: Audit for Backdoors…" with the model chosen in the
// workbench's file dialog (the bundled demo), and "Backdoor Audit: Inspect Model"
// showing the inspect view of the lab's pruned model (a fact about that file).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { extensionBuilt, hostUnavailableReason, pickFile, repoRoot, runCommand, withWorkbench } from './harness';
import {
  DEMO_FILES, LAB_MODEL, answerDataStep, assertChartsDrawn, assertTableMatchesReport, demoFile, labDir, needsDemo, needsLab,
  readReportJson, removeWorkspace, readResultsTable, tempWorkspace, waitForAuditView, waitForInspectView,
} from './flows';

const hostSkip = hostUnavailableReason() ?? (extensionBuilt() ? undefined : 'dist/extension.cjs is missing: run npm run build');
const lab = (f: string) => path.join(labDir, f);
const { model: MODEL, cleanValid: CLEAN, poisonedValid: POISONED, poisonedTest: BD_TEST } = DEMO_FILES;

test('palette: Audit for Backdoors… with the model from the file dialog', { skip: hostSkip ?? needsDemo, timeout: 120_000 }, async () => {
  const folder = tempWorkspace([MODEL, CLEAN, POISONED, BD_TEST].map(demoFile));
  try {
    await withWorkbench('palette-audit', { extensionDevelopmentPath: repoRoot, folder }, async ({ page }) => {
      // No model in the explorer selection or an open inspector: the command asks for one.
      await runCommand(page, 'Backdoor Audit: Audit for Backdoors…');
      await pickFile(page, path.join(folder, MODEL));
      await answerDataStep(page, 1, 'valid', CLEAN);
      await answerDataStep(page, 2, 'bd_valid', POISONED);
      await answerDataStep(page, 3, 'None');
      await answerDataStep(page, 4, 'bd_test', BD_TEST);

      const frame = await waitForAuditView(page, MODEL);
      const report = readReportJson(path.join(folder, `${MODEL}.audit`));
      assert.equal(report.model, path.join(folder, MODEL));
      // Without a clean test set there is no test accuracy and no G: the table says so by leaving them out.
      const { header } = await readResultsTable(frame);
      assert.ok(!header.includes('Test acc (%)') && !header.includes('G test acc (%)'), `header: ${header.join(' | ')}`);
      await assertTableMatchesReport(frame, report);
      await assertChartsDrawn(frame);
    });
  } finally {
    removeWorkspace(folder);
  }
});

test('palette: Inspect Model lists conv_3 of the lab\'s pruned model with its 45 zeroed channels', { skip: hostSkip ?? needsLab, timeout: 120_000 }, async () => {
  const folder = tempWorkspace([lab(LAB_MODEL)]);
  try {
    await withWorkbench('palette-inspect', { extensionDevelopmentPath: repoRoot, folder }, async ({ page }) => {
      await runCommand(page, 'Backdoor Audit: Inspect Model');
      await pickFile(page, path.join(folder, LAB_MODEL));
      const view = await waitForInspectView(page, LAB_MODEL);
      assert.equal(view.format, 'Keras 2 HDF5');
      const conv3 = view.layers.find((l) => l[0] === 'conv_3');
      assert.ok(conv3, `no conv_3 row in the layer table: ${JSON.stringify(view.layers.map((l) => l[0]))}`);
      assert.equal(conv3[1], 'Conv2D');
      // Zeroed channels: a badge with the count, then the first channels (the lab's README lists them).
      assert.match(conv3[6], /^45 0, 1, 2, 3, 6, 9, 12, 13, 14, 15, 17, 19, …$/, `conv_3 zeroed cell: ${conv3[6]}`);
      const others = view.layers.filter((l) => l[0] !== 'conv_3' && /^\d/.test(l[6]) && l[6] !== '0');
      assert.deepEqual(others.map((l) => l[0]), [], 'only conv_3 has zeroed channels');
      assert.match(view.notes, /conv_3 \(45\)/, `zeroed-channels note: ${view.notes}`);
    });
  } finally {
    removeWorkspace(folder);
  }
});
