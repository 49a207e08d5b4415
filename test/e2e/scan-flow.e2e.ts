// A scan without poisoned data, end to end in a real workbench (code-server + chromium),
// on the bundled demo only (demo/bd_net.h5, valid.h5, test.h5 copied into a temp
// workspace): right-click the model → "Scan for Backdoor (no poisoned data)…" → the
// clean-data quick pick → progress notification → the scan view, which says `backdoor`
// with target 0 and shows exactly the scan.json written to disk; the scan in the Backdoor
// Audits view with its verdict; then "Audit with this trigger" on the target's row → the
// two clean-data quick picks → the audit view, marked "attack rate estimated with a
// reconstructed trigger", its table equal to that audit's report.json.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { verdictWord } from '../../src/core/scan/verdict';
import type { ScanReport } from '../../src/core/types';
import {
  closeNotificationCenter, explorerContextMenu, extensionBuilt, hostUnavailableReason, openNotificationCenter, repoRoot, webviewFrame, withWorkbench,
} from './harness';
import {
  GiveUp, answerDataStep, assertTableMatchesReport, demoDir, frameForScreenshot, readReportJson,
  recordNotifications, removeWorkspace, saveScreenshot, screenshotsDir, seenTexts, tempWorkspace, waitForAuditView, waitUntil,
} from './flows';

const MODEL = 'bd_net.h5';
const FILES = [MODEL, 'valid.h5', 'test.h5'];
const hasDemo = FILES.every((f) => existsSync(path.join(demoDir, f)));
const skip = hostUnavailableReason() ?? (extensionBuilt() ? undefined : 'dist/extension.cjs is missing: run npm run build')
  ?? (hasDemo ? undefined : `the bundled demo is missing from ${demoDir}`);

test('explorer → Scan for Backdoor → scan view (backdoor, target 0) → Audit with this trigger → estimated audit', { skip, timeout: 900_000 }, async () => {
  const folder = tempWorkspace(FILES.map((f) => path.join(demoDir, f)), 'scan-demo');
  try {
    await withWorkbench('scan-flow', { extensionDevelopmentPath: repoRoot, folder }, async ({ page }) => {
      await recordNotifications(page);
      await explorerContextMenu(page, MODEL, 'Scan for Backdoor (no poisoned data)…');
      const title = await answerDataStep(page, 1, 'valid', 'valid.h5', 1);
      assert.match(title, /^Scan bd_net\.h5: clean validation data/);
      await openNotificationCenter(page);

      // The scan runs in the worker for minutes on 2 cores; its tab opens when it is done.
      const tab = page.locator('.tab', { hasText: `Scan: ${MODEL}` }).first();
      const errors = page.locator('.notifications-center .notification-list-item', { has: page.locator('.codicon-error') });
      await waitUntil('the scan view', async () => {
        if (await tab.isVisible()) return true;
        if (await errors.count()) throw new GiveUp(`an error instead of the scan view: ${(await errors.first().textContent())?.trim()}`);
        await openNotificationCenter(page);
        return false;
      }, 840_000, 500);
      const seen = await seenTexts(page);
      assert.ok(seen.some((t) => /^notification: Scanning bd_net\.h5/.test(t)), `no "Scanning …" progress notification; saw: ${JSON.stringify(seen)}`);
      await closeNotificationCenter(page);

      // The view shows the scan.json on disk: the verdict first, then its evidence.
      const dir = path.join(folder, `${MODEL}.scan`);
      const scan = JSON.parse(readFileSync(path.join(dir, 'scan.json'), 'utf8')) as ScanReport;
      let frame = webviewFrame(page);
      await frame.locator('#verdict .evidence li').first().waitFor({ state: 'attached', timeout: 20_000 });
      const headline = (await frame.locator('#verdict h2').textContent())?.trim() ?? '';
      assert.match(headline, new RegExp(`^${verdictWord(scan)}\\b`, 'i'), `the view's headline "${headline}" starts with scan.json's verdict`);
      assert.deepEqual((await frame.locator('#verdict .evidence li').allTextContents()).map((t) => t.trim()), scan.evidence);
      const rows = await frame.locator('#candidates-table vscode-table-row').count();
      assert.equal(rows, scan.labels.length, 'one candidates row per optimised label');

      // Backdoor Audits lists the scan with its verdict.
      const header = page.locator('.pane-header', { hasText: 'Backdoor Audits' });
      if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
      const treeRow = page.locator('.pane', { has: header }).locator('.monaco-list-row', { hasText: `${MODEL}` })
        .filter({ hasText: scan.verdict === 'backdoor' ? `backdoor → ${scan.targets.map((t) => t.label).join(', ')}` : verdictWord(scan) });
      await treeRow.first().waitFor({ state: 'visible', timeout: 15_000 });

      await frameForScreenshot(page, frame);
      console.log(`screenshot: ${await saveScreenshot(page, path.join(screenshotsDir, 'scan.png'))}`);

      // "Audit with this trigger" on the target's row (first with a button when there is no target):
      // clean validation and test data, then the audit.
      const label = scan.targets[0]?.label ?? scan.labels.find((l) => l.trigger)!.label;
      await frame.locator(`.audit-with-trigger[data-label="${label}"]`).click();
      const t1 = await answerDataStep(page, 1, 'valid', 'valid.h5', 2);
      assert.match(t1, new RegExp(`^Audit bd_net\\.h5 with trigger_${label}: clean validation data`));
      await answerDataStep(page, 2, 'test', 'test.h5', 2);
      frame = await waitForAuditView(page, MODEL, 600_000);
      const report = readReportJson(path.join(folder, `${MODEL}.trigger_${label}.audit`));
      assert.equal(report.attackEstimate, 'reconstructed-trigger');
      assert.match(await frame.locator('#attack-estimate').textContent() ?? '', /attack rate estimated with a reconstructed trigger/);
      await assertTableMatchesReport(frame, report);

      // The demo BadNet's trigger turns faces into class 0 (demo/README.md): the scan must say so.
      assert.equal(scan.verdict, 'backdoor', scan.evidence.join(' / '));
      assert.equal(scan.targets[0]?.label, 0);
      assert.match(headline, /target label 0\b/);
    });
  } finally {
    removeWorkspace(folder);
  }
});
