// Webview entry: picks VS Code or standalone mode, renders the inspect or audit view,
// answers host messages and keeps UI choices in getState/setState.
// Only the elements used are imported, so the bundle carries nothing else.
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-table/index.js';
import '@vscode-elements/elements/dist/vscode-table-body/index.js';
import '@vscode-elements/elements/dist/vscode-table-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-header/index.js';
import '@vscode-elements/elements/dist/vscode-table-header-cell/index.js';
import '@vscode-elements/elements/dist/vscode-table-row/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';

import type { HostToWebview, JobProgress, Progress, ViewState } from '../src/protocol';
import { auditView } from './audit';
import { hideTip, repaintAll } from './canvas';
import { h } from './dom';
import { int, pctUnit } from './format';
import { mergeMaps, sampleKey, spatialGrid } from './grid';
import { inspectView } from './inspect';
import { scanView } from './scan';
import { createBridge, defaultUi, type Saved } from './state';

const bridge = createBridge();
let saved: Saved = bridge.load();
const app = document.getElementById('app') ?? document.body.appendChild(h('main', { id: 'app' }));
const progressEl = h('div', { id: 'progress', class: 'progress', hidden: true, role: 'status' });
const errorEl = h('div', { id: 'error', class: 'callout error', hidden: true, role: 'alert' });
app.before(progressEl, errorEl);
document.body.classList.toggle('standalone', bridge.standalone);

const persist = () => bridge.save(saved);

/** Identity of what is shown: a new report resets per-report choices (picked sample, loaded maps). */
function identity(v: ViewState | undefined): string {
  if (!v) return '';
  return v.view === 'inspect' ? `inspect:${v.inspect.file}` : `${v.view}:${v.report.model}:${v.report.createdAt}`;
}

function gridProps() {
  const v = saved.view;
  if (v?.view !== 'audit') throw new Error('no audit');
  return {
    maps: mergeMaps(v.report.samples, saved.ui.extraMaps),
    sample: saved.ui.sample,
    order: saved.ui.order,
    onChange: (c: { sample?: string; order?: typeof saved.ui.order }) => {
      if (c.sample !== undefined) saved.ui.sample = c.sample;
      if (c.order !== undefined) saved.ui.order = c.order;
      persist();
      refreshGrid();
    },
    request: (index: number) => {
      bridge.post({ type: 'requestChannelMaps', source: 'clean', index });
      if (v.report.data.poisonedValid) bridge.post({ type: 'requestChannelMaps', source: 'poisoned', index });
    },
    pickImage: () => bridge.post({ type: 'pickImage' }),
  };
}

/** Replace only the grid, keeping scroll position and, by id, keyboard focus. */
function refreshGrid() {
  const v = saved.view;
  const old = app.querySelector('#maps .grid');
  if (v?.view !== 'audit' || !old) return;
  const focusId = (document.activeElement as HTMLElement | null)?.id;
  old.replaceWith(spatialGrid({ ...gridProps(), report: v.report, standalone: bridge.standalone }));
  if (focusId) (document.getElementById(focusId) as HTMLElement | null)?.focus();
}

function render() {
  hideTip();
  const v = saved.view;
  if (!v) {
    app.replaceChildren(h('p', { class: 'placeholder' }, 'Waiting for results…'));
    return;
  }
  app.replaceChildren(v.view === 'inspect'
    ? inspectView(v.inspect, saved.ui, (i) => { saved.ui.inspectTab = i; persist(); }, bridge.standalone ? undefined : () => bridge.post({ type: 'changeArchitecture' }))
    : v.view === 'scan'
      ? scanView(v.report, v.reportDir, bridge)
      : auditView(v.report, v.reportDir, bridge, saved.ui, persist, gridProps()));
  // canvases size themselves on the next layout; restore the scroll position after that
  const y = saved.ui.scrollY;
  requestAnimationFrame(() => requestAnimationFrame(() => window.scrollTo(0, y)));
}

function showProgress(job: JobProgress) {
  const p = job as Partial<Progress> & JobProgress; // a scan's progress has no accuracies or speed
  const done = p.phase === 'done';
  const determinate = p.step !== undefined && p.total !== undefined && p.total > 0;
  const bar = h('vscode-progress-bar', { 'aria-label': p.message }) as HTMLElement & { value?: number; max: number };
  if (determinate) { bar.max = p.total!; bar.value = p.step!; }
  const bits = [
    determinate ? `${int(p.step!)} / ${int(p.total!)}` : '',
    p.validAccuracy !== undefined ? `valid acc ${pctUnit(p.validAccuracy)}` : '',
    p.validAttackRate !== undefined ? `attack rate ${pctUnit(p.validAttackRate)}` : '',
    p.imagesPerSecond ? `${int(p.imagesPerSecond)} images/s` : '',
  ].filter(Boolean);
  progressEl.replaceChildren(bar, h('div', { class: 'progress-text' },
    h('strong', {}, p.phase), ` ${p.message}`, bits.length ? h('span', { class: 'muted' }, ` · ${bits.join(' · ')}`) : null));
  progressEl.hidden = false;
  if (done) setTimeout(() => { progressEl.hidden = true; }, 1500);
}

function showError(message: string) {
  errorEl.replaceChildren(h('span', {}, message),
    h('vscode-button', { secondary: true, onclick: () => { errorEl.hidden = true; } }, 'Dismiss'));
  errorEl.hidden = false;
  progressEl.hidden = true;
}

window.addEventListener('message', (ev: MessageEvent<HostToWebview>) => {
  const m = ev.data;
  if (!m || typeof m !== 'object') return;
  switch (m.type) {
    case 'show':
      if (identity(m.state) !== identity(saved.view)) saved.ui = { ...defaultUi(), order: saved.ui.order };
      saved.view = m.state;
      if (m.theme) document.body.dataset.theme = m.theme;
      errorEl.hidden = true;
      persist();
      render();
      break;
    case 'channelMaps':
      if (!m.maps.length) break;
      saved.ui.extraMaps = mergeMaps(saved.ui.extraMaps, m.maps);
      saved.ui.sample = sampleKey(m.maps[0]);
      persist();
      refreshGrid();
      break;
    case 'progress':
      showProgress(m.progress);
      break;
    case 'error':
      showError(m.message);
      break;
  }
});

// Theme changes: VS Code swaps body classes and the --vscode-* variables on <html>;
// a standalone page follows the OS colour scheme. Canvases read colours when drawn.
let pending = 0;
const repaintSoon = () => { cancelAnimationFrame(pending); pending = requestAnimationFrame(repaintAll); };
new MutationObserver(repaintSoon).observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
new MutationObserver(repaintSoon).observe(document.body, { attributes: true, attributeFilter: ['class', 'data-theme'] });
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', repaintSoon);

let scrollTimer = 0;
window.addEventListener('scroll', () => {
  clearTimeout(scrollTimer);
  scrollTimer = window.setTimeout(() => { saved.ui.scrollY = Math.round(window.scrollY); persist(); }, 200);
}, { passive: true });

render();
if (!bridge.standalone) bridge.post({ type: 'ready' });
