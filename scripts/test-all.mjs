#!/usr/bin/env node
// `npm test`: build, unit tests (node --test + tsx), test-host setup, the in-host
// mocha suite (real VS Code extension host) and the e2e tests (real workbench in
// chromium), one after another. Prints one summary line per suite and ends with
// exactly `N passed, N failed, N skipped`; exits non-zero on any failure.
//   --only=build,unit,host,e2e   run a subset (setup runs with host/e2e)
// Suites that cannot run here (no chromium, no code-server, no ../shared) are
// reported as skipped with the reason, never silently dropped.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hostUnavailableReason, repoRoot, resultsDir } from './host/paths.mjs';

const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = onlyArg ? new Set(onlyArg.slice('--only='.length).split(',')) : undefined;
const wants = (s) => !only || only.has(s);

/** @type {{name: string, passed: number, failed: number, skipped: number, seconds: number, note?: string}[]} */
const suites = [];
const say = (s) => console.log(`\n=== ${s} ===`);

/**
 * Runs a command in its own process group, echoing its output live and
 * returning it; the whole group is killed on timeout (servers, browsers).
 */
function run(cmd, args, { timeoutMs = 20 * 60_000, env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; process.stdout.write(d); });
    child.stderr.on('data', (d) => { out += d; process.stderr.write(d); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; killGroup(child.pid); }, timeoutMs);
    const onSignal = () => { killGroup(child.pid); reapServers(); process.exit(130); };
    process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
      killGroup(child.pid); // anything it left behind in its group
      resolve({ code: timedOut ? 124 : (code ?? 1), signal, out, timedOut });
    });
  });
}

function killGroup(pid) {
  try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
}

/**
 * Servers started by test/e2e/harness.ts under this run record their process
 * group in pidDir (BDA_PID_DIR); reap any that a crashed test left behind.
 */
const pidDir = mkdtempSync(path.join(os.tmpdir(), 'bda-pids-'));
process.env.BDA_PID_DIR = pidDir;
function reapServers() {
  for (const f of readdirSync(pidDir).filter((f) => f.endsWith('.pid'))) {
    const pid = Number(f.slice(0, -4));
    try {
      process.kill(pid, 0);
      console.log(`reaping leftover code-server process group ${pid}`);
      killGroup(pid);
    } catch { /* already gone */ }
    rmSync(path.join(pidDir, f), { force: true });
  }
}

/** Totals from node's test runner (spec reporter's closing `ℹ pass N` lines). */
function nodeTestCounts(out) {
  const n = (k) => Number(out.match(new RegExp(`^ℹ ${k} (\\d+)`, 'm'))?.[1] ?? 0);
  return { passed: n('pass'), failed: n('fail') + n('cancelled'), skipped: n('skipped') + n('todo') };
}

function listFiles(dir, suffix) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map((f) => path.join(dir, String(f)))
    .filter((f) => f.endsWith(suffix) && statSync(f).isFile())
    .sort();
}

const rel = (f) => path.relative(repoRoot, f);
const secsSince = (t) => Math.round((Date.now() - t) / 1000);
const t0 = Date.now();

const shared = path.resolve(repoRoot, '..', 'shared');
if (!existsSync(shared)) console.log(`note: ${shared} is missing; tests that need its fixtures will report SKIP`);

// ---------- build ----------
let buildOk = true;
if (wants('build')) {
  say('build');
  const t = Date.now();
  const r = await run(process.execPath, ['scripts/build.mjs']);
  buildOk = r.code === 0;
  // The build is a gate, not a test: it adds a failure when broken and nothing when fine.
  suites.push({ name: 'build', passed: 0, failed: buildOk ? 0 : 1, skipped: 0, seconds: secsSince(t) });
}

// ---------- system packages: the webview unit tests already drive Debian's chromium ----------
if (wants('unit')) {
  say('setup:system');
  const t = Date.now();
  const r = await run(process.execPath, ['scripts/host/setup.mjs', '--system'], { timeoutMs: 20 * 60_000 });
  suites.push({ name: 'setup:system', passed: 0, failed: r.code === 0 ? 0 : 1, skipped: 0, seconds: secsSince(t) });
}

// ---------- unit ----------
if (wants('unit')) {
  say('unit');
  const t = Date.now();
  const files = listFiles(path.join(repoRoot, 'test', 'unit'), '.test.ts');
  if (files.length === 0) {
    suites.push({ name: 'unit', passed: 0, failed: 0, skipped: 0, seconds: 0, note: 'no test/unit/**/*.test.ts files' });
  } else {
    const r = await run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files.map(rel)]);
    const c = nodeTestCounts(r.out);
    // A crash or timeout outside any test still fails the suite.
    if (r.code !== 0 && c.failed === 0) c.failed = 1;
    suites.push({ name: 'unit', ...c, seconds: secsSince(t), note: r.timedOut ? 'timed out' : undefined });
  }
}

// ---------- test host: setup, in-host suite, e2e ----------
let hostSkip;
if (wants('host') || wants('e2e')) {
  say('setup:host');
  const t = Date.now();
  const r = await run(process.execPath, ['scripts/host/setup.mjs'], { timeoutMs: 30 * 60_000 });
  if (r.code !== 0) {
    suites.push({ name: 'setup:host', passed: 0, failed: 1, skipped: 0, seconds: secsSince(t) });
    hostSkip = 'setup:host failed';
  } else {
    hostSkip = hostUnavailableReason();
    suites.push({ name: 'setup:host', passed: 0, failed: 0, skipped: 0, seconds: secsSince(t), note: hostSkip ? `SKIP: ${hostSkip}` : 'ready' });
  }
  if (!hostSkip && !buildOk) hostSkip = 'the build failed';
}

if (wants('host')) {
  say('in-host suite');
  const t = Date.now();
  if (hostSkip) {
    console.log(`# SKIP in-host suite: ${hostSkip}`);
    suites.push({ name: 'host', passed: 0, failed: 0, skipped: 1, seconds: 0, note: `SKIP: ${hostSkip}` });
  } else {
    const summaryFile = path.join(resultsDir, 'host-suite.json');
    rmSync(summaryFile, { force: true });
    const r = await run(process.execPath, ['--import', 'tsx', 'scripts/host/run-suite.ts'], { timeoutMs: 30 * 60_000 });
    reapServers();
    let c = { passed: 0, failed: 1, skipped: 0 };
    try { c = JSON.parse(readFileSync(summaryFile, 'utf8')); } catch { /* runner died before writing it */ }
    if (r.code !== 0 && c.failed === 0) c.failed = 1;
    suites.push({ name: 'host', passed: c.passed, failed: c.failed, skipped: c.skipped, seconds: secsSince(t), note: c.skipReason ? `SKIP: ${c.skipReason}` : undefined });
  }
}

if (wants('e2e')) {
  const files = listFiles(path.join(repoRoot, 'test', 'e2e'), '.e2e.ts');
  for (const f of files) {
    const name = `e2e ${path.basename(f, '.e2e.ts')}`;
    say(name);
    const t = Date.now();
    if (hostSkip) {
      console.log(`# SKIP ${rel(f)}: ${hostSkip}`);
      suites.push({ name, passed: 0, failed: 0, skipped: 1, seconds: 0, note: `SKIP: ${hostSkip}` });
      continue;
    }
    const r = await run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', rel(f)], { timeoutMs: 15 * 60_000 });
    reapServers();
    const c = nodeTestCounts(r.out);
    if (r.code !== 0 && c.failed === 0) c.failed = 1;
    suites.push({ name, ...c, seconds: secsSince(t), note: r.timedOut ? 'timed out' : undefined });
  }
}

// ---------- summary ----------
console.log('\n=== summary ===');
const total = { passed: 0, failed: 0, skipped: 0 };
for (const s of suites) {
  for (const k of Object.keys(total)) total[k] += s[k];
  const mark = s.failed ? 'FAIL' : s.skipped && !s.passed ? 'skip' : 'ok  ';
  console.log(`${mark} ${s.name.padEnd(24)} ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped  ${s.seconds}s${s.note ? `  (${s.note})` : ''}`);
}
console.log(`total time ${secsSince(t0)}s; screenshots and logs of failures: ${rel(resultsDir)}/`);
console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
rmSync(pidDir, { recursive: true, force: true });
process.exit(total.failed > 0 ? 1 : 0);
