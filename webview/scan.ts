// Scan view: a backdoor scan without poisoned data (scan.json). The verdict and the
// numbers that decided it first, then the channel stimulation that found the candidates,
// the channels' own triggers, the labels whose triggers were reconstructed, and the
// trigger itself as pictures.
import type { ScanChannelTrigger, ScanReport } from '../src/core/types';
import { confirmed, verdictWord, where } from '../src/core/scan/verdict';
import { BACKEND_NAMES, card, phaseBar } from './audit';
import { facts, h, section } from './dom';
import { basename, int, num, pctUnit, seconds } from './format';
import { CANDIDATE_COLUMNS, candidateRows, candidatesMarkdown, verdictLine } from './scanFormat';
import type { Bridge } from './state';
import { stimulationChart } from './stimulation';
import { copyMarkdownButton, vsTable } from './table';
import { triggerPictures } from './triggerPictures';

function candidatesSection(r: ScanReport, bridge: Bridge): HTMLElement {
  const rows = candidateRows(r);
  // "Audit with this trigger" needs the editor (it runs the audit) and a trigger file.
  const canAudit = !bridge.standalone;
  const header = [
    ...CANDIDATE_COLUMNS.map((c) => ({ text: c.label, title: c.title, numeric: c.numeric })),
    ...(canAudit ? [{ text: 'Audit', title: 'Run the fine-pruning audit with this reconstructed trigger stamped on clean data' }] : []),
  ];
  const table = vsTable('candidates-table', 'Optimised labels', header, rows.map((row) => {
    const cells: (string | Node)[] = row.cells.map((c) => c || '—');
    if (canAudit) {
      cells.push(row.label.trigger
        ? h('vscode-button', {
          secondary: !row.target, class: 'audit-with-trigger', 'data-label': row.label.label,
          title: `Audit with ${row.label.trigger}: stamp it on clean validation (and test) images, label ${row.label.label} as the target`,
          onclick: () => bridge.post({ type: 'auditWithTrigger', label: row.label.label }),
        }, 'Audit with this trigger')
        : '');
    }
    return { cells, className: row.target ? 'target' : undefined };
  }), ['8%', '15%', '12%', '14%', '12%', 'auto', ...(canAudit ? ['17%'] : [])]);

  const { button, status } = copyMarkdownButton('copy-candidates-md', () => candidatesMarkdown(r), bridge);
  return h('div', { class: 'results' },
    h('div', { class: 'toolbar' },
      button, status),
    table,
    h('p', { class: 'note' },
      'Each label’s trigger is the smallest mask m and pattern p the optimiser found that turn clean images into that label. ' +
      'A backdoor’s target needs a far smaller mask than other labels (a high anomaly index) and its trigger works on held-out images. ' +
      'Anomaly index as in Neural Cleanse (Wang et al., 2019): above 2 is an outlier.'),
  );
}

function channelTriggersSection(r: ScanReport): HTMLElement {
  // Scans written before channel triggers existed have none.
  if (!r.channelTriggers?.length) return h('p', { class: 'note' }, 'This scan reversed no channel’s trigger (written by an earlier version).');
  // The rows that decided a target: a trigger that excited its channel and serves a target label (the verdict's own test).
  const targets = new Set(r.targets.filter((t) => t.foundBy?.some((f) => f !== 'mask-size')).map((t) => t.label));
  const decided = (t: ScanChannelTrigger) => targets.has(t.label) && confirmed(t);
  const header = [
    { text: 'Channel' }, { text: 'Where', title: 'the whole map, or the site’s position (row, column) in the map stimulation sets' },
    { text: 'Stimulated label', title: 'the label stimulating the channel pushed to' },
    { text: 'Mask L1', numeric: true, title: `pixels the trigger covers (bound ${pctUnit(r.maxTriggerArea)} of the image)` },
    { text: 'Activation', numeric: true, title: 'the channel’s mean with the trigger, and on clean images' },
    { text: 'Turns into', title: 'the label the stamped held-out images turn into most' },
    { text: 'Attack rate', numeric: true, title: 'share of held-out clean images (not of that label) it turns into it' },
  ];
  const rows = [...r.channelTriggers, ...(r.siteTriggers ?? [])].map((t) => ({
    cells: [String(t.channel), where(t), String(t.stimulatedLabel), num(t.maskL1), `${num(t.activation)} (clean ${num(t.cleanActivation)})`,
      String(t.label), `${pctUnit(t.attackRate)} of ${int(t.heldOut)}`],
    className: decided(t) ? 'target' : undefined,
  }));
  return h('div', { class: 'results' },
    vsTable('channel-triggers-table', 'Channels’ own triggers', header, rows),
    h('p', { class: 'note' },
      `For the ${int(r.channelTriggers.length)} channels whose stimulation lifted a label most, a trigger covering at most ` +
      `${pctUnit(r.maxTriggerArea)} of the image was optimised to excite the channel alone, never a label (ABS, Liu et al., 2019). ` +
      'A trigger that still turns ≥ 90% of held-out clean images into one label (on enough images to call it a majority ' +
      'with 95% confidence) shows a backdoor reachable from the input. ' +
      `Sites: each channel is also stimulated at one position at a time (${int((r.sites ?? []).length)} flip ≥ 90% of the images to one label); ` +
      'the most elevating of those get a trigger that excites the channel at that position only, as a small patch would.'));
}

export function scanView(r: ScanReport, reportDir: string, bridge: Bridge): HTMLElement {
  const backdoor = r.verdict === 'backdoor';
  const word = verdictWord(r);
  const tone = ({ backdoor: 'bad', clean: 'good', inconclusive: 'warn' } as const)[word];
  const compromised = r.channels.filter((c) => c.compromised);
  const top = r.targets[0];

  const header = h('header', { class: 'page-head' },
    h('div', { class: 'title-row' },
      h('h1', { title: r.model }, `Backdoor scan · ${basename(r.model)}`),
      h('vscode-badge', { variant: 'counter', title: 'Inference backend used for this scan' }, BACKEND_NAMES[r.backend] ?? r.backend),
      bridge.standalone ? null : h('div', { class: 'head-actions' },
        h('vscode-button', { id: 'reveal-scan', secondary: true, onclick: () => bridge.post({ type: 'revealReport' }) }, 'Reveal scan.json'))),
    h('div', { class: 'path muted', title: r.model },
      `${r.model}${r.arch ? ` + ${basename(r.arch)}` : ''} · ${new Date(r.createdAt).toLocaleString()}${reportDir ? ` · scan in ${reportDir}` : ''}`),
    facts([
      ['Layer', r.layer],
      ['Classes', int(r.classes)],
      ['Clean images', int(r.images), r.data.file],
      ['Labels optimised', int(r.labelsOptimised.length)],
      ['Time', seconds(r.timing.totalSeconds)],
    ]),
  );

  const verdict = h('section', { class: `panel verdict ${tone}`, id: 'verdict', 'aria-labelledby': 'verdict-h' },
    h('h2', { id: 'verdict-h' }, h('span', { class: `verdict-word ${tone}` }, word), ' · ', verdictLine(r)),
    h('ul', { class: 'evidence' }, ...r.evidence.map((e) => h('li', {}, e))));

  const cards = h('div', { class: 'cards' },
    card('Verdict', word, backdoor ? `found by ${(top.foundBy ?? ['mask-size']).map((f) => (f === 'mask-size' ? 'its small mask' : f === 'site-trigger' ? 'a channel’s trigger at one position' : 'a channel’s own trigger')).join(' and ')}` : word === 'inconclusive' ? 'too few clean images to confirm a trigger' : 'no label stands out', tone),
    card('Target label', top ? String(top.label) : '—', top ? `anomaly index ${num(top.anomalyIndex)}` : 'none'),
    card('Trigger attack rate', top ? pctUnit(top.triggerAttackRate) : '—', top ? 'reconstructed trigger, held-out clean images' : undefined, top && top.triggerAttackRate > 0.5 ? 'bad' : undefined),
    top?.channels.length
      ? card('Backdoor channels', top.channels.join(', '), `${r.layer}: they serve label ${top.label}`, 'bad')
      : card('Compromised channels', `${int(compromised.length)} / ${int(r.channels.length)}`, `${r.layer}, by stimulation alone`),
  );

  const phases = Object.entries(r.timing.phases);
  const details = section('run', 'Run details',
    facts([
      ['Clean data', `${basename(r.data.file)}, ${int(r.data.count)} images`, r.data.file],
      ['Images used', int(r.images)],
      ['Candidate labels', int(r.options.labels)],
      ['Calibration labels', int(r.options.calibration)],
      ['Seed', String(r.options.seed)],
      ['Backend', `${BACKEND_NAMES[r.backend] ?? r.backend}${r.kernels ? ` · ${r.kernels} kernels` : ''}`],
      ['Total', seconds(r.timing.totalSeconds)],
    ]),
    phases.length ? phaseBar(phases, r.timing.totalSeconds) : null);

  return h('div', { class: 'view scan' },
    header,
    verdict,
    cards,
    section('stimulation', 'Channel stimulation', stimulationChart(r)),
    section('channel-triggers', 'Channels’ own triggers', channelTriggersSection(r)),
    section('candidates', 'Reconstructed triggers', candidatesSection(r, bridge)),
    section('trigger', top ? `Trigger of label ${top.label}`
      : r.preview?.label !== undefined ? `Smallest trigger found (label ${r.preview.label}, not a backdoor)` : 'Trigger', triggerPictures(r)),
    details,
  );
}
