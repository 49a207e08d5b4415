// Threshold results table, the lab's table: baseline B, then B′ and the repaired net G
// per threshold. The cells come from format.ts so the table, the Markdown and the CSV
// can never disagree.
import type { AuditReport } from '../src/core/types';
import { h } from './dom';
import { resultsCsv, resultsMarkdown, resultsTable } from './format';
import type { Bridge } from './state';

/** A vscode-table from header strings and rows of cells (strings or elements). */
export function vsTable(
  id: string, label: string, header: { text: string; title?: string; numeric?: boolean }[],
  rows: { cells: (string | Node)[]; className?: string }[], columns?: string[],
): HTMLElement {
  const table = h('vscode-table', { id, 'aria-label': label, zebra: true, 'bordered-rows': true, resizable: true }) as HTMLElement & { columns: string[] };
  if (columns) table.columns = columns;
  table.append(
    h('vscode-table-header', { slot: 'header' },
      ...header.map((c) => h('vscode-table-header-cell', { title: c.title, class: c.numeric ? 'num' : undefined }, c.text))),
    h('vscode-table-body', { slot: 'body' },
      ...rows.map((r) => h('vscode-table-row', { class: r.className },
        ...r.cells.map((c, i) => h('vscode-table-cell', { class: header[i]?.numeric ? 'num' : undefined }, c))))),
  );
  return table;
}

function flash(el: HTMLElement, text: string) {
  el.textContent = text;
  setTimeout(() => { if (el.textContent === text) el.textContent = ''; }, 2500);
}

/**
 * "Copy as Markdown": through the host's clipboard in VS Code, the browser's standalone.
 * Returns the button and the status line that says what happened.
 */
export function copyMarkdownButton(id: string, markdown: () => string, bridge: Bridge): { button: HTMLElement; status: HTMLElement } {
  const status = h('span', { class: 'status', role: 'status' });
  const copy = async () => {
    const md = markdown();
    if (!bridge.standalone) { bridge.post({ type: 'copyText', text: md }); flash(status, 'Markdown sent to the clipboard.'); return; }
    try {
      await navigator.clipboard.writeText(md);
      flash(status, 'Markdown copied.');
    } catch {
      flash(status, 'The browser refused clipboard access.');
    }
  };
  return { button: h('vscode-button', { id, secondary: true, onclick: () => void copy() }, 'Copy as Markdown'), status };
}

export function resultsSection(report: AuditReport, bridge: Bridge): HTMLElement {
  const model = resultsTable(report);
  const actions = !bridge.standalone && report.thresholds.some((t) => t.reached);
  const header = [
    ...model.columns.map((c) => ({ text: c.label, title: c.title, numeric: c.numeric })),
    ...(actions ? [{ text: 'Repaired model', title: 'Open the repaired .h5 written for this threshold' }] : []),
  ];
  const rows = model.rows.map((r) => {
    const cells: (string | Node)[] = r.cells.map((c) => c || '—');
    const t = r.threshold;
    if (t && !t.reached) {
      // say plainly that this threshold did not happen instead of showing a bare dash
      cells[model.columns.findIndex((c) => c.id === 'pruned')] =
        h('span', { class: 'badge warn', title: 'The sweep ended before validation accuracy fell this far' }, 'not reached');
      cells[0] = `B′ (${t.drop}% drop)`;
    }
    if (actions) {
      cells.push(t?.reached && r.kind === 'threshold'
        ? h('vscode-button', { secondary: true, class: 'open-repaired', 'data-drop': t.drop, title: t.repairedModel ?? '', onclick: () => bridge.post({ type: 'openRepaired', drop: t.drop }) }, 'Open')
        : '');
    }
    return { cells, className: r.kind === 'baseline' ? 'baseline' : r.kind === 'repaired' ? 'repaired' : t && !t.reached ? 'unreached' : undefined };
  });
  const table = vsTable('results-table', 'Threshold results', header, rows,
    ['16%', ...model.columns.slice(1).map(() => 'auto'), ...(actions ? ['9%'] : [])]);

  const { button: copyButton, status } = copyMarkdownButton('copy-md', () => resultsMarkdown(report), bridge);
  const csv = () => {
    const text = resultsCsv(report);
    if (!bridge.standalone) { bridge.post({ type: 'exportCsv', csv: text }); return; }
    const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
    const a = h('a', { href: url, download: 'fine-pruning-results.csv' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    flash(status, 'CSV downloaded.');
  };
  const toolbar = h('div', { class: 'toolbar' },
    copyButton,
    h('vscode-button', { id: 'export-csv', secondary: true, onclick: csv }, 'Export CSV'),
    status);

  const notes: string[] = [];
  if (!model.columns.some((c) => c.id === 'testAcc')) notes.push('No clean test set was given: test accuracies and the repaired net G are not evaluated.');
  else if (!model.columns.some((c) => c.id === 'gAcc')) notes.push('The repaired net G was not evaluated.');
  if (!model.columns.some((c) => c.id === 'attack')) notes.push('No poisoned test set was given: attack rates are not measured.');
  if (report.thresholds.length === 0) notes.push('No thresholds were requested.');
  const g = report.repairedNetwork;
  return h('div', { class: 'results' },
    toolbar,
    table,
    h('p', { class: 'note' },
      `G: ${g.rule || `B and B′ agree → that label, else class ${g.flaggedClass} (“backdoor suspected”)`}. Percentages with 4 decimals; drop is in accuracy points below the baseline.`),
    ...notes.map((n) => h('p', { class: 'note warn-text' }, n)),
  );
}
