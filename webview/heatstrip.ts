// Channel heat strip: one column per channel of the audited layer, in pruning order,
// coloured by mean activation on clean and on poisoned data with one shared scale, so a
// channel that is dark on clean but bright on poisoned (the backdoor's signature) pops out.
import type { AuditReport, ChannelRank, ThresholdResult } from '../src/core/types';
import { drawLegend, heat, interact, niceStep, onWidth, prepare, repaintOnTheme, step1d, theme } from './canvas';
import { dataTable, h } from './dom';
import { drop, num } from './format';

const PAD_L = 110;
const PAD_R = 14;
const ROW_H = 30;
const LANE_H = 9;
const LANE_GAP = 6;

/** Channels nearly silent on clean data that respond to the trigger. */
export function triggerChannels(ranking: ChannelRank[], max: number): number[] {
  return ranking
    .filter((r) => r.meanActivationPoisoned !== undefined &&
      r.meanActivationPoisoned - r.meanActivation >= 0.1 * max &&
      r.meanActivationPoisoned >= 2 * r.meanActivation)
    .map((r) => r.channel);
}

/** The smallest threshold (in drop points) at which each channel gets pruned. */
export function prunedAt(thresholds: ThresholdResult[]): Map<number, number> {
  const at = new Map<number, number>();
  for (const t of [...thresholds].sort((a, b) => a.drop - b.drop)) {
    if (!t.reached) continue;
    for (const c of t.prunedChannels) if (!at.has(c)) at.set(c, t.drop);
  }
  return at;
}

export function heatStrip(report: AuditReport): HTMLElement {
  const ranking = report.ranking;
  const n = ranking.length;
  const hasPoisoned = ranking.some((r) => r.meanActivationPoisoned !== undefined);
  const max = Math.max(0, ...ranking.map((r) => Math.max(r.meanActivation, r.meanActivationPoisoned ?? 0)));
  const thresholds = [...report.thresholds].sort((a, b) => a.drop - b.drop);
  const at = prunedAt(thresholds);
  const suspects = new Set(triggerChannels(ranking, max));
  const rows = hasPoisoned ? 2 : 1;

  const top = hasPoisoned ? 16 : 6;
  const lanesTop = top + rows * ROW_H + (rows - 1) * 3 + 10;
  const axisTop = lanesTop + thresholds.length * (LANE_H + LANE_GAP) + 2;
  const height = axisTop + 26 + 34;

  const canvas = h('canvas', {
    tabindex: 0, role: 'img', class: 'chart',
    'aria-label': `Heat strip of ${n} channels of ${report.layer} in pruning order, mean activation on clean${hasPoisoned ? ' and poisoned' : ''} validation data. Use the arrow keys to read channels.`,
  });
  const readout = h('div', { class: 'readout', 'aria-live': 'polite' });
  const wrap = h('div', { class: 'canvas-wrap' }, canvas);
  let width = 0;
  let cursor: number | undefined;

  const cw = () => (width - PAD_L - PAD_R) / Math.max(1, n);
  const colX = (i: number) => Math.round(PAD_L + i * cw());

  function draw() {
    if (width <= 0) return;
    const t = theme();
    const ctx = prepare(canvas, width, height);
    const w = cw();
    const gap = w >= 5 ? 1 : 0;
    ctx.font = `12px ${t.font}`;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';

    const rowY = (r: number) => top + r * (ROW_H + 3);
    const labels = hasPoisoned ? ['clean', 'poisoned'] : ['clean'];
    labels.forEach((l, r) => {
      ctx.fillStyle = t.fg;
      ctx.fillText(l, PAD_L - 10, rowY(r) + ROW_H / 2);
    });
    ranking.forEach((c, i) => {
      const x0 = colX(i);
      const cwid = Math.max(1, colX(i + 1) - x0 - gap);
      ctx.fillStyle = heat(c.meanActivation, max);
      ctx.fillRect(x0, rowY(0), cwid, ROW_H);
      if (hasPoisoned) {
        ctx.fillStyle = heat(c.meanActivationPoisoned ?? 0, max);
        ctx.fillRect(x0, rowY(1), cwid, ROW_H);
      }
      if (suspects.has(c.channel)) {
        // a small down-pointing mark above the strip: "this one fires on the trigger"
        const cx = x0 + cwid / 2;
        ctx.fillStyle = t.suspect;
        ctx.beginPath();
        ctx.moveTo(cx - 4, 3);
        ctx.lineTo(cx + 4, 3);
        ctx.lineTo(cx, top - 4);
        ctx.closePath();
        ctx.fill();
      }
    });

    // boundaries through the heat rows first, so lane labels can sit on top of them
    ctx.strokeStyle = t.threshold;
    ctx.setLineDash([3, 3]);
    ctx.lineWidth = 1.5;
    thresholds.forEach((th, k) => {
      if (!th.reached) return;
      const x = colX(th.pruned) - 0.5;
      ctx.beginPath();
      ctx.moveTo(x, top - 2);
      ctx.lineTo(x, lanesTop + k * (LANE_H + LANE_GAP) + LANE_H);
      ctx.stroke();
    });
    ctx.setLineDash([]);

    // threshold lanes: which prefix of the order each threshold pruned
    thresholds.forEach((th, k) => {
      const y = lanesTop + k * (LANE_H + LANE_GAP);
      ctx.fillStyle = t.fg;
      ctx.textAlign = 'right';
      ctx.fillText(`${drop(th.drop)}% drop`, PAD_L - 10, y + LANE_H / 2);
      if (!th.reached) {
        ctx.fillStyle = t.muted;
        ctx.textAlign = 'left';
        ctx.fillText('not reached', PAD_L, y + LANE_H / 2);
        return;
      }
      const pruned = new Set(th.prunedChannels);
      ctx.fillStyle = t.threshold;
      ranking.forEach((c, i) => {
        if (pruned.has(c.channel)) ctx.fillRect(colX(i), y, Math.max(1, colX(i + 1) - colX(i)), LANE_H);
      });
      const xEnd = colX(th.pruned);
      const text = `${th.pruned} pruned`;
      const tw = ctx.measureText(text).width;
      const left = xEnd + tw + 12 < width - PAD_R;
      const tx = left ? xEnd + 4 : xEnd - tw - 8;
      ctx.fillStyle = t.surface;
      ctx.fillRect(tx, y - 3, tw + 6, LANE_H + 6);
      ctx.fillStyle = t.fg;
      ctx.textAlign = 'left';
      ctx.fillText(text, tx + 3, y + LANE_H / 2);
    });

    // axis: pruning rank
    ctx.fillStyle = t.muted;
    ctx.font = `11px ${t.font}`;
    ctx.textBaseline = 'top';
    const stepRank = niceStep(n, Math.max(2, Math.floor((width - PAD_L - PAD_R) / 70)));
    for (let r = 0; r <= n; r += stepRank) {
      const x = colX(r);
      ctx.strokeStyle = t.grid;
      ctx.beginPath();
      ctx.moveTo(x + 0.5, axisTop);
      ctx.lineTo(x + 0.5, axisTop + 4);
      ctx.stroke();
      ctx.textAlign = r === 0 ? 'left' : 'center';
      ctx.fillText(String(r), x, axisTop + 6);
    }
    ctx.textAlign = 'right';
    ctx.fillText('pruning order →', PAD_L - 10, axisTop + 6);

    drawLegend(ctx, PAD_L, axisTop + 30, Math.min(260, width - PAD_L - PAD_R), max, 'mean activation', t, num);
    if (suspects.size) {
      const lx = PAD_L + Math.min(260, width - PAD_L - PAD_R) + 28;
      if (lx + 200 < width) {
        ctx.fillStyle = t.suspect;
        ctx.beginPath();
        ctx.moveTo(lx, axisTop + 30);
        ctx.lineTo(lx + 8, axisTop + 30);
        ctx.lineTo(lx + 4, axisTop + 38);
        ctx.closePath();
        ctx.fill();
        ctx.fillStyle = t.fg;
        ctx.textAlign = 'left';
        ctx.textBaseline = 'middle';
        ctx.fillText('fires on poisoned data, quiet on clean', lx + 14, axisTop + 34);
      }
    }

    if (cursor !== undefined) {
      ctx.strokeStyle = t.focus;
      ctx.lineWidth = 2;
      const x0 = colX(cursor);
      ctx.strokeRect(x0 - 1, top - 2, Math.max(3, colX(cursor + 1) - x0 + 1), rows * ROW_H + (rows - 1) * 3 + 4);
    }
  }

  interact<number>({
    canvas, readout,
    hint: 'Hover or focus the strip and use ←/→ to read a channel.',
    hit: (x, y) => (x < PAD_L || x >= width - PAD_R || y > axisTop ? undefined : Math.min(n - 1, Math.floor((x - PAD_L) / cw()))),
    describe: (i) => {
      const c = ranking[i];
      const d = at.get(c.channel);
      return [
        `Channel ${c.channel} · pruning rank ${i + 1} of ${n}`,
        `clean mean ${num(c.meanActivation)}`,
        ...(c.meanActivationPoisoned !== undefined ? [`poisoned mean ${num(c.meanActivationPoisoned)}`] : []),
        d !== undefined ? `pruned from the ${drop(d)}% threshold on` : 'kept at every threshold',
        ...(suspects.has(c.channel) ? ['fires on poisoned data, quiet on clean'] : []),
      ];
    },
    move: (i, key) => step1d(i, key, n),
    anchor: (i) => ({ x: colX(i) + cw() / 2, y: top + rows * ROW_H }),
    highlight: (i) => { cursor = i; draw(); },
    same: (a, b) => a === b,
  });
  onWidth(wrap, (w) => { width = w; draw(); });
  repaintOnTheme(canvas, draw);

  const suspectList = ranking.filter((r) => suspects.has(r.channel)).map((r) => r.channel);
  const summary = h('p', { class: 'summary' },
    `${n} channels of ${report.layer}, least active on clean data first (ranked by ${report.rankedBy}, ${report.order}). `,
    hasPoisoned
      ? suspectList.length
        ? `${suspectList.length} channel${suspectList.length > 1 ? 's are' : ' is'} quiet on clean data but fire${suspectList.length > 1 ? '' : 's'} on poisoned data: ${suspectList.join(', ')}.`
        : 'No channel is quiet on clean data while firing on poisoned data.'
      : 'No poisoned validation set was given, so only clean activations are shown.',
  );
  const table = dataTable('Channel values as a table',
    ['Rank', 'Channel', 'Clean mean', ...(hasPoisoned ? ['Poisoned mean'] : []), 'Pruned from'],
    ranking.map((c, i) => [i + 1, c.channel, num(c.meanActivation),
      ...(hasPoisoned ? [num(c.meanActivationPoisoned)] : []),
      at.has(c.channel) ? `${drop(at.get(c.channel)!)}%` : '—']), 2);
  return h('div', { class: 'heatstrip' }, summary, wrap, readout, table);
}
