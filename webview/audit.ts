// Audit view: the dashboard of one fine-pruning run. Headline numbers first, then the
// curve and channel pictures that explain them, then the table and the run details.
import type { AuditReport, DataSetInfo } from '../src/core/types';
import { pruningCurve } from './curve';
import { facts, h, section } from './dom';
import { ESTIMATED_ATTACK, attackEstimated, basename, int, pctUnit, seconds, shape } from './format';
import { spatialGrid, type GridProps } from './grid';
import { heatStrip, triggerChannels } from './heatstrip';
import type { Bridge, UiState } from './state';
import { resultsSection, vsTable } from './table';
import { trainingCurve } from './trainCurve';

export const BACKEND_NAMES: Record<string, string> = { onnxruntime: 'ONNX Runtime (native)', tensorflow: 'TensorFlow (native)', wasm: 'WebAssembly', cpu: 'pure-JS CPU' };

/** Parse "2, 4, 10" into validated thresholds, or an error message. */
export function parseThresholds(text: string): number[] | string {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (!parts.length) return 'Enter at least one threshold, e.g. 2,4,10.';
  const nums = parts.map(Number);
  const bad = parts.find((p, i) => !Number.isFinite(nums[i]) || nums[i] <= 0 || nums[i] > 100);
  if (bad !== undefined) return `“${bad}” is not a drop between 0 and 100 points.`;
  if (nums.length > 20) return 'At most 20 thresholds.';
  return [...new Set(nums)].sort((a, b) => a - b);
}

export function card(label: string, value: string, sub?: string, tone?: 'good' | 'bad' | 'warn'): HTMLElement {
  return h('div', { class: `card${tone ? ' ' + tone : ''}` },
    h('div', { class: 'card-label' }, label), h('div', { class: 'card-value' }, value), sub ? h('div', { class: 'card-sub' }, sub) : null);
}

function dataRow(name: string, d: DataSetInfo | undefined) {
  return d ? { cells: [name, basename(d.file), int(d.count), shape(d.shape), d.dtype, d.axisOrder], title: d.file } : undefined;
}

function actions(report: AuditReport, bridge: Bridge, ui: UiState, save: () => void): HTMLElement | null {
  if (bridge.standalone) return null;
  const field = h('vscode-textfield', {
    id: 'rerun-field', value: ui.rerun ?? report.options.thresholds.join(','), 'aria-label': 'Thresholds for a new run, accuracy drop in points',
    placeholder: '2,4,10',
  }) as HTMLElement & { value: string; invalid: boolean };
  const error = h('span', { class: 'status error', role: 'status' });
  const rerun = () => {
    const r = parseThresholds(field.value);
    field.invalid = typeof r === 'string';
    error.textContent = typeof r === 'string' ? r : '';
    if (typeof r !== 'string') bridge.post({ type: 'rerun', thresholds: r });
  };
  field.addEventListener('input', () => { ui.rerun = field.value; save(); field.invalid = false; error.textContent = ''; });
  field.addEventListener('keydown', (ev) => { if ((ev as KeyboardEvent).key === 'Enter') rerun(); });
  return h('div', { class: 'head-actions' },
    h('vscode-button', { id: 'reveal-report', secondary: true, onclick: () => bridge.post({ type: 'revealReport' }) }, 'Reveal report'),
    h('label', { class: 'control' }, h('span', {}, 'Thresholds'), field),
    h('vscode-button', { id: 'rerun', onclick: rerun }, 'Re-run'),
    error);
}

export function auditView(report: AuditReport, reportDir: string, bridge: Bridge, ui: UiState, save: () => void, grid: Omit<GridProps, 'report' | 'standalone'>): HTMLElement {
  const d = report.data;
  const hasPoisoned = report.ranking.some((r) => r.meanActivationPoisoned !== undefined);
  const max = Math.max(0, ...report.ranking.map((r) => Math.max(r.meanActivation, r.meanActivationPoisoned ?? 0)));
  const suspects = triggerChannels(report.ranking, max);
  const reached = report.thresholds.filter((t) => t.reached);

  const header = h('header', { class: 'page-head' },
    h('div', { class: 'title-row' },
      h('h1', { title: report.model }, `Backdoor audit · ${basename(report.model)}`),
      h('vscode-badge', { variant: 'counter', title: 'Inference backend used for this run' }, BACKEND_NAMES[report.backend] ?? report.backend),
      actions(report, bridge, ui, save)),
    h('div', { class: 'path muted', title: report.model },
      `${report.model}${report.arch ? ` + ${basename(report.arch)}` : ''} · ${new Date(report.createdAt).toLocaleString()}${reportDir ? ` · report in ${reportDir}` : ''}`),
    facts([
      ['Layer', report.layer],
      ['Ranked by', `${report.rankedBy}, ${report.order}`],
      ['Classes', int(report.classes)],
      ['Target class', report.target !== undefined ? String(report.target) : undefined],
      ['Flagged class N', String(report.repairedNetwork.flaggedClass), 'Class G outputs when B and B′ disagree'],
      ['Clean valid', `${int(d.cleanValid.count)} images`, d.cleanValid.file],
      ['Poisoned valid', d.poisonedValid ? `${int(d.poisonedValid.count)} images` : 'none', d.poisonedValid?.file],
      ['Clean test', d.cleanTest ? `${int(d.cleanTest.count)} images` : 'none', d.cleanTest?.file],
      ['Poisoned test', d.poisonedTest ? `${int(d.poisonedTest.count)} images` : 'none', d.poisonedTest?.file],
      ['Time', seconds(report.timing.totalSeconds)],
    ]),
  );

  const estimated = attackEstimated(report);
  const estimate = estimated ? h('div', { class: 'callout info estimate', id: 'attack-estimate', role: 'note' },
    h('strong', {}, `Every ${ESTIMATED_ATTACK}.`),
    ` The poisoned sets are the clean images stamped with ${report.reconstructedTrigger ? basename(report.reconstructedTrigger) : 'a trigger'} from a backdoor scan, ` +
    `labelled ${report.target ?? 'with the scan’s target'}; the attacker’s own trigger may work better or worse.`) : null;
  const b = report.baseline;
  const attackSource = (test: boolean) => estimated
    ? `${ESTIMATED_ATTACK}, ${test ? 'test' : 'validation'} set`
    : test ? 'poisoned test set' : 'poisoned validation set';
  const cards = h('div', { class: 'cards' },
    card('Clean accuracy (B)', pctUnit(b.testAccuracy ?? b.validAccuracy), b.testAccuracy !== undefined ? `test set · valid ${pctUnit(b.validAccuracy)}` : 'validation set'),
    (b.testAttackRate ?? b.validAttackRate) !== undefined
      ? card(estimated ? 'Est. attack rate (B)' : 'Attack rate (B)', pctUnit(b.testAttackRate ?? b.validAttackRate), attackSource(b.testAttackRate !== undefined), (b.testAttackRate ?? b.validAttackRate)! > 0.5 ? 'bad' : undefined)
      : card('Attack rate (B)', '—', 'no poisoned data given'),
    card('Channels in layer', int(report.ranking.length), `${report.layer}, ${reached.length}/${report.thresholds.length} thresholds reached`),
    hasPoisoned
      ? card('Trigger channels', int(suspects.length), suspects.length ? 'quiet on clean, fire on poisoned' : 'none stand out', suspects.length ? 'bad' : 'good')
      : card('Trigger channels', '—', 'needs poisoned validation data'),
  );

  const phases = Object.entries(report.timing.phases);
  const dataRows = [dataRow('clean validation', d.cleanValid), dataRow('poisoned validation', d.poisonedValid),
    dataRow('clean test', d.cleanTest), dataRow('poisoned test', d.poisonedTest)].filter((x): x is NonNullable<typeof x> => !!x);
  const details = section('run', 'Run details',
    vsTable('data-table', 'Data sets', [{ text: 'Set' }, { text: 'File' }, { text: 'Images', numeric: true }, { text: 'Shape' }, { text: 'dtype' }, { text: 'Axis order' }],
      dataRows, ['16%', '30%', '10%', '18%', '10%', 'auto']),
    h('div', { class: 'timing' },
      h('h3', {}, 'Timing'),
      facts([
        ['Total', seconds(report.timing.totalSeconds)],
        ['Throughput', report.timing.imagesPerSecond ? `${int(report.timing.imagesPerSecond)} images/s` : undefined],
        ['Backend', BACKEND_NAMES[report.backend] ?? report.backend],
        ['Workers', int(report.workers)],
        ['Batch size', int(report.options.batchSize)],
        ['Full sweep', report.options.fullSweep ? 'yes' : 'no, stopped at the largest threshold'],
      ]),
      phases.length ? phaseBar(phases, report.timing.totalSeconds) : null),
  );

  return h('div', { class: 'view audit' },
    header,
    estimate,
    cards,
    section('curve', 'Pruning curve', pruningCurve(report)),
    section('channels', 'Channel activations', heatStrip(report)),
    section('results', 'Threshold results', resultsSection(report, bridge)),
    ...(report.thresholds.some((t) => t.fineTuned) ? [section('training', 'Repair training curve', trainingCurve(report))] : []),
    section('maps', 'Spatial activation maps', spatialGrid({ ...grid, report, standalone: bridge.standalone })),
    details,
  );
}

/** Share of the total each phase took, as a bar of labelled segments. */
export function phaseBar(phases: [string, number][], total: number): HTMLElement {
  const sum = phases.reduce((s, [, v]) => s + v, 0) || total || 1;
  const bar = h('div', { class: 'phasebar', role: 'img', 'aria-label': phases.map(([k, v]) => `${k} ${seconds(v)}`).join(', ') });
  const legend = h('div', { class: 'legend phases', 'aria-hidden': 'true' });
  phases.forEach(([k, v], i) => {
    const seg = h('span', { class: `seg s${i % 6}`, title: `${k}: ${seconds(v)}` });
    seg.style.flexGrow = String(Math.max(v / sum, 0.002));
    bar.append(seg);
    legend.append(h('span', { class: 'key' }, h('i', { class: `dot s${i % 6}` }), `${k} `, h('strong', {}, seconds(v))));
  });
  return h('div', {}, bar, legend);
}
