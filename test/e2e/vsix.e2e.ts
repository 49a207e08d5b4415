// The packaged extension, as users get it: `npm run package` builds the .vsix, which
// is installed into a fresh code-server with --install-extension (not development
// mode), then models are audited and inspected through the installed copy. Every
// asset the extension runs must be in the package: the worker bundle, the TensorFlow.js
// .wasm files (the backend is pinned to wasm), the webview script and styles, and
// (when bundled) the demo. The successful runs leave the README's screenshots in
// docs/screenshots/ (audit-dark.png, audit-light.png, inspect.png).
//
// Data: the bundled demo when demo/ holds it (no ../shared needed), else the lab
// fixtures from ../shared; the test skips, saying so, when neither is there.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { EXTENSION_ID, explorerContextMenu, hostUnavailableReason, repoRoot, runCommand, withWorkbench } from './harness';
import {
  DEMO_FILES, LAB_CLEAN, LAB_MODEL, LAB_POISONED, answerDataStep, assertChartsDrawn, assertTableMatchesReport, demoDir,
  frameForScreenshot, hasDemo, hasLab, labDir, readReportJson, removeWorkspace, saveScreenshot, screenshotsDir,
  tempWorkspace, waitForAuditView, waitForInspectView,
} from './flows';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };
const vsixPath = path.join(repoRoot, `${pkg.name}-${pkg.version}.vsix`);

const skip = hostUnavailableReason()
  ?? (hasDemo || hasLab ? undefined : `needs the bundled demo (${demoDir}, npm run make-demo) or the lab fixtures (${labDir}); neither is here`);

/** What gets audited: the demo when bundled, else the lab fixture. */
const subject = hasDemo
  ? {
    name: 'demo', model: DEMO_FILES.model, files: Object.values(DEMO_FILES).map((f) => path.join(demoDir, f)),
    // [filter typed, label expected] for the four pickers
    picks: [['valid', DEMO_FILES.cleanValid], ['bd_valid', DEMO_FILES.poisonedValid], ['test', DEMO_FILES.cleanTest], ['bd_test', DEMO_FILES.poisonedTest]],
  }
  : {
    name: 'lab fixture', model: LAB_MODEL, files: [LAB_MODEL, LAB_CLEAN, LAB_POISONED].map((f) => path.join(labDir, f)),
    picks: [['faces_clean', LAB_CLEAN], ['sunglasses', LAB_POISONED], ['faces_clean', LAB_CLEAN], ['sunglasses', LAB_POISONED]],
  };

/** `npm run package`, once for both tests. */
let packaged: Promise<string> | undefined;
function packageOnce(): Promise<string> {
  packaged ??= (async () => {
    rmSync(vsixPath, { force: true });
    const t = Date.now();
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    try {
      execFileSync(npm, ['run', '--silent', 'package', '--', '--target', 'universal'], { cwd: repoRoot, encoding: 'utf8', stdio: 'pipe', timeout: 180_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`npm run package failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
    }
    assert.ok(existsSync(vsixPath), `npm run package did not write ${vsixPath}`);
    console.log(`packaged ${path.basename(vsixPath)} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    return vsixPath;
  })();
  return packaged;
}

/** The extension is installed in the server's extensions folder (not loaded from the repo), with the README's images. */
function assertInstalled(extensionsDir: string): void {
  const dirs = readdirSync(extensionsDir).filter((d) => d.toLowerCase().startsWith(`${EXTENSION_ID}-`));
  assert.deepEqual(dirs, [`${EXTENSION_ID}-${pkg.version}`], `installed extensions: ${readdirSync(extensionsDir).join(', ')}`);
  const installed = path.join(extensionsDir, dirs[0]);
  const readme = readdirSync(installed).find((f) => f.toLowerCase() === 'readme.md'); // vsce writes readme.md
  assert.ok(readme, `no README in ${installed}`);
  const images = [...readFileSync(path.join(installed, readme), 'utf8').matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]);
  assert.ok(images.length > 0, 'the installed README shows no images');
  for (const img of images) assert.ok(existsSync(path.join(installed, img)), `the installed README shows ${img}, which the .vsix lacks`);
}

const settings = (theme: string) => ({
  'workbench.colorTheme': theme,
  // The installed extension has no native TensorFlow: pin the WebAssembly backend so
  // a missing .wasm file fails the audit instead of falling back to plain JS.
  'backdoorAudit.backend': 'wasm',
});

test(`installed .vsix audits the ${subject.name} from the explorer (dark theme)`, { skip, timeout: 180_000 }, async () => {
  const vsix = await packageOnce();
  const folder = tempWorkspace(subject.files, 'badnet-audit');
  try {
    await withWorkbench('vsix-audit-dark', { vsix: [vsix], folder, settings: settings('Default Dark Modern') }, async ({ page, server }) => {
      assertInstalled(server.extensionsDir);
      assert.doesNotMatch(await page.title(), /Extension Development Host/);
      await explorerContextMenu(page, subject.model, 'Audit for Backdoors…');
      for (const [i, [filter, label]] of subject.picks.entries()) await answerDataStep(page, i + 1, filter, label);

      const frame = await waitForAuditView(page, subject.model, 90_000);
      const report = readReportJson(path.join(folder, `${subject.model}.audit`));
      assert.equal(report.backend, 'wasm');
      await assertTableMatchesReport(frame, report);
      await assertChartsDrawn(frame);

      await frameForScreenshot(page, frame, 'channels');
      await assertChartsDrawn(frame);
      await saveScreenshot(page, path.join(screenshotsDir, 'audit-dark.png'));
    });
  } finally {
    removeWorkspace(folder);
  }
});

test('installed .vsix: Inspect Model and the audit view in the light theme', { skip, timeout: 180_000 }, async () => {
  const vsix = await packageOnce();
  // The inspect view is most telling on the lab's pruned model (45 zeroed channels).
  const inspectFiles = hasLab ? [path.join(labDir, LAB_MODEL)] : [];
  const folder = tempWorkspace([...subject.files, ...inspectFiles], 'badnet-audit');
  const inspected = hasLab ? LAB_MODEL : subject.model;
  try {
    await withWorkbench('vsix-light', { vsix: [vsix], folder, settings: settings('Default Light Modern') }, async ({ page, server }) => {
      assertInstalled(server.extensionsDir);
      await explorerContextMenu(page, inspected, 'Inspect Model');
      const view = await waitForInspectView(page, inspected);
      assert.ok(view.layers.some((l) => l[0] === 'conv_3'), `no conv_3 in ${JSON.stringify(view.layers.map((l) => l[0]))}`);
      if (hasLab) assert.match(view.notes, /conv_3 \(45\)/);
      await frameForScreenshot(page, view.frame);
      await saveScreenshot(page, path.join(screenshotsDir, 'inspect.png'));
      await runCommand(page, 'View: Close All Editors');

      // The demo command shows the bundled demo (from the package); without a demo,
      // audit the fixture from the explorer.
      if (hasDemo) {
        await runCommand(page, 'Backdoor Audit: Open Demo');
      } else {
        await runCommand(page, 'File: Focus on Files Explorer'); // the screenshot closed the side bar
        await explorerContextMenu(page, subject.model, 'Audit for Backdoors…');
        for (const [i, [filter, label]] of subject.picks.entries()) await answerDataStep(page, i + 1, filter, label);
      }
      const frame = await waitForAuditView(page, subject.model, 90_000);
      await assertChartsDrawn(frame);
      if (!hasDemo) await assertTableMatchesReport(frame, readReportJson(path.join(folder, `${subject.model}.audit`)));
      await frameForScreenshot(page, frame, 'channels');
      await assertChartsDrawn(frame);
      await saveScreenshot(page, path.join(screenshotsDir, 'audit-light.png'));
    });
  } finally {
    removeWorkspace(folder);
  }
});
