// `npm run test:host`: runs the in-host mocha suite (test/suite) inside a real
// VS Code extension host: code-server in development mode with
// extensionTestsPath, driven by headless chromium. The workbench reports the
// end through window.codeAutomationExit(code); per-test results come back as
// JSON lines the suite appends to $BDA_TEST_RESULTS (see test/suite/index.ts).
// Writes test-results/host-suite.json and prints `N passed, N failed`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  extensionBuilt, hostUnavailableReason, pageConsole, repoRoot, resultsDir, screenshot, withWorkbench,
} from '../../test/e2e/harness';

interface Summary { passed: number; failed: number; skipped: number; skipReason?: string; exitCode?: number; seconds: number }

const t0 = Date.now();
const summaryFile = path.join(resultsDir, 'host-suite.json');
mkdirSync(resultsDir, { recursive: true });

function finish(s: Omit<Summary, 'seconds'>): never {
  const summary = { ...s, seconds: Math.round((Date.now() - t0) / 1000) };
  writeFileSync(summaryFile, `${JSON.stringify(summary, null, 2)}\n`);
  if (s.skipReason) console.log(`# SKIP in-host suite: ${s.skipReason}`);
  console.log(`host: ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped (${summary.seconds}s)`);
  process.exit(s.failed > 0 ? 1 : 0);
}

const skipReason = hostUnavailableReason() ?? (extensionBuilt() ? undefined : 'dist/extension.cjs is missing: run npm run build');
if (skipReason) finish({ passed: 0, failed: 0, skipped: 1, skipReason });

execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'host', 'build-suite.mjs')], { stdio: 'inherit' });

const resultsFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'bda-suite-')), 'results.ndjson');
writeFileSync(resultsFile, '');
const timeoutMs = Number(process.env.BDA_HOST_TIMEOUT_MS ?? 25 * 60_000);

type Line = { event: string; title?: string; ms?: number; error?: string; total?: number };
let printed = 0;
const lines: Line[] = [];
/** Streams new result lines to our stdout as the suite runs. */
function drain(): void {
  const all = readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean);
  for (const raw of all.slice(printed)) {
    const l = JSON.parse(raw) as Line;
    lines.push(l);
    if (l.event === 'start') console.log(`  in-host suite: ${l.total} test(s)`);
    if (l.event === 'pass') console.log(`  ✔ ${l.title} (${l.ms} ms)`);
    if (l.event === 'pending') console.log(`  - ${l.title} (pending)`);
    if (l.event === 'fail') console.log(`  ✖ ${l.title}\n${indent(l.error ?? '')}`);
  }
  printed = all.length;
}
const indent = (s: string) => s.split('\n').map((x) => `      ${x}`).join('\n');

let exitCode: number | undefined;
let failure: string | undefined;
try {
  await withWorkbench('host-suite', {
    extensionDevelopmentPath: repoRoot,
    // VS Code 1.139 import()s this module (ESM loader), so the .js extension is required.
    extensionTestsPath: path.join(repoRoot, 'out', 'test', 'suite', 'index.js'),
    env: { BDA_TEST_RESULTS: resultsFile },
    onAutomationExit: (code) => { exitCode = code; },
  }, async ({ page, server }) => {
    const deadline = Date.now() + timeoutMs;
    while (exitCode === undefined) {
      drain();
      if (Date.now() > deadline) {
        await screenshot(page, 'host-suite-timeout');
        writeFileSync(path.join(resultsDir, 'host-suite-server.log'), server.log());
        throw new Error(`the in-host suite did not finish within ${timeoutMs / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    drain();
    if (exitCode !== 0) {
      writeFileSync(path.join(resultsDir, 'host-suite-server.log'), server.log());
      writeFileSync(path.join(resultsDir, 'host-suite-console.log'), pageConsole(page).join('\n'));
    }
  });
} catch (err) {
  failure = (err as Error).message;
}
drain();
rmSync(path.dirname(resultsFile), { recursive: true, force: true });

const passed = lines.filter((l) => l.event === 'pass').length;
let failed = lines.filter((l) => l.event === 'fail').length;
const skipped = lines.filter((l) => l.event === 'pending').length;
if (failure) { console.log(`  ✖ ${failure}`); failed++; }
// A non-zero exit with no failing test means the suite never ran (load error, crash).
if (exitCode !== undefined && exitCode !== 0 && failed === 0) {
  console.log(`  ✖ extension host exited with code ${exitCode} without reporting a failing test; see test-results/host-suite-console.log and host-suite-server.log`);
  failed++;
}
if (!failure && passed + failed + skipped === 0) { console.log('  ✖ the in-host suite ran no test'); failed++; }
if (existsSync(summaryFile)) rmSync(summaryFile);
finish({ passed, failed, skipped, exitCode });
