// Drives a real VS Code workbench offline: code-server (installed by
// `npm run setup:host`) on 127.0.0.1 + Debian chromium through playwright-core.
// Used by the e2e tests (test/e2e/*.e2e.ts) and by the in-host mocha runner
// (scripts/host/run-suite.ts). Every server runs in its own process group and
// is killed on teardown, on process exit, and (via a pid file in $BDA_PID_DIR) by test-all.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type FrameLocator, type Locator, type Page } from 'playwright-core';
import {
  CHROMIUM, codeServerEntry, hostUnavailableReason, nodeBin, repoRoot, resultsDir,
} from '../../scripts/host/paths.mjs';

export { hostUnavailableReason, repoRoot, resultsDir };

export const EXTENSION_ID = 'backdoor-audit.backdoor-audit';

export interface ServerOptions {
  /** Workspace trust on (needed by the trust test). Default off: --disable-workspace-trust. */
  trust?: boolean;
  /** Written to User/settings.json before the server starts. */
  settings?: Record<string, unknown>;
  /** .vsix files installed with code-server's --install-extension before start. */
  vsix?: string[];
  /** Extra environment for the server and so for the extension host. */
  env?: Record<string, string>;
}

export interface CodeServer {
  url: string;
  port: number;
  /** temp root holding home/, user-data/, extensions/, server.log */
  dir: string;
  userDataDir: string;
  extensionsDir: string;
  logFile: string;
  /** pid of the server, which leads its process group (extension hosts and their workers are in it) */
  pid: number;
  log(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
// Last resort if a test forgets teardown, throws past it, or is interrupted.
const killAll = () => { for (const p of live) killGroup(p.pid, 'SIGKILL'); };
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => { killAll(); process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1)); });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try { process.kill(-pid, signal); } catch { /* already gone */ }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    }).on('error', reject);
  });
}

/** Environment without anything that would make code-server think it runs inside another VS Code. */
function cleanEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(VSCODE_|ELECTRON_|npm_)/i.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Install a .vsix into a server's extensions dir (the server must not be running yet, or restart it). */
export function installVsix(vsixPath: string, dirs: { userDataDir: string; extensionsDir: string; home: string }): string {
  return execFileSync(nodeBin, [codeServerEntry, '--user-data-dir', dirs.userDataDir,
    '--extensions-dir', dirs.extensionsDir, '--install-extension', path.resolve(vsixPath), '--force'], {
    encoding: 'utf8', env: cleanEnv({ HOME: dirs.home, EXTENSIONS_GALLERY: '{}' }), timeout: 120_000,
  });
}

export async function startCodeServer(opts: ServerOptions = {}): Promise<CodeServer> {
  const why = hostUnavailableReason();
  if (why) throw new Error(`test host unavailable: ${why}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bda-cs-'));
  const home = path.join(dir, 'home');
  const userDataDir = path.join(dir, 'user-data');
  const extensionsDir = path.join(dir, 'extensions');
  for (const d of [home, path.join(userDataDir, 'User'), extensionsDir]) mkdirSync(d, { recursive: true });
  const settings = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    'security.workspace.trust.enabled': !!opts.trust,
    'security.workspace.trust.startupPrompt': 'never',
    // Keep the screen about our extension: no chat side bar, no welcome pages.
    'chat.disableAIFeatures': true,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    ...opts.settings,
  };
  writeFileSync(path.join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  for (const v of opts.vsix ?? []) installVsix(v, { userDataDir, extensionsDir, home });

  const port = await freePort();
  const logFile = path.join(dir, 'server.log');
  const fd = openSync(logFile, 'a');
  const args = [codeServerEntry, '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
    '--disable-telemetry', '--disable-update-check', '--reconnection-grace-time', '5',
    '--vscode-option', 'enable-smoke-test-driver', '--ignore-last-opened',
    '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir];
  if (!opts.trust) args.push('--disable-workspace-trust');
  const proc = spawn(nodeBin, args, {
    detached: true, // own process group: teardown kills the server and its extension hosts together
    stdio: ['ignore', fd, fd],
    env: cleanEnv({ HOME: home, EXTENSIONS_GALLERY: '{}', ...opts.env }),
  });
  closeSync(fd);
  live.add(proc);
  // scripts/test-all.mjs gives each run its own folder here and reaps only what
  // is recorded in it, so servers of other sessions using the harness are never touched.
  const pidDir = process.env.BDA_PID_DIR;
  const pidFile = pidDir ? path.join(pidDir, `${proc.pid}.pid`) : undefined;
  if (pidFile) { mkdirSync(pidDir!, { recursive: true }); writeFileSync(pidFile, String(proc.pid)); }

  let exited = false;
  proc.on('exit', () => { exited = true; });
  const readLog = () => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };
  const stop = async () => {
    if (!live.has(proc)) return;
    live.delete(proc);
    killGroup(proc.pid, 'SIGTERM');
    for (let i = 0; i < 50 && !exited; i++) await sleep(100);
    killGroup(proc.pid, 'SIGKILL'); // extension hosts may outlive the server briefly
    if (pidFile) rmSync(pidFile, { force: true });
    if (!process.env.BDA_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) { const l = readLog(); await stop(); throw new Error(`code-server exited early:\n${l}`); }
    try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* not listening yet */ }
    if (Date.now() > deadline) { const l = readLog(); await stop(); throw new Error(`code-server did not start in 60 s:\n${l}`); }
    await sleep(200);
  }
  return { url, port, dir, userDataDir, extensionsDir, logFile, pid: proc.pid!, log: readLog, stop };
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface WorkbenchOptions {
  /** Absolute path of an extension to load in development mode (usually repoRoot). */
  extensionDevelopmentPath?: string;
  /** Absolute path (with .js: VS Code import()s it) of the mocha entry module run in the extension host. */
  extensionTestsPath?: string;
  /** Called with the exit code when an extensionTestsPath run ends. */
  onAutomationExit?: (code: number) => void;
  /** Time to wait for the workbench to render. */
  timeoutMs?: number;
}

const consoles = new WeakMap<Page, string[]>();
/** Console messages of a workbench page (renderer + forwarded extension host console). */
export function pageConsole(page: Page): string[] {
  return consoles.get(page) ?? [];
}

const remote = (abs: string) => `vscode-remote://remote${path.resolve(abs)}`;

/** Opens `folder` in a new page. Workbench is ready when it returns (extensions may still be activating). */
export async function openWorkbench(server: CodeServer, browser: Browser, folder: string, opts: WorkbenchOptions = {}): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // The extension host's console is forwarded to the page console: keep it for failure reports.
  const lines: string[] = [];
  consoles.set(page, lines);
  page.on('console', (m) => {
    lines.push(`[${m.type()}] ${m.text()}`);
    if (process.env.BDA_VERBOSE) console.error(`[page ${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => lines.push(`[pageerror] ${e.stack ?? e.message}`));
  if (opts.onAutomationExit) {
    const cb = opts.onAutomationExit;
    await page.exposeFunction('codeAutomationExit', (code: number) => cb(code));
  }
  const payload: [string, string][] = [];
  if (opts.extensionDevelopmentPath) payload.push(['extensionDevelopmentPath', remote(opts.extensionDevelopmentPath)]);
  if (opts.extensionTestsPath) payload.push(['extensionTestsPath', remote(opts.extensionTestsPath)]);
  let url = `${server.url}/?folder=${encodeURIComponent(path.resolve(folder))}`;
  if (payload.length) url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  await page.goto(url);
  await page.locator('.monaco-workbench').waitFor({ timeout: opts.timeoutMs ?? 60_000 });
  // The status bar appears once the workbench is laid out.
  await page.locator('.statusbar').waitFor({ timeout: opts.timeoutMs ?? 60_000 });
  return page;
}

// ---------- workbench helpers ----------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quickInput = (page: Page) => page.locator('.quick-input-widget');
const quickRows = (page: Page) => quickInput(page).locator('.monaco-list-row');

async function closeQuickInput(page: Page): Promise<void> {
  if (await quickInput(page).isVisible()) {
    await page.keyboard.press('Escape');
    // It fades out; typing into a closing widget would hang until Playwright's timeout.
    await quickInput(page).waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
  }
}

async function openPalette(page: Page): Promise<void> {
  await closeQuickInput(page);
  await page.keyboard.press('F1');
  await quickInput(page).locator('input').waitFor({ state: 'visible', timeout: 10_000 });
}

/**
 * Opens the palette on `title` and returns its row. Retries because the palette
 * can open before the extension's commands register.
 */
async function findCommandRow(page: Page, title: string, timeoutMs: number): Promise<Locator> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await openPalette(page);
      await quickInput(page).locator('input').fill(`>${title}`, { timeout: 5_000 });
      const row = quickRows(page).filter({ has: page.locator('.label-name', { hasText: exactText(title) }) }).first();
      await row.waitFor({ state: 'visible', timeout: 2_000 });
      return row;
    } catch (err) {
      await closeQuickInput(page);
      if (Date.now() > deadline) throw new Error(`command "${title}" not in the palette after ${timeoutMs} ms (${(err as Error).message.split('\n')[0]})`);
      await sleep(1_000);
    }
  }
}

/** Runs a command by its palette label (e.g. "Backdoor Audit: Inspect Model"). */
export async function runCommand(page: Page, title: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await findCommandRow(page, title, Math.max(1_000, deadline - Date.now()));
    try {
      await row.click({ timeout: 5_000 });
      break;
    } catch (err) {
      // The palette closed under us (a panel an earlier command revealed took the focus):
      // the command did not run, so open the palette again.
      if (Date.now() > deadline) throw new Error(`could not run "${title}" from the palette: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  // Let the palette go away, so a quick pick the command opens is not mistaken for it.
  const box = quickInput(page).locator('input');
  for (let i = 0; i < 50; i++) {
    if (!(await quickInput(page).isVisible()) || !(await box.inputValue().catch(() => '')).startsWith('>')) return;
    await sleep(100);
  }
}

/** True when the palette lists a command with this exact label (within timeoutMs). */
export async function hasCommand(page: Page, title: string, timeoutMs = 10_000): Promise<boolean> {
  try {
    await findCommandRow(page, title, timeoutMs);
    return true;
  } catch {
    return false;
  } finally {
    await closeQuickInput(page);
  }
}

/** The palette highlights matches in spans, so compare the label's whole text. */
function exactText(s: string): RegExp {
  return new RegExp(`^\\s*${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
}

/**
 * Text of the extension's row in "Developer: Show Running Extensions" (contains
 * "Activation: N ms" once activated), or undefined when it is not running.
 * The list is virtualized, so it is scrolled through with the keyboard.
 */
export async function runningExtensionRow(page: Page, name: RegExp, timeoutMs = 30_000): Promise<string | undefined> {
  await runCommand(page, 'Developer: Show Running Extensions');
  const list = page.locator('.runtime-extensions-editor .monaco-list');
  const rows = list.locator('.monaco-list-row');
  await rows.first().waitFor({ timeout: timeoutMs });
  await rows.first().click();
  for (let i = 0; i < 30; i++) {
    const row = rows.filter({ hasText: name }).first();
    if (await row.isVisible()) return (await row.textContent()) ?? '';
    await page.keyboard.press('PageDown');
    await sleep(200);
  }
  return undefined;
}

/** Waits for an open quick pick / input box. */
export async function waitForQuickInput(page: Page, timeoutMs = 15_000): Promise<void> {
  await quickInput(page).locator('input').waitFor({ state: 'visible', timeout: timeoutMs });
}

/** Labels of the rows in the open quick pick. */
export async function quickPickItems(page: Page): Promise<string[]> {
  await waitForQuickInput(page);
  return (await quickRows(page).locator('.label-name').allTextContents()).map((s) => s.trim());
}

/** Selects the quick pick row whose label contains `label` (string) or matches it (RegExp). */
export async function pickQuickItem(page: Page, label: string | RegExp, timeoutMs = 15_000): Promise<void> {
  await waitForQuickInput(page, timeoutMs);
  const row = quickRows(page).filter({ has: page.locator('.label-name', { hasText: label }) }).first();
  await row.waitFor({ state: 'visible', timeout: timeoutMs });
  await row.click();
}

/** Types into the open quick input / input box (replacing its value) and accepts with Enter. */
export async function fillQuickInput(page: Page, text: string, timeoutMs = 15_000): Promise<void> {
  await waitForQuickInput(page, timeoutMs);
  const box = quickInput(page).locator('input');
  await box.fill(text);
  await box.press('Enter');
}

/**
 * Answers code-server's "simple" file dialog (showOpenDialog/showSaveDialog in the
 * browser workbench): types the absolute path and accepts.
 */
export async function pickFile(page: Page, absPath: string, timeoutMs = 15_000): Promise<void> {
  await waitForQuickInput(page, timeoutMs);
  const widget = quickInput(page);
  const box = widget.locator('input');
  const title = widget.locator('.quick-input-title');
  const deadline = Date.now() + timeoutMs;
  // The dialog writes its start folder into the box once it has read it: a path typed
  // before then is overwritten (and Enter on the folder says "Please select a file").
  while (!(await box.inputValue()) && Date.now() < deadline) await sleep(50);
  const dialogTitle = (await title.textContent()) ?? '';
  // Gone, or replaced by whatever the command shows next (often a quick pick in the same widget).
  const closed = async () => !(await widget.isVisible()) || ((await title.textContent()) ?? '') !== dialogTitle;
  const closes = async (ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await closed()) return true;
    return closed();
  };
  for (;;) {
    await box.fill(absPath);
    // The list follows the typed path; the file's row shows once it is resolved.
    await widget.locator('.monaco-list-row', { hasText: path.basename(absPath) }).first()
      .waitFor({ state: 'visible', timeout: 3_000 }).catch(() => undefined);
    if ((await box.inputValue()) === absPath) {
      await box.press('Enter');
      if (await closes(2_000)) return;
      // Some dialogs take a second Enter (OK) once the path resolves to a file.
      if ((await box.inputValue()) === absPath) {
        await box.press('Enter');
        if (await closes(2_000)) return;
      }
    }
    if (Date.now() > deadline) throw new Error(`the file dialog did not take ${absPath} (it shows "${await box.inputValue()}")`);
  }
}

// Notifications: with enable-smoke-test-driver (which the harness needs) VS Code
// shows no toasts at all; every notification goes to the notification center only.
// These helpers look at toasts first (for hosts without the driver) and otherwise
// open the center with the bell in the status bar.

const notificationCenter = (page: Page) => page.locator('.notifications-center');
const toastOrCenterItem = (page: Page, text: string | RegExp) => page.locator(
  '.notifications-toasts .notification-toast, .notifications-center .notification-list-item', { hasText: text },
).first();

/** Opens the notification center (a no-op when it is open) and returns it. */
export async function openNotificationCenter(page: Page): Promise<Locator> {
  const center = notificationCenter(page);
  if (!(await center.isVisible())) {
    await page.locator('#status\\.notifications').click();
    await center.waitFor({ state: 'visible', timeout: 5_000 });
  }
  return center;
}

/** Closes the notification center when it is open. */
export async function closeNotificationCenter(page: Page): Promise<void> {
  const center = notificationCenter(page);
  if (await center.isVisible()) {
    await page.locator('#status\\.notifications').click();
    await center.waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
  }
}

/**
 * Waits for a notification (toast, or item of the notification center, which is
 * opened as needed: the center closes itself when its last item goes) whose text
 * matches; returns its text.
 */
export async function waitForNotification(page: Page, text: string | RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const item = toastOrCenterItem(page, text);
  for (;;) {
    if (await item.isVisible()) return (await item.textContent()) ?? '';
    if (Date.now() > deadline) throw new Error(`no notification matching ${String(text)} within ${timeoutMs} ms`);
    if (!(await page.locator('.notifications-toasts .notification-toast').count())) {
      await openNotificationCenter(page).catch(() => undefined);
    }
    await item.waitFor({ state: 'visible', timeout: 500 }).catch(() => undefined);
  }
}

/** Clicks a button (e.g. "Cancel" of a progress notification) in the notification matching `text`. */
export async function clickNotificationButton(page: Page, text: string | RegExp, button: string, timeoutMs = 30_000): Promise<void> {
  await waitForNotification(page, text, timeoutMs);
  await toastOrCenterItem(page, text).getByRole('button', { name: button }).click({ timeout: 5_000 });
}

/**
 * Right-clicks `name` in the explorer and picks `item` from the real context menu.
 * Retries: the menu can open before the extension's menu contributions register.
 */
export async function explorerContextMenu(page: Page, name: string, item: string, timeoutMs = 30_000): Promise<void> {
  const row = page.locator('.explorer-folders-view .monaco-list-row', { has: page.locator('.label-name', { hasText: exactText(name) }) }).first();
  await rowContextMenu(page, row, name, item, timeoutMs);
}

/** Right-clicks a list or tree `row` (called `name` in errors) and picks `item` from its context menu. */
export async function rowContextMenu(page: Page, row: Locator, name: string, item: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const menu = page.locator('.context-view .monaco-menu');
  for (;;) {
    await row.waitFor({ state: 'visible', timeout: Math.max(1_000, deadline - Date.now()) });
    await row.click({ button: 'right' });
    await menu.waitFor({ state: 'visible', timeout: 5_000 });
    const entry = menu.locator('.action-item', { has: page.locator('.action-label', { hasText: exactText(item) }) });
    if (await entry.count()) {
      // A click can be swallowed while the menu is still settling (it stays open,
      // the item only highlighted); the highlighted item then takes Enter.
      const hides = (ms: number) => menu.waitFor({ state: 'hidden', timeout: ms }).then(() => true, () => false);
      await entry.first().click();
      if (await hides(2_000)) return;
      await entry.first().hover({ timeout: 2_000 }).catch(() => undefined);
      if (await menu.isVisible()) await page.keyboard.press('Enter');
      if (await hides(5_000)) return;
      throw new Error(`the context menu of ${name} stayed open after choosing "${item}"`);
    }
    const seen = (await menu.locator('.action-label').allTextContents()).filter(Boolean);
    await page.keyboard.press('Escape');
    await menu.waitFor({ state: 'hidden', timeout: 5_000 }).catch(() => undefined);
    if (Date.now() > deadline) throw new Error(`"${item}" not in the context menu of ${name} after ${timeoutMs} ms (it had: ${seen.join(', ')})`);
    await sleep(500);
  }
}

/**
 * The content frame of a webview: VS Code nests it as iframe.webview.ready -> #active-frame.
 * `index` picks among several open webviews (default: the last one opened).
 */
export function webviewFrame(page: Page, index = -1): FrameLocator {
  const outer = page.frameLocator('iframe.webview.ready');
  const pick = index < 0 ? outer.last() : outer.nth(index);
  return pick.frameLocator('#active-frame');
}

/** Saves a PNG under test-results/ and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name.replace(/[^\w.-]+/g, '_')}.png`);
  await page.screenshot({ path: file }).catch(() => undefined);
  return file;
}

export interface Workbench {
  server: CodeServer;
  browser: Browser;
  page: Page;
  /** The temp workspace folder (unless opts.folder was given). */
  folder: string;
}

/**
 * One test's whole life: server + browser + workbench, then `fn`, then teardown.
 * On failure: a screenshot and the server log land in test-results/ and the error is rethrown.
 */
export async function withWorkbench<T>(
  name: string,
  opts: ServerOptions & WorkbenchOptions & { folder?: string; files?: Record<string, string> },
  fn: (wb: Workbench) => Promise<T>,
): Promise<T> {
  const server = await startCodeServer(opts);
  let browser: Browser | undefined;
  let page: Page | undefined;
  const folder = opts.folder ?? mkdtempSync(path.join(os.tmpdir(), 'bda-ws-'));
  for (const [rel, content] of Object.entries(opts.files ?? {})) {
    mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
    writeFileSync(path.join(folder, rel), content);
  }
  try {
    browser = await launchBrowser();
    page = await openWorkbench(server, browser, folder, opts);
    return await fn({ server, browser, page, folder });
  } catch (err) {
    mkdirSync(resultsDir, { recursive: true });
    if (page) console.error(`screenshot: ${await screenshot(page, `${name}-failure`)}`);
    const logCopy = path.join(resultsDir, `${name.replace(/[^\w.-]+/g, '_')}-server.log`);
    writeFileSync(logCopy, server.log());
    console.error(`server log: ${logCopy}`);
    if (page) {
      const consoleCopy = path.join(resultsDir, `${name.replace(/[^\w.-]+/g, '_')}-console.log`);
      writeFileSync(consoleCopy, pageConsole(page).join('\n'));
      console.error(`page console: ${consoleCopy}`);
    }
    throw err;
  } finally {
    await browser?.close().catch(() => undefined);
    await server.stop();
    if (!opts.folder && !process.env.BDA_KEEP_TMP) rmSync(folder, { recursive: true, force: true });
  }
}

/** Contributed commands of the extension under test, read from package.json at test time. */
export function contributedCommands(): { command: string; title: string; category?: string }[] {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  return pkg.contributes?.commands ?? [];
}

/** Palette label VS Code shows for a contributed command. */
export function paletteLabel(c: { title: string; category?: string }): string {
  return c.category ? `${c.category}: ${c.title}` : c.title;
}

/** The built extension exists (dist/extension.cjs), so development mode can load it. */
export function extensionBuilt(): boolean {
  return existsSync(path.join(repoRoot, 'dist', 'extension.cjs'));
}
