// The webview in a real Chromium: builds dist/webview.{js,css}, writes standalone pages
// (the CLI's report.html) and a VS Code-style page, and checks what a person would see:
// charts drawn, table/Markdown/CSV numbers equal to the report's, no console errors, no
// CSP violations, no network. Screenshots land in test-results/webview/ for a human look.
//
// A real report is used when there is one: REPORT_JSON=path, or demo-output/report.json.
// Otherwise (and always, for the missing-data cases) a generated report is used whose
// numbers are arbitrary but consistent: thresholds are where the sweep crossed them, etc.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { AuditReport, ChannelMaps, ChannelRank, InspectResult, SweepStep, ThresholdResult } from '../../src/core/types';
import type { ViewState } from '../../src/protocol';
import { resultsCsv, resultsMarkdown } from '../../webview/format';
import { standaloneHtml } from '../../webview/html';
import { ARGS, CHROMIUM, applyVsCodeDark, assertClean, canvasColours, open, openVsCodePage, outDir, root } from './webview-browser';


// ---------- a generated report, internally consistent ----------

function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface FakeOptions { poisoned: boolean; tests: boolean; thresholds: number[]; sweepTo?: number }

export function fakeReport(o: FakeOptions): AuditReport {
  const rand = rng(7);
  const C = 60, H = 10, W = 8, classes = 1283, target = 0;
  // 18 dead channels, 6 backdoor channels (quiet on clean, loud on the trigger), the rest normal
  const kind = Array.from({ length: C }, (_, c) => (c % 10 === 3 ? 'backdoor' : c % 10 === 0 || c % 10 === 7 || c % 10 === 9 ? 'dead' : 'normal'));
  const clean = kind.map((k) => (k === 'dead' ? rand() * 0.002 : k === 'backdoor' ? 0.02 + rand() * 0.06 : 0.2 + rand() * 2.3));
  const pois = kind.map((k, c) => (k === 'dead' ? rand() * 0.003 : k === 'backdoor' ? 2 + rand() * 1.6 : clean[c] * (0.8 + rand() * 0.4)));
  const ranking: ChannelRank[] = clean.map((m, c) => ({ channel: c, meanActivation: m, ...(o.poisoned ? { meanActivationPoisoned: pois[c] } : {}) }))
    .sort((a, b) => a.meanActivation - b.meanActivation);

  const base = 0.9864900;
  const steps: SweepStep[] = [];
  let backdoorPruned = 0;
  let acc = base;
  const last = o.sweepTo ?? C;
  for (let k = 1; k <= last; k++) {
    const ch = ranking[k - 1].channel;
    if (kind[ch] === 'backdoor') backdoorPruned++;
    acc = Math.max(0.001, acc - (k < 36 ? rand() * 0.0004 : 0.0015 * (k - 35) * (0.6 + rand() * 0.8)));
    const asr = Math.max(0, 1 - 0.97 * (backdoorPruned / 6) ** 2 - rand() * 0.002);
    steps.push({ pruned: k, channel: ch, validAccuracy: acc, ...(o.poisoned ? { validAttackRate: asr } : {}) });
  }
  const thresholds: ThresholdResult[] = o.thresholds.map((d) => {
    const step = steps.find((s) => base - s.validAccuracy >= d / 100);
    const end = step ?? steps[steps.length - 1];
    const tAcc = end.validAccuracy - 0.0021;
    const tAsr = end.validAttackRate !== undefined ? Math.min(1, end.validAttackRate + 0.004) : undefined;
    return {
      drop: d,
      reached: !!step,
      pruned: end.pruned,
      prunedChannels: ranking.slice(0, end.pruned).map((r) => r.channel),
      validAccuracy: end.validAccuracy,
      ...(step ? { repairedModel: `out/repaired_${d}.h5` } : {}),
      prunedModel: o.tests ? { testAccuracy: tAcc, ...(o.poisoned ? { testAttackRate: tAsr } : {}) } : {},
      goodNet: o.tests ? {
        testAccuracy: tAcc - 0.0113, cleanFlagged: 0.0147 + d / 1000,
        ...(o.poisoned ? { testAttackRate: tAsr! * 0.93, poisonedFlagged: 1 - tAsr! * 0.93 - 0.0012 } : {}),
      } : {},
    };
  });

  const maps = (source: 'clean' | 'poisoned', index: number): ChannelMaps => {
    const values: number[] = [];
    let max = 0;
    for (let c = 0; c < C; c++) {
      const cy = rand() * H, cx = rand() * W;
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        let v = clean[c] * 2.2 * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 6) * (0.7 + rand() * 0.6);
        // the trigger (sunglasses) sits across the eyes: rows 3-4
        if (source === 'poisoned' && kind[c] === 'backdoor') v = (y >= 3 && y <= 4 ? 4.4 : 0.15) * (0.75 + rand() * 0.5);
        if (kind[c] === 'dead') v = 0;
        values.push(v);
        max = Math.max(max, v);
      }
    }
    const label = Math.floor(rand() * classes);
    return { source, file: `data/${source === 'clean' ? 'cl' : 'bd'}/valid.h5`, index, label, predicted: source === 'clean' ? label : target, height: H, width: W, channels: C, values, max };
  };
  const samples = [0, 1, 2].flatMap((i) => [maps('clean', i), ...(o.poisoned ? [maps('poisoned', i)] : [])]);
  const ds = (file: string, count: number) => ({ file, count, shape: [count, 55, 47, 3], dtype: 'float32', axisOrder: 'channels_last' as const });

  return {
    version: 1,
    createdAt: '2025-11-24T10:15:00.000Z',
    model: '/work/lab3/models/bd_net.h5',
    backend: 'wasm',
    workers: 2,
    layer: 'conv_3',
    rankedBy: 'pool_3 mean activation',
    order: 'increasing',
    classes,
    target,
    options: {
      model: '/work/lab3/models/bd_net.h5', cleanValid: 'data/cl/valid.h5', thresholds: o.thresholds, order: 'increasing',
      rankBy: 'pool', fullSweep: o.sweepTo === undefined, batchSize: 256, sampleMaps: 3,
    },
    data: {
      cleanValid: ds('/work/lab3/data/cl/valid.h5', 11547),
      ...(o.poisoned ? { poisonedValid: ds('/work/lab3/data/bd/bd_valid.h5', 11547) } : {}),
      ...(o.tests ? { cleanTest: ds('/work/lab3/data/cl/test.h5', 12830) } : {}),
      ...(o.tests && o.poisoned ? { poisonedTest: ds('/work/lab3/data/bd/bd_test.h5', 12830) } : {}),
    },
    baseline: {
      validAccuracy: base,
      ...(o.poisoned ? { validAttackRate: 1 } : {}),
      ...(o.tests ? { testAccuracy: 0.9777864 } : {}),
      ...(o.tests && o.poisoned ? { testAttackRate: 1 } : {}),
    },
    ranking,
    steps,
    thresholds,
    repairedNetwork: {
      rule: 'G(x) = B(x) if B(x) = B′(x), else class N (backdoor suspected)', badNet: '/work/lab3/models/bd_net.h5',
      flaggedClass: classes, prunedNets: Object.fromEntries(o.thresholds.map((d) => [String(d), `out/repaired_${d}.h5`])),
    },
    samples,
    timing: { totalSeconds: 41.3, phases: { reading: 2.1, 'lower-layers': 18.2, ranking: 0.4, sweep: 12.8, evaluating: 6.1, writing: 1.7 }, imagesPerSecond: 1290 },
  };
}

function fakeInspect(): InspectResult {
  const conv = (name: string, shape: number[], params: number, inbound: string, zero?: number[]) => ({
    name, className: 'Conv2D', outputShape: [null, ...shape], params, inbound: [inbound], activation: 'relu',
    ...(zero ? { zeroChannels: zero } : {}),
    weightStats: {
      kernel: { count: params - shape[2], min: -0.4121, max: 0.5533, mean: 0.0012, std: 0.0871, zeros: zero ? zero.length / shape[2] : 0 },
      bias: { count: shape[2], min: -0.051, max: 0.133, mean: 0.021, std: 0.031, zeros: zero ? zero.length / shape[2] : 0 },
    },
  });
  const pool = (name: string, shape: number[], inbound: string) => ({ name, className: 'MaxPooling2D', outputShape: [null, ...shape], params: 0, inbound: [inbound] });
  return {
    file: '/work/lab3/models/bd_net.h5', format: 'keras2-h5', kerasVersion: '2.1.6', backendSavedWith: 'tensorflow',
    inputShape: [55, 47, 3], outputClasses: 1283, params: 1220915,
    layers: [
      { name: 'input', className: 'InputLayer', outputShape: [null, 55, 47, 3], params: 0, inbound: [] },
      conv('conv_1', [52, 44, 20], 980, 'input'),
      pool('pool_1', [26, 22, 20], 'conv_1'),
      conv('conv_2', [24, 20, 40], 7240, 'pool_1'),
      pool('pool_2', [12, 10, 40], 'conv_2'),
      conv('conv_3', [10, 8, 60], 21660, 'pool_2', [0, 7, 9, 10, 17, 19, 20, 27, 29]),
      pool('pool_3', [5, 4, 60], 'conv_3'),
      conv('conv_4', [4, 3, 80], 19280, 'pool_3'),
      { name: 'flatten_1', className: 'Flatten', outputShape: [null, 1200], params: 0, inbound: ['pool_3'] },
      { name: 'flatten_2', className: 'Flatten', outputShape: [null, 960], params: 0, inbound: ['conv_4'] },
      { name: 'fc_1', className: 'Dense', outputShape: [null, 160], params: 192160, inbound: ['flatten_1'] },
      { name: 'fc_2', className: 'Dense', outputShape: [null, 160], params: 153760, inbound: ['flatten_2'] },
      { name: 'add_1', className: 'Add', outputShape: [null, 160], params: 0, inbound: ['fc_1', 'fc_2'] },
      { name: 'activation_1', className: 'Activation', outputShape: [null, 160], params: 0, inbound: ['add_1'], activation: 'relu' },
      { name: 'output', className: 'Dense', outputShape: [null, 1283], params: 206563, inbound: ['activation_1'], activation: 'softmax' },
    ],
    warnings: [{ code: 'lambda-layer', layer: 'preprocess', message: 'Lambda layer with Python bytecode in model_config; it is listed, never executed.' }],
  };
}

// ---------- expectations computed here, independently of webview/format.ts ----------

const p4 = (v: number | undefined) => (v === undefined ? undefined : (v * 100).toFixed(4));

/** column label -> expected text, for the baseline row then each threshold by drop */
function expectedRows(r: AuditReport): Record<string, string | undefined>[] {
  const rows: Record<string, string | undefined>[] = [{
    'Channels pruned': '0', 'Valid acc (%)': p4(r.baseline.validAccuracy), 'Test acc (%)': p4(r.baseline.testAccuracy), 'Attack rate (%)': p4(r.baseline.testAttackRate),
  }];
  for (const t of [...r.thresholds].sort((a, b) => a.drop - b.drop)) {
    rows.push({
      'Accuracy drop (%)': String(t.drop),
      'Channels pruned': t.reached ? String(t.pruned) : undefined,
      'Valid acc (%)': p4(t.validAccuracy),
      'Test acc (%)': p4(t.prunedModel.testAccuracy), 'Attack rate (%)': p4(t.prunedModel.testAttackRate),
      'G test acc (%)': p4(t.goodNet.testAccuracy), 'G attack rate (%)': p4(t.goodNet.testAttackRate),
      'G clean flagged (%)': p4(t.goodNet.cleanFlagged), 'G poisoned flagged (%)': p4(t.goodNet.poisonedFlagged),
    });
    const f = t.fineTuned;
    if (f) {
      // the repaired B′ (fine-tuned or unlearned) right under its threshold; valid acc is the last epoch's
      rows.push({
        'Accuracy drop (%)': String(t.drop), 'Channels pruned': String(t.pruned), 'Valid acc (%)': p4(f.epochs[f.epochs.length - 1].validAccuracy),
        'Test acc (%)': p4(f.prunedModel.testAccuracy), 'Attack rate (%)': p4(f.prunedModel.testAttackRate),
        'G test acc (%)': p4(f.goodNet.testAccuracy), 'G attack rate (%)': p4(f.goodNet.testAttackRate),
        'G clean flagged (%)': p4(f.goodNet.cleanFlagged), 'G poisoned flagged (%)': p4(f.goodNet.poisonedFlagged),
      });
    }
  }
  return rows;
}

function checkRows(where: string, header: string[], rows: string[][], r: AuditReport, missing: string) {
  const exp = expectedRows(r);
  assert.equal(rows.length, exp.length, `${where}: row count`);
  exp.forEach((e, i) => {
    for (const [label, want] of Object.entries(e)) {
      const col = header.indexOf(label);
      if (want === undefined) continue;
      assert.ok(col >= 0, `${where}: column ${label} missing`);
      assert.equal(rows[i][col], want, `${where}: row ${i} ${label}`);
    }
  });
  // columns with no value anywhere must not be there at all
  for (const label of ['Attack rate (%)', 'G test acc (%)', 'G attack rate (%)', 'G poisoned flagged (%)']) {
    if (exp.every((e) => e[label] === undefined)) assert.ok(!header.includes(label), `${where}: ${label} should be hidden`);
  }
  void missing;
}

function parseMarkdown(md: string): { header: string[]; rows: string[][] } {
  const lines = md.trim().split('\n').map((l) => l.slice(2, -2).split(' | ').map((c) => c.trim()));
  return { header: lines[0], rows: lines.slice(2).map((r) => r.map((c) => (c === '—' ? '' : c))) };
}

function parseCsv(csv: string): { header: string[]; rows: string[][] } {
  // our CSV quotes nothing numeric; labels have no commas
  const lines = csv.trim().split('\r\n').map((l) => l.split(','));
  return { header: lines[0], rows: lines.slice(1) };
}

// ---------- the results table as the page shows it ----------

async function resultsFromDom(page: Page): Promise<{ header: string[]; rows: string[][] }> {
  return page.$eval('#results-table', (t) => ({
    header: [...t.querySelectorAll('vscode-table-header-cell')].map((c) => c.textContent!.trim()),
    rows: [...t.querySelectorAll('vscode-table-row')].map((r) => [...r.querySelectorAll('vscode-table-cell')].map((c) => {
      const s = c.textContent!.trim();
      return s === '—' ? '' : s;
    })),
  }));
}

// ---------- the tests ----------

// `npm test` installs chromium first (setup:system); elsewhere say what is missing.
const noChromium = existsSync(CHROMIUM) ? false : `SKIP: no Chromium at ${CHROMIUM}: apt-get install -y chromium (npm test does this as root), or set CHROMIUM_PATH`;

describe('webview in Chromium', { timeout: 240_000, skip: noChromium }, () => {
  let browser: Browser;
  let script: string;
  let css: string;

  before(async () => {
    execFileSync(process.execPath, ['scripts/build.mjs', '--only=webview'], { cwd: root, stdio: 'inherit' });
    script = readFileSync(path.join(root, 'dist/webview.js'), 'utf8');
    css = readFileSync(path.join(root, 'dist/webview.css'), 'utf8');
    mkdirSync(outDir, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  after(async () => { await browser?.close(); });

  const write = (name: string, state: ViewState) => {
    const file = path.join(outDir, `${name}.html`);
    writeFileSync(file, standaloneHtml(state, script, css));
    return file;
  };

  const realPath = process.env.REPORT_JSON ?? path.join(root, 'demo-output/report.json');
  const full = existsSync(realPath)
    ? (JSON.parse(readFileSync(realPath, 'utf8')) as AuditReport)
    : fakeReport({ poisoned: true, tests: true, thresholds: [2, 4, 10] });
  const source = existsSync(realPath) ? realPath : 'generated';

  it(`audit page (${source}): charts drawn, numbers equal the report, offline and CSP-clean`, async () => {
    const file = write('audit', { view: 'audit', report: full, reportDir: '/work/lab3/out' });
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light', acceptDownloads: true });
    const { page, watch } = await open(ctx, file);

    const canvases = await canvasColours(page);
    const charts = ['channels', 'curve', 'maps', ...(full.thresholds.some((t) => t.fineTuned) ? ['training'] : [])];
    assert.deepEqual(canvases.map((c) => c.id).sort(), charts, 'one canvas per chart');
    for (const c of canvases) assert.ok(c.colours >= 8 && c.w > 100 && c.h > 50, `canvas in #${c.id} looks blank: ${JSON.stringify(c)}`);

    const dom = await resultsFromDom(page);
    checkRows('table', dom.header, dom.rows, full, '');
    const md = parseMarkdown(resultsMarkdown(full));
    checkRows('markdown', md.header, md.rows, full, '—');
    const csv = parseCsv(resultsCsv(full));
    checkRows('csv', csv.header.slice(0, -1), csv.rows, full, '');
    assert.deepEqual(md.header, dom.header, 'markdown and table have the same columns');

    // hover readout on every chart; keyboard reaches the heat strip and reads a channel
    for (const id of ['curve', 'channels', 'maps']) {
      const box = (await page.locator(`#${id} canvas`).boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.4, box.y + (id === 'maps' ? 70 : box.height * 0.3));
      await page.waitForTimeout(50);
      const tip = await page.locator('.tooltip').textContent();
      assert.match(tip ?? '', id === 'curve' ? /pruned|Baseline/ : /Channel \d+/, `tooltip over #${id}`);
    }
    await page.mouse.move(0, 0);
    await page.locator('#channels canvas').focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    const rd = await page.locator('#channels .readout').textContent();
    assert.match(rd ?? '', new RegExp(`Channel ${full.ranking[1].channel} · pruning rank 2`));
    await page.keyboard.press('Escape');

    // channel order switch keeps working and redraws
    await page.evaluate(() => {
      const s = document.getElementById('order-select') as HTMLElement & { value: string };
      s.value = 'index';
      s.dispatchEvent(new Event('change'));
    });
    await page.waitForTimeout(200);
    assert.ok((await canvasColours(page)).find((c) => c.id === 'maps')!.colours >= 8);

    // standalone Export CSV downloads exactly resultsCsv()
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
    assert.equal(readFileSync((await download.path())!, 'utf8'), resultsCsv(full));

    await page.screenshot({ path: path.join(outDir, 'audit-light.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(250);
    await page.screenshot({ path: path.join(outDir, 'audit-dark.png'), fullPage: true });
    await applyVsCodeDark(page);
    await page.screenshot({ path: path.join(outDir, 'audit-vscode-dark.png'), fullPage: true });
    await page.locator('#curve').scrollIntoViewIfNeeded();
    const box = (await page.locator('#curve canvas').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.62, box.y + 120);
    await page.screenshot({ path: path.join(outDir, 'audit-hover.png') });
    assertClean(watch, pathToFileURL(file).href);
    await ctx.close();
  });

  it('missing data renders gracefully: no poisoned set, no test sets, a threshold not reached', async () => {
    const r = fakeReport({ poisoned: false, tests: false, thresholds: [2, 4, 30], sweepTo: 50 });
    // a hostile file name must stay text: it cannot close the state <script> or add markup
    const hostile = '/tmp/</script><img src=x onerror=alert(1)><!--.h5';
    r.model = hostile;
    assert.ok(r.thresholds.some((t) => !t.reached), 'fixture has an unreached threshold');
    const file = write('audit-minimal', { view: 'audit', report: r, reportDir: '' });
    const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 }, colorScheme: 'dark' });
    const { page, watch } = await open(ctx, file);
    assert.equal(await page.locator('.page-head h1').getAttribute('title'), hostile);
    assert.equal(await page.locator('img').count(), 0, 'no element injected');
    const dom = await resultsFromDom(page);
    checkRows('table', dom.header, dom.rows, r, '');
    assert.deepEqual(dom.header, ['Model', 'Accuracy drop (%)', 'Channels pruned', 'Valid acc (%)']);
    assert.match(dom.rows[3].join(' '), /not reached/);
    assert.match(await page.locator('#channels .summary').textContent() ?? '', /No poisoned validation set/);
    assert.equal(await page.locator('#curve .legend').textContent().then((t) => /attack/.test(t ?? '')), false);
    for (const c of await canvasColours(page)) assert.ok(c.colours >= 5, `blank canvas in #${c.id}`);
    await page.screenshot({ path: path.join(outDir, 'audit-minimal-dark.png'), fullPage: true });
    assertClean(watch, pathToFileURL(file).href);
    await ctx.close();
  });

  it('inspect page: header, warnings, layer table and weight statistics', async () => {
    const insp = process.env.INSPECT_JSON ? (JSON.parse(readFileSync(process.env.INSPECT_JSON, 'utf8')) as InspectResult) : fakeInspect();
    const file = write('inspect', { view: 'inspect', inspect: insp });
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    const { page, watch } = await open(ctx, file);
    const names = await page.$$eval('#layer-table vscode-table-row', (rows) => rows.map((r) => r.querySelector('vscode-table-cell')!.textContent));
    assert.deepEqual(names, insp.layers.map((l) => l.name));
    if (insp.warnings.length) assert.match(await page.locator('.callout.warning').textContent() ?? '', new RegExp(insp.warnings[0].code));
    await page.screenshot({ path: path.join(outDir, 'inspect-light.png'), fullPage: true });
    // keyboard: the tab headers take arrow keys
    await page.locator('vscode-tab-header').first().focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    await page.waitForTimeout(150);
    assert.equal(await page.locator('#weights-table').isVisible(), true, 'weight statistics tab opened with the keyboard');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(outDir, 'inspect-dark.png'), fullPage: true });
    assertClean(watch, pathToFileURL(file).href);
    await ctx.close();
  });

  it('VS Code mode: strict CSP shell, messages to the host, state restored after reload', async () => {
    const { ctx, page, watch, posted } = await openVsCodePage(browser, 'vscode', 'Audit');

    await page.evaluate((report) => window.postMessage({ type: 'show', state: { view: 'audit', report, reportDir: '/out' } }, '*'), full as unknown as Record<string, unknown>);
    await page.waitForSelector('#results-table');
    await page.evaluate((p) => window.postMessage({ type: 'progress', progress: p }, '*'),
      { phase: 'sweep', message: 'pruning channels', step: 12, total: 60, validAccuracy: 0.97, validAttackRate: 0.99 });
    await page.waitForTimeout(100);
    assert.match(await page.locator('#progress').textContent() ?? '', /12 \/ 60/);
    await page.screenshot({ path: path.join(outDir, 'vscode-progress.png'), clip: { x: 0, y: 0, width: 1280, height: 220 } });

    // actions post well-formed messages; a bad threshold list posts nothing
    await page.locator('.open-repaired').first().click();
    await page.click('#copy-md');
    await page.click('#export-csv');
    await page.click('#reveal-report');
    await page.locator('#rerun-field').evaluate((el) => { (el as HTMLElement & { value: string }).value = '2, 4, banana'; });
    await page.click('#rerun');
    await page.locator('#rerun-field').evaluate((el) => { (el as HTMLElement & { value: string }).value = '1, 5,3'; });
    await page.click('#rerun');
    await page.locator('#index-field').evaluate((el) => { (el as HTMLElement & { value: string }).value = '17'; });
    await page.click('text=Load index');
    const msgs = await posted() as { type: string }[];
    const first = [...full.thresholds].sort((a, b) => a.drop - b.drop).find((t) => t.reached)!;
    assert.deepEqual(msgs, [
      { type: 'openRepaired', drop: first.drop },
      { type: 'copyText', text: resultsMarkdown(full) },
      { type: 'exportCsv', csv: resultsCsv(full) },
      { type: 'revealReport' },
      { type: 'rerun', thresholds: [1, 3, 5] },
      { type: 'requestChannelMaps', source: 'clean', index: 17 },
      ...(full.data.poisonedValid ? [{ type: 'requestChannelMaps', source: 'poisoned', index: 17 }] : []),
    ]);

    // the host answers with maps of index 17: the grid switches to them
    const extra = full.samples.filter((m) => m.index === full.samples[0].index).map((m) => ({ ...m, index: 17 }));
    await page.evaluate((maps) => window.postMessage({ type: 'channelMaps', maps }, '*'), extra as unknown as Record<string, unknown>[]);
    await page.waitForTimeout(200);
    assert.match(await page.locator('#maps .map-captions').textContent() ?? '', /#17/);
    // a picked PNG comes back as source 'image' and is shown on its own
    const img = { ...full.samples[full.samples.length - 1], source: 'image', file: '/tmp/trigger.png', index: 0 };
    await page.evaluate((maps) => window.postMessage({ type: 'channelMaps', maps }, '*'), [img] as unknown as Record<string, unknown>[]);
    await page.waitForTimeout(200);
    assert.match(await page.locator('#maps .map-captions').textContent() ?? '', /trigger\.png/);
    assert.ok((await canvasColours(page)).find((c) => c.id === 'maps')!.colours >= 8, 'image maps drawn');
    await page.evaluate(() => {
      const s = document.getElementById('sample-select') as HTMLElement & { value: string };
      s.value = 'idx:17';
      s.dispatchEvent(new Event('change'));
    });
    await page.waitForTimeout(100);
    await page.evaluate(() => window.scrollTo(0, 600));
    await page.waitForTimeout(400);

    // reload: getState brings back the report, the picked sample and the scroll position
    await page.reload();
    await page.waitForSelector('#results-table');
    await page.waitForTimeout(300);
    assert.match(await page.locator('#maps .map-captions').textContent() ?? '', /#17/);
    assert.ok(await page.evaluate(() => window.scrollY) > 400, 'scroll restored');
    await applyVsCodeDark(page);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(outDir, 'vscode-mode-dark.png'), fullPage: true });
    assert.deepEqual(watch.errors, []);
    await ctx.close();
  });
});
