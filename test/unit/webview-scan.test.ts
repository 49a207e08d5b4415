// The scan view in a real Chromium, on a real scan: the CLI scans the bundled demo
// BadNet (demo/bd_net.h5 with demo/valid.h5) and then audits it with the reconstructed
// trigger, and the pages show those files. Checks what a person would see: the verdict
// first with its evidence, the stimulation chart and the trigger pictures drawn, the
// candidates table and its Markdown equal to scan.json, keyboard readouts, the
// "Audit with this trigger" message to the host, and an audit with a reconstructed
// trigger marked as estimated wherever it shows an attack rate.
// SCAN_DIR=path (a finished scan folder) skips the scan and uses that one.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { AuditReport, ScanReport } from '../../src/core/types';
import type { ViewState } from '../../src/protocol';
import { resultsMarkdown } from '../../webview/format';
import { standaloneHtml } from '../../webview/html';
import { candidatesMarkdown } from '../../webview/scanFormat';
import { ARGS, CHROMIUM, applyVsCodeDark, assertClean, canvasColours, open, openVsCodePage, outDir, root } from './webview-browser';

const demo = (f: string) => path.join(root, 'demo', f);
const cli = (args: string[]) => execFileSync(process.execPath, [path.join(root, 'dist/cli.mjs'), ...args], { cwd: root, stdio: 'pipe' });

/** The candidates table as the page shows it: header and cell texts. */
async function candidatesFromDom(page: Page): Promise<{ header: string[]; rows: string[][] }> {
  return page.$eval('#candidates-table', (t) => ({
    header: [...t.querySelectorAll('vscode-table-header-cell')].map((c) => c.textContent!.trim()),
    rows: [...t.querySelectorAll('vscode-table-row')].map((r) => [...r.querySelectorAll('vscode-table-cell')].map((c) => c.textContent!.trim())),
  }));
}

/** RGBA pixels of one picture canvas, to compare pictures with each other. */
async function pixels(page: Page, id: string): Promise<number[]> {
  return page.$eval(`#${id}`, (c) => {
    const canvas = c as HTMLCanvasElement;
    return [...canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data];
  });
}

describe('scan view in Chromium', { timeout: 600_000 }, () => {
  let browser: Browser;
  let script: string;
  let css: string;
  let scanDir: string;
  let scan: ScanReport;
  let tmp: string;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);
    execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
    script = readFileSync(path.join(root, 'dist/webview.js'), 'utf8');
    css = readFileSync(path.join(root, 'dist/webview.css'), 'utf8');
    mkdirSync(outDir, { recursive: true });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'webview-scan-'));
    scanDir = process.env.SCAN_DIR ?? path.join(tmp, 'bd_net.h5.scan');
    if (!process.env.SCAN_DIR) cli(['scan', demo('bd_net.h5'), '--clean', demo('valid.h5'), '--out', scanDir]);
    scan = JSON.parse(readFileSync(path.join(scanDir, 'scan.json'), 'utf8')) as ScanReport;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(async () => { await browser?.close(); });

  const write = (name: string, state: ViewState) => {
    const file = path.join(outDir, `${name}.html`);
    writeFileSync(file, standaloneHtml(state, script, css));
    return file;
  };

  it('scan page: verdict and evidence first, chart and pictures drawn, table equal to scan.json, offline and CSP-clean', async () => {
    const file = write('scan', { view: 'scan', report: scan, reportDir: scanDir });
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
    const { page, watch } = await open(ctx, file);

    // The verdict comes first, right under the header, with every evidence sentence of scan.json.
    assert.equal(await page.$eval('.view.scan', (v) => v.children[1]?.id), 'verdict');
    const verdict = await page.locator('#verdict h2').textContent() ?? '';
    assert.match(verdict, new RegExp(`^${scan.verdict}`, 'i'));
    for (const t of scan.targets) assert.match(verdict, new RegExp(`\\b${t.label}\\b`), `target ${t.label} in the headline`);
    assert.deepEqual(await page.locator('#verdict .evidence li').allTextContents(), scan.evidence);

    // Stimulation chart and the four pictures are drawn; the stamped image differs from the clean one.
    const canvases = await canvasColours(page);
    const chart = canvases.find((c) => c.id === 'stimulation');
    assert.ok(chart && chart.colours >= 4 && chart.w > 100, `stimulation chart looks blank: ${JSON.stringify(chart)}`);
    const pictureIds = ['picture-mask', 'picture-pattern', 'picture-clean', 'picture-stamped'];
    if (scan.preview?.mask) {
      for (const id of pictureIds) assert.equal(await page.locator(`#${id}`).count(), 1, `${id} shown`);
      assert.ok(canvases.filter((c) => c.id === 'trigger').every((c) => c.colours >= 2), 'no blank picture');
      assert.notDeepEqual(await pixels(page, 'picture-clean'), await pixels(page, 'picture-stamped'), 'the trigger changes the image');
      assert.match(await page.locator('#mask-text').textContent() ?? '', /^Mask L1 /);
    }

    // Candidates: one row per optimised label, numbers as in scan.json (computed here, not by scanFormat).
    const dom = await candidatesFromDom(page);
    assert.deepEqual(dom.header, ['Label', 'Role', 'Mask L1', 'Trigger attack rate', 'Anomaly index', 'Compromised channels']);
    assert.equal(dom.rows.length, scan.labels.length);
    if (scan.targets.length) assert.equal(dom.rows[0][0], String(scan.targets[0].label), 'the top target is the first row');
    for (const row of dom.rows) {
      const l = scan.labels.find((x) => String(x.label) === row[0]);
      assert.ok(l, `row for label ${row[0]} is in scan.json`);
      assert.ok(Math.abs(Number(row[2]) - l.maskL1) <= 1e-3 * Math.max(1, l.maskL1), `mask L1 of ${l.label}: ${row[2]} vs ${l.maskL1}`);
      assert.equal(row[3], `${(l.triggerAttackRate * 100).toFixed(4)}%`);
      assert.equal(row[4], l.anomalyIndex.toFixed(2));
      const pushing = scan.channels.filter((c) => c.compromised && c.label === l.label).map((c) => c.channel);
      assert.equal(row[5], pushing.length ? pushing.join(', ') : '—');
    }
    // Copy as Markdown gives the same table.
    const md = candidatesMarkdown(scan).trim().split('\n').map((line) => line.slice(2, -2).split(' | ').map((c) => c.trim()));
    assert.deepEqual(md[0], dom.header);
    assert.deepEqual(md.slice(2), dom.rows);

    // Hover and keyboard readouts on the stimulation chart; its text twin lists every channel.
    const box = (await page.locator('#stimulation canvas').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.6);
    assert.match(await page.locator('.tooltip').textContent() ?? '', /Channel \d+/);
    await page.mouse.move(0, 0);
    await page.locator('#stimulation canvas').focus();
    await page.keyboard.press('ArrowRight');
    const first = [...scan.channels].sort((a, b) => a.channel - b.channel)[0];
    assert.match(await page.locator('#stimulation .readout').textContent() ?? '', new RegExp(`^Channel ${first.channel}\\b.*label ${first.label}`));
    await page.keyboard.press('Escape');
    assert.equal(await page.locator('#stimulation table.data tbody tr').count(), scan.channels.length);

    await page.screenshot({ path: path.join(outDir, 'scan-light.png'), fullPage: true });
    await applyVsCodeDark(page);
    await page.screenshot({ path: path.join(outDir, 'scan-vscode-dark.png'), fullPage: true });
    assertClean(watch, pathToFileURL(file).href);
    await ctx.close();
  });

  it('a scan of too few clean images to confirm any trigger says inconclusive, not clean, in the headline, the card and the panel colour', async () => {
    // A real scan of the demo BadNet on 5 clean images: 3 to optimise on, 2 held out, so no test can fire.
    const fewDir = path.join(tmp, 'few.scan');
    cli(['scan', demo('bd_net.h5'), '--clean', demo('valid.h5'), '--images', '5', '--out', fewDir]);
    const few = JSON.parse(readFileSync(path.join(fewDir, 'scan.json'), 'utf8')) as ScanReport;
    assert.deepEqual([few.verdict, few.conclusive], ['clean', false]);
    const file = write('scan-inconclusive', { view: 'scan', report: few, reportDir: fewDir });
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
    const { page, watch } = await open(ctx, file);
    assert.match(await page.locator('#verdict h2').textContent() ?? '', /^inconclusive · No backdoor confirmed: too few held-out clean images/);
    assert.equal(await page.$eval('#verdict', (v) => v.className), 'panel verdict warn');
    assert.match(await page.locator('.card.warn').textContent() ?? '', /Verdictinconclusivetoo few clean images/);
    assert.ok((await page.locator('#verdict .evidence li').allTextContents()).some((e) => e.startsWith('only 2 held-out clean images')));
    await page.screenshot({ path: path.join(outDir, 'scan-inconclusive.png') });
    assertClean(watch, pathToFileURL(file).href);
    await ctx.close();
  });

  it('VS Code mode: "Audit with this trigger", Copy as Markdown and Reveal post their messages; reload restores the view', async () => {
    const { ctx, page, watch, posted } = await openVsCodePage(browser, 'vscode-scan', 'Scan');

    await page.evaluate((report) => window.postMessage({ type: 'show', state: { view: 'scan', report, reportDir: '/ws/bd_net.h5.scan' } }, '*'),
      scan as unknown as Record<string, unknown>);
    await page.waitForSelector('#candidates-table');
    // A scan's progress (no accuracies) shows its phase and step.
    await page.evaluate((p) => window.postMessage({ type: 'progress', progress: p }, '*'),
      { phase: 'trigger', message: 'label 0', step: 2, total: 23 });
    await page.waitForFunction(() => /2 \/ 23/.test(document.getElementById('progress')?.textContent ?? ''));

    const withTrigger = scan.labels.filter((l) => l.trigger);
    assert.equal(await page.locator('.audit-with-trigger').count(), withTrigger.length, 'one button per label with a trigger file');
    const label = (scan.targets[0] ?? withTrigger[0]).label;
    await page.locator(`.audit-with-trigger[data-label="${label}"]`).click();
    await page.click('#copy-candidates-md');
    await page.click('#reveal-scan');
    assert.deepEqual(await posted(), [
      { type: 'auditWithTrigger', label },
      { type: 'copyText', text: candidatesMarkdown(scan) },
      { type: 'revealReport' },
    ]);

    await page.reload();
    await page.waitForSelector('#candidates-table');
    assert.equal(await page.locator('#verdict .evidence li').count(), scan.evidence.length, 'restored from getState');
    assert.deepEqual(watch.errors, []);
    await ctx.close();
  });

  it('an audit with a reconstructed trigger says "estimated" wherever it shows an attack rate', async () => {
    // The audit "Audit with this trigger" runs, here from the CLI: the top target's trigger (else the first label's).
    const target = scan.targets[0] ?? scan.labels.find((l) => l.trigger)!;
    const auditDir = path.join(tmp, `bd_net.h5.trigger_${target.label}.audit`);
    cli(['audit', demo('bd_net.h5'), '--clean-valid', demo('valid.h5'), '--clean-test', demo('test.h5'),
      '--trigger', path.join(scanDir, target.trigger!), '--out', auditDir]);
    const audit = JSON.parse(readFileSync(path.join(auditDir, 'report.json'), 'utf8')) as AuditReport;
    assert.equal(audit.attackEstimate, 'reconstructed-trigger', 'the CLI marks the audit');
    const file = write('audit-estimated', { view: 'audit', report: audit, reportDir: '/ws/bd_net.h5.trigger_0.audit' });
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
    const { page, watch } = await open(ctx, file);
    assert.match(await page.locator('#attack-estimate').textContent() ?? '', /attack rate estimated with a reconstructed trigger/);
    assert.match(await page.locator('.cards').textContent() ?? '', /Est\. attack rate \(B\)/);
    const header = await page.$$eval('#results-table vscode-table-header-cell', (cs) => cs.map((c) => c.textContent!.trim()));
    assert.ok(header.includes('Est. attack rate (%)'), `results table header: ${header.join(' | ')}`);
    assert.ok(!header.includes('Attack rate (%)'), 'no unmarked attack-rate column');
    assert.match(await page.locator('#curve .legend').textContent() ?? '', /estimated with a reconstructed trigger/);
    assert.match(resultsMarkdown(audit), /Est\.: attack rate estimated with a reconstructed trigger/);
    await page.screenshot({ path: path.join(outDir, 'audit-estimated.png'), fullPage: true });
    assertClean(watch, pathToFileURL(file).href);
    await ctx.close();
  });
});
