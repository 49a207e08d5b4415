// Channel stimulation chart: one bar per channel of the scanned layer (in index order),
// its height the share of clean images whose prediction flips to one label when that
// channel alone is raised, coloured by that label. Compromised channels are marked.
import type { ScanChannel, ScanReport } from '../src/core/types';
import { chartShell, cssVar, interact, niceStep, onWidth, prepare, repaintOnTheme, step1d, theme } from './canvas';
import { dataTable, h } from './dom';
import { num, pct, pctUnit } from './format';

const PAD = { l: 52, r: 16, t: 26, b: 40 };
const HEIGHT = 260;
const PALETTE_VARS: [string, string][] = [
  ['--vscode-charts-red', '#f14c4c'], ['--vscode-charts-blue', '#3794ff'], ['--vscode-charts-yellow', '#cca700'],
  ['--vscode-charts-green', '#89d185'], ['--vscode-charts-purple', '#b180d7'], ['--vscode-charts-orange', '#d18616'],
];

/**
 * A colour per label: the verdict's targets first, then the labels most channels push
 * to; the rest share one muted colour (a model can have 1,283 labels).
 */
export function labelColours(r: ScanReport): Map<number, number> {
  const counts = new Map<number, number>();
  for (const c of r.channels) counts.set(c.label, (counts.get(c.label) ?? 0) + (c.compromised ? 1000 : 1));
  const order = [...r.targets.map((t) => t.label),
    ...[...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([l]) => l)];
  const out = new Map<number, number>();
  for (const l of order) if (!out.has(l) && out.size < PALETTE_VARS.length) out.set(l, out.size);
  return out;
}

export function stimulationChart(r: ScanReport): HTMLElement {
  const channels = [...r.channels].sort((a, b) => a.channel - b.channel);
  const n = channels.length;
  const colourOf = labelColours(r);
  const compromised = channels.filter((c) => c.compromised);

  const { canvas, readout, wrap } = chartShell(
    `Channel stimulation of ${n} channels of ${r.layer}: share of clean images flipped to one label when the channel is raised; ` +
      `${compromised.length} compromised. Use the arrow keys to read channels.`);
  let width = 0;
  let cursor: number | undefined;

  const plotW = () => width - PAD.l - PAD.r;
  const plotH = HEIGHT - PAD.t - PAD.b;
  const colX = (i: number) => PAD.l + (i / Math.max(1, n)) * plotW();
  const Y = (rate: number) => PAD.t + (1 - rate) * plotH;
  const colour = (c: ScanChannel, muted: string) => {
    const k = colourOf.get(c.label);
    return k === undefined ? muted : cssVar(PALETTE_VARS[k][0], PALETTE_VARS[k][1]);
  };

  function draw() {
    if (width <= 0) return;
    const t = theme();
    const ctx = prepare(canvas, width, HEIGHT);
    ctx.font = `11px ${t.font}`;
    // y grid and labels
    ctx.strokeStyle = t.grid;
    ctx.fillStyle = t.muted;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let v = 0; v <= 1.0001; v += 0.25) {
      ctx.beginPath();
      ctx.moveTo(PAD.l, Math.round(Y(v)) + 0.5);
      ctx.lineTo(PAD.l + plotW(), Math.round(Y(v)) + 0.5);
      ctx.stroke();
      ctx.fillText(`${Math.round(v * 100)}%`, PAD.l - 6, Y(v));
    }
    // bars
    const w = plotW() / Math.max(1, n);
    const gap = w >= 5 ? 1 : 0;
    channels.forEach((c, i) => {
      const x = colX(i);
      ctx.fillStyle = colour(c, t.pruned);
      const y = Y(Math.max(0, Math.min(1, c.flipRate)));
      ctx.fillRect(x, y, Math.max(1, w - gap), Y(0) - y);
      if (c.compromised) {
        // a marker above the bar: compromised channels must stand out without colour too
        ctx.fillStyle = t.suspect;
        ctx.beginPath();
        const cx = x + w / 2;
        ctx.moveTo(cx - 5, PAD.t - 14);
        ctx.lineTo(cx + 5, PAD.t - 14);
        ctx.lineTo(cx, PAD.t - 5);
        ctx.closePath();
        ctx.fill();
      }
    });
    if (cursor !== undefined) {
      ctx.strokeStyle = t.focus;
      ctx.lineWidth = 2;
      ctx.strokeRect(colX(cursor) - 1, PAD.t - 2, Math.max(3, w) + 2, plotH + 4);
      ctx.lineWidth = 1;
    }
    // x axis: channel indices
    ctx.fillStyle = t.muted;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const every = niceStep(n, Math.max(2, Math.floor(plotW() / 40)));
    for (let i = 0; i < n; i += every) ctx.fillText(String(channels[i].channel), colX(i) + w / 2, Y(0) + 5);
    ctx.fillText(`channel of ${r.layer}`, PAD.l + plotW() / 2, Y(0) + 22);
  }

  const index = (x: number) => Math.floor(((x - PAD.l) / Math.max(1, plotW())) * n);
  interact<number>({
    canvas, readout,
    hint: 'Hover or focus the chart and use ←/→ to read each channel.',
    hit: (x, y) => {
      const i = index(x);
      return i < 0 || i >= n || y < PAD.t - 16 || y > Y(0) + 4 ? undefined : i;
    },
    describe: (i) => {
      const c = channels[i];
      return [
        `Channel ${c.channel}${c.compromised ? ' · compromised' : ''}`,
        `pushes to label ${c.label}: ${pctUnit(c.flipRate)} of images flip at level ${num(c.level)}`,
        `logit rise ${num(c.logitRise)} · elevation over the next label ${num(c.elevation)}`,
      ];
    },
    move: (i, key) => step1d(i, key, n),
    anchor: (i) => ({ x: colX(i) + plotW() / n / 2, y: Y(channels[i].flipRate) }),
    highlight: (i) => { cursor = i; draw(); },
    same: (a, b) => a === b,
  });
  onWidth(wrap, (w) => { width = w; draw(); });
  repaintOnTheme(canvas, draw);

  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' },
    ...[...colourOf.entries()].map(([label, k]) =>
      h('span', { class: 'key' }, h('i', { class: `dot label-${k}` }), `label ${label}`)),
    colourOf.size < new Set(channels.map((c) => c.label)).size
      ? h('span', { class: 'key' }, h('i', { class: 'dot label-other' }), 'other labels') : null,
    h('span', { class: 'key' }, h('i', { class: 'marker-compromised' }), 'compromised channel'),
  );
  const summary = h('p', { class: 'summary' }, compromised.length
    ? `${compromised.length} of ${n} channels are compromised: ${compromised.map((c) => `${c.channel} → ${c.label}`).join(', ')}.`
    : `No channel of ${r.layer} is compromised.`,
  ` Levels tried: ${r.levels.map((l) => `${num(l)}×`).join(', ')} the largest clean activation of the layer.`);
  const table = dataTable('Channels as a table',
    ['Channel', 'Label', 'Flip rate (%)', 'Level', 'Logit rise', 'Elevation', 'Compromised'],
    channels.map((c) => [c.channel, c.label, pct(c.flipRate), num(c.level), num(c.logitRise), num(c.elevation), c.compromised ? 'yes' : '']), 2);
  return h('div', { class: 'stimulation' }, summary, legend, wrap, readout, table);
}
