// A weights-only file in a real workbench: right-click it → Inspect Model → the
// editor asks for its architecture, offering the model beside it (its layers fit)
// → the inspector shows the parameters and where the architecture came from →
// Audit for Backdoors… runs with that architecture, recorded in the report.
// On the bundled demo (bd_weights.h5 beside bd_net.h5) and on the lab's
// bd_weights.h5 beside the student's pruned model, when ../shared is there.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { explorerContextMenu, extensionBuilt, hostUnavailableReason, pickQuickItem, repoRoot, waitForQuickInput, withWorkbench } from './harness';
import {
  LAB_CLEAN, LAB_MODEL, LAB_POISONED, answerDataStep, demoFile, labDir, needsDemo, needsLab, readReportJson,
  removeWorkspace, tempWorkspace, waitForAuditView, waitForInspectView,
} from './flows';

const hostSkip = hostUnavailableReason() ?? (extensionBuilt() ? undefined : 'dist/extension.cjs is missing: run npm run build');

const subjects = [
  {
    name: 'demo', skip: needsDemo, params: '255,668', files: ['bd_weights.h5', 'bd_net.h5', 'valid.h5', 'bd_valid.h5'].map(demoFile),
    arch: 'bd_net.h5', picks: [['valid', 'valid.h5'], ['bd_valid', 'bd_valid.h5']],
  },
  {
    // The lab's numbers: 601,643 parameters (Keras's model.summary() on bd_net.h5).
    name: 'lab', skip: needsLab, params: '601,643', files: ['bd_weights.h5', LAB_MODEL, LAB_CLEAN, LAB_POISONED].map((f) => path.join(labDir, f)),
    arch: LAB_MODEL, picks: [['faces_clean', LAB_CLEAN], ['sunglasses', LAB_POISONED]],
  },
];

for (const s of subjects) {
  test(`${s.name}: right-click bd_weights.h5 → pick its architecture → inspect (${s.params} parameters) → audit`, { skip: hostSkip ?? s.skip, timeout: 180_000 }, async () => {
    const folder = tempWorkspace(s.files, `weights-${s.name}`);
    try {
      await withWorkbench(`weights-only-${s.name}`, { extensionDevelopmentPath: repoRoot, folder }, async ({ page }) => {
        await explorerContextMenu(page, 'bd_weights.h5', 'Inspect Model');
        await waitForQuickInput(page, 60_000);
        const title = await page.locator('.quick-input-widget .quick-input-title').textContent();
        assert.match(title ?? '', /bd_weights\.h5 holds weights only: choose its architecture/);
        await pickQuickItem(page, s.arch, 60_000);

        const view = await waitForInspectView(page, 'bd_weights.h5');
        assert.equal(view.format, 'weights-only HDF5 + architecture file');
        assert.equal(view.facts.Parameters, s.params);
        assert.equal(view.facts['Architecture file'], `${s.arch} (chosen for bd_weights.h5 in this workspace)`);
        assert.ok(view.layers.some((row) => row[0] === 'conv_3'), 'no conv_3 row');

        // The audit asks only for data: the architecture is remembered.
        await explorerContextMenu(page, 'bd_weights.h5', 'Audit for Backdoors…');
        await answerDataStep(page, 1, s.picks[0][0], s.picks[0][1]);
        await answerDataStep(page, 2, s.picks[1][0], s.picks[1][1]);
        await answerDataStep(page, 3, 'None');
        await answerDataStep(page, 4, 'None');
        await waitForAuditView(page, 'bd_weights.h5', 120_000);
        const report = readReportJson(path.join(folder, 'bd_weights.h5.audit')) as ReturnType<typeof readReportJson> & { arch?: string };
        assert.equal(report.arch, path.join(folder, s.arch));
        assert.equal(report.layer, 'conv_3');
      });
    } finally {
      removeWorkspace(folder);
    }
  });
}
