// Browser plumbing shared by the webview tests: Chromium, pages with console/CSP/network
// watches, canvas checks, and VS Code's Dark Modern colours on a page.
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { webviewHtml } from '../../webview/html';

export const root = path.resolve(import.meta.dirname, '../..');
export const outDir = path.join(root, 'test-results/webview');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Watch { errors: string[]; csp: string[]; requests: string[] }

export async function open(ctx: BrowserContext, file: string): Promise<{ page: Page; watch: Watch }> {
  const page = await ctx.newPage();
  const watch: Watch = { errors: [], csp: [], requests: [] };
  page.on('console', (m) => {
    // the one warning our own getImageData readback causes is not the page's fault
    if ((m.type() === 'error' || m.type() === 'warning') && !m.text().includes('willReadFrequently')) watch.errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => watch.errors.push(`pageerror: ${e.message}`));
  page.on('request', (req) => watch.requests.push(req.url()));
  await page.exposeFunction('__cspViolation', (s: string) => watch.csp.push(s));
  // init scripts as strings: tsx would add helpers to a serialized function that the page lacks
  await page.addInitScript({ content: `document.addEventListener('securitypolicyviolation',
    (e) => window.__cspViolation(e.violatedDirective + ' ' + e.blockedURI));` });
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('canvas, .page-head');
  await page.waitForTimeout(300);
  return { page, watch };
}

/** Distinct colours drawn on each canvas: a blank canvas has 0 or 1. */
export async function canvasColours(page: Page): Promise<{ id: string; colours: number; w: number; h: number }[]> {
  return page.$$eval('canvas', (cs) => cs.map((c) => {
    const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    for (let i = 0; i < data.length; i += 4 * 7) if (data[i + 3] > 0) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return { id: c.closest('section')?.id ?? '?', colours: seen.size, w: c.width, h: c.height };
  }));
}

export function assertClean(w: Watch, pageUrl: string) {
  assert.deepEqual(w.errors, [], 'console errors/warnings');
  assert.deepEqual(w.csp, [], 'CSP violations');
  const outside = w.requests.filter((u) => u !== pageUrl && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(outside, [], 'network requests besides the page itself');
}

// VS Code's Dark Modern colours as the workbench sets them on <html> in a webview.
export const VSCODE_DARK: Record<string, string> = {
  '--vscode-font-family': '-apple-system, BlinkMacSystemFont, "Segoe WPC", "Segoe UI", "Ubuntu", "Droid Sans", sans-serif',
  '--vscode-font-size': '13px', '--vscode-font-weight': 'normal',
  '--vscode-editor-font-family': '"Droid Sans Mono", "monospace", monospace',
  '--vscode-foreground': '#cccccc', '--vscode-descriptionForeground': '#9d9d9d', '--vscode-editor-background': '#1f1f1f',
  '--vscode-editorWidget-background': '#202020', '--vscode-widget-border': '#313131', '--vscode-panel-border': '#2b2b2b',
  '--vscode-focusBorder': '#0078d4', '--vscode-textLink-foreground': '#4daafc', '--vscode-errorForeground': '#f85149',
  '--vscode-button-background': '#0078d4', '--vscode-button-foreground': '#ffffff', '--vscode-button-hoverBackground': '#026ec1',
  '--vscode-button-secondaryBackground': '#313131', '--vscode-button-secondaryForeground': '#cccccc', '--vscode-button-secondaryHoverBackground': '#3c3c3c',
  '--vscode-settings-textInputBackground': '#313131', '--vscode-settings-textInputBorder': '#3c3c3c', '--vscode-settings-textInputForeground': '#cccccc',
  '--vscode-settings-dropdownBackground': '#313131', '--vscode-settings-dropdownBorder': '#3c3c3c', '--vscode-settings-dropdownForeground': '#cccccc',
  '--vscode-inputValidation-warningBackground': '#352a05', '--vscode-inputValidation-warningBorder': '#b89500',
  '--vscode-inputValidation-infoBackground': '#063b49', '--vscode-inputValidation-infoBorder': '#007acc',
  '--vscode-inputValidation-errorBackground': '#5a1d1d', '--vscode-inputValidation-errorBorder': '#be1100',
  '--vscode-badge-background': '#616161', '--vscode-badge-foreground': '#f8f8f8',
  '--vscode-editorGroup-border': 'rgba(255, 255, 255, 0.09)', '--vscode-keybindingTable-rowsBackground': 'rgba(204, 204, 204, 0.04)',
  '--vscode-editorHoverWidget-background': '#202020', '--vscode-editorHoverWidget-border': '#454545', '--vscode-widget-shadow': 'rgba(0, 0, 0, 0.36)',
  '--vscode-charts-foreground': '#cccccc', '--vscode-charts-lines': 'rgba(204, 204, 204, 0.5)', '--vscode-charts-red': '#f14c4c',
  '--vscode-charts-blue': '#3794ff', '--vscode-charts-yellow': '#cca700', '--vscode-charts-orange': '#d18616',
  '--vscode-charts-green': '#89d185', '--vscode-charts-purple': '#b180d7', '--vscode-textCodeBlock-background': '#2b2b2b',
  '--vscode-panelTitle-activeBorder': '#0078d4', '--vscode-panelTitle-activeForeground': '#cccccc', '--vscode-panelTitle-inactiveForeground': '#9d9d9d',
};

export async function applyVsCodeDark(page: Page) {
  await page.evaluate((vars) => {
    const html = document.documentElement;
    html.removeAttribute('data-standalone');
    for (const [k, v] of Object.entries(vars)) html.style.setProperty(k, v);
    document.body.classList.add('vscode-dark');
  }, VSCODE_DARK);
  await page.waitForTimeout(200);
}


/**
 * The host's page: webviewHtml() with file: URIs standing in for asWebviewUri(), and the
 * acquireVsCodeApi() VS Code injects, recording what the webview posts and stores.
 * Resolves once the page has said 'ready'; posted() takes what it sent since.
 */
export async function openVsCodePage(browser: Browser, name: string, title: string) {
  const distUrl = pathToFileURL(path.join(root, 'dist')).href;
  const file = path.join(outDir, `${name}.html`);
  writeFileSync(file, webviewHtml({
    scriptUri: `${distUrl}/webview.js`, styleUri: `${distUrl}/webview.css`, cspSource: 'file:', nonce: 'dGVzdG5vbmNlMTIzNDU2Nzg=', title,
  }));
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
  await ctx.addInitScript({ content: `
    window.__posted = [];
    window.acquireVsCodeApi = () => ({
      postMessage: (m) => window.__posted.push(m),
      getState: () => JSON.parse(sessionStorage.getItem('vscodeState') || 'null'),
      setState: (s) => sessionStorage.setItem('vscodeState', JSON.stringify(s)),
    });` });
  const page = await ctx.newPage();
  const watch: Watch = { errors: [], csp: [], requests: [] };
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') watch.errors.push(m.text()); });
  page.on('pageerror', (e) => watch.errors.push(e.message));
  await page.goto(pathToFileURL(file).href);
  await page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.some((m) => m.type === 'ready'));
  const posted = () => page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted.splice(0));
  await posted();
  return { ctx, page, watch, posted };
}
