// Plain-text rendering for the terminal.
import { resultsTable as sharedResultsTable } from '../../webview/format';
import { TOO_FEW_TO_CONFIRM, verdictWord } from '../core/scan/verdict';
import type { AuditReport, InspectResult, PredictResult, ScanReport } from '../core/types';

export const pct = (v: number | undefined, digits = 4) => (v === undefined ? '—' : (v * 100).toFixed(digits));

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export function formatInspect(r: InspectResult): string {
  const head = [
    `${r.file}`,
    `  format ${r.format}${r.kerasVersion ? `, Keras ${r.kerasVersion}` : ''}${r.archFile ? `, architecture from ${r.archFile}` : ''}`,
    `  input (${r.inputShape.join(', ')}), ${r.outputClasses} classes, ${r.params.toLocaleString('en-US')} parameters`,
    '',
  ];
  const rows = [['layer', 'class', 'output shape', 'params', 'activation', 'inbound', 'zeroed channels']];
  for (const l of r.layers) {
    const z = l.zeroChannels;
    rows.push([
      l.name, l.className, l.outputShape.length ? `(${l.outputShape.map((d) => d ?? 'None').join(', ')})` : '?',
      l.params.toLocaleString('en-US'), l.activation ?? '', l.inbound.join(', '),
      z === undefined ? '' : z.length ? `${z.length}: ${z.join(' ')}` : '0',
    ]);
  }
  const warn = r.warnings.length ? ['', 'warnings:', ...r.warnings.map((w) => `  [${w.code}] ${w.message}`)] : ['', 'no warnings'];
  return [...head, table(rows), ...warn].join('\n');
}

export function formatPredict(r: PredictResult): string {
  const rows = [['#', ...(r.predictions.some((p) => p.source) ? ['file'] : []), 'label', 'prob', 'true label']];
  for (const p of r.predictions) {
    rows.push([String(p.index), ...(p.source ? [p.source] : []), String(p.label), p.prob.toFixed(6), p.trueLabel === undefined ? '' : String(p.trueLabel)]);
  }
  const tail = [`backend ${r.backend}; data axes ${r.axisOrder}`];
  if (r.accuracy !== undefined) tail.unshift(`accuracy ${pct(r.accuracy)}%`);
  return [table(rows), '', ...tail].join('\n');
}

/** The same table the webview, "Copy as Markdown" and CSV show (webview/format.ts). */
export function resultsTable(r: AuditReport): string {
  const t = sharedResultsTable(r);
  return table([t.columns.map((c) => c.label), ...t.rows.map((row) => row.cells.map((c) => c || '—'))]);
}

export function formatAudit(r: AuditReport, outDir: string): string {
  const b = r.baseline;
  return [
    `${r.model}: pruned ${r.layer} ranked by ${r.rankedBy} (${r.order}), ${r.classes} classes${r.target !== undefined ? `, target ${r.target}` : ''}, backend ${r.backend} x${r.workers}`,
    `baseline: valid accuracy ${pct(b.validAccuracy)}%${b.validAttackRate !== undefined ? `, valid attack rate ${pct(b.validAttackRate)}%` : ''}`,
    ...(r.attackEstimate === 'reconstructed-trigger' ? [`attack rates estimated with a reconstructed trigger: ${r.reconstructedTrigger}`] : []),
    '',
    resultsTable(r),
    '',
    `${r.steps.length} sweep steps, ${r.timing.totalSeconds.toFixed(1)} s total${r.timing.imagesPerSecond ? `, ${Math.round(r.timing.imagesPerSecond)} images/s` : ''}`,
    `report: ${outDir}/report.json, ${outDir}/report.md`,
  ].join('\n');
}

export function formatScan(r: ScanReport, out: string): string {
  const rows = [['label', 'role', 'mask L1', 'anomaly index', 'held-out attack rate', 'trigger']];
  for (const l of [...r.labels].sort((a, b) => b.anomalyIndex - a.anomalyIndex).slice(0, 10)) {
    rows.push([String(l.label), l.role, l.maskL1.toFixed(1), l.anomalyIndex.toFixed(2), `${pct(l.triggerAttackRate, 1)}%`, l.trigger ?? '']);
  }
  const compromised = r.channels.filter((c) => c.compromised);
  return [
    `${r.model}`,
    `  ${r.images} clean images, ${r.classes} classes, layer ${r.layer}, backend ${r.backend}${r.kernels ? ` (${r.kernels} kernels)` : ''}, ${r.timing.totalSeconds.toFixed(1)} s`,
    '',
    `verdict: ${r.verdict.toUpperCase()}${verdictWord(r) === 'inconclusive' ? `, INCONCLUSIVE (${TOO_FEW_TO_CONFIRM})` : ''}${r.targets.length ? ` (target ${r.targets.map((t) => t.label).join(', ')})` : ''}`,
    ...r.evidence.map((e) => `  - ${e}`),
    '',
    table(rows) + (r.labels.length > 10 ? `\n  … ${r.labels.length - 10} more labels in scan.json` : ''),
    '',
    `stimulation: ${compromised.length} of ${r.channels.length} channels flip >= 90% of images to one label${compromised.length ? `: ${compromised.slice(0, 12).map((c) => `${c.channel}->${c.label}`).join(' ')}` : ''}`,
    `output: ${out}`,
  ].join('\n');
}
