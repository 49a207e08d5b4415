// The HTML shells around dist/webview.js: one for VS Code webview panels, one
// self-contained offline file for the CLI. Pure strings so Node (host, CLI) can use them.
import type { ViewState } from '../src/protocol';

export interface WebviewHtmlOptions {
  /** asWebviewUri of dist/webview.js */
  scriptUri: string;
  /** asWebviewUri of dist/webview.css */
  styleUri: string;
  /** webview.cspSource */
  cspSource: string;
  /** fresh random value per page load, see makeNonce() */
  nonce: string;
  title: string;
}

/** 128 random bits, base64: enough that a nonce cannot be guessed. */
export function makeNonce(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes));
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * JSON that is safe inside <script type="application/json">: no "<" can close the
 * element or open a comment, and the line separators some parsers choke on are escaped.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A map comment would make devtools fetch a file that is not there in an offline page. */
function stripSourceMap(text: string): string {
  return text.replace(/\n?(\/\/# sourceMappingURL=\S+|\/\*# sourceMappingURL=\S+ \*\/)\s*$/, '\n');
}

/** Inline JS must not contain "</script" or "<!--", which would end or derail the element. */
export function inlineScript(js: string): string {
  return stripSourceMap(js).replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** Inline CSS must not contain "</style". */
export function inlineStyle(css: string): string {
  return stripSourceMap(css).replace(/<\/(style)/gi, '<\\/$1');
}

// Lit (inside @vscode-elements) styles its shadow roots with constructable stylesheets,
// which CSP does not govern, so neither shell needs 'unsafe-inline'.
function csp(parts: Record<string, string>): string {
  return Object.entries(parts).map(([k, v]) => `${k} ${v}`).join('; ');
}

export function webviewHtml(o: WebviewHtmlOptions): string {
  const policy = csp({
    'default-src': "'none'",
    'script-src': `'nonce-${o.nonce}'`,
    'style-src': o.cspSource,
    'img-src': `${o.cspSource} data: blob:`,
    'font-src': o.cspSource,
  });
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(policy)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(o.title)}</title>
<link rel="stylesheet" href="${escapeHtml(o.styleUri)}">
</head>
<body>
<main id="app" aria-live="off"><p class="placeholder">Loading…</p></main>
<script nonce="${escapeHtml(o.nonce)}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>
`;
}

/**
 * One offline file: CSS, state and script inline, each allowed by the nonce alone, no
 * network access of any kind (connect-src/img-src allow only data: and blob: for exports).
 */
export function standaloneHtml(state: ViewState, scriptText: string, cssText: string, nonce = makeNonce()): string {
  const title = state.view === 'inspect'
    ? `Inspect – ${state.inspect.file.split(/[\\/]/).pop()}`
    : `Backdoor ${state.view} – ${state.report.model.split(/[\\/]/).pop()}`;
  const policy = csp({
    'default-src': "'none'",
    'script-src': `'nonce-${nonce}'`,
    'style-src': `'nonce-${nonce}'`,
    'img-src': 'data: blob:',
  });
  return `<!DOCTYPE html>
<html lang="en" data-standalone>
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(policy)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">${inlineStyle(cssText)}</style>
</head>
<body>
<main id="app"><p class="placeholder">Loading…</p></main>
<script type="application/json" id="state">${scriptJson(state)}</script>
<script nonce="${nonce}">${inlineScript(scriptText)}</script>
</body>
</html>
`;
}
