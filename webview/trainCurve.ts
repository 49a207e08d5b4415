// Training curve of the repair: per threshold, validation accuracy and attack
// rate after each epoch (epoch 0 is B′ before training), one line pair per
// threshold labelled at its end, and the same numbers as a table.
import type { AuditReport } from '../src/core/types';
import { drawPercentGrid, niceStep, onWidth, prepare, repaintOnTheme, theme } from './canvas';
import { dataTable, h } from './dom';
import { drop, pct } from './format';

const PAD = { l: 52, r: 64, t: 16, b: 42 };
const HEIGHT = 240;

export function trainingCurve(report: AuditReport): HTMLElement | null {
  const runs = report.thresholds.filter((t) => t.fineTuned?.epochs.length);
  if (!runs.length) return null;
  const method = runs[0].fineTuned!.method === 'unlearn' ? 'unlearning' : 'fine-tuning';
  const xMax = Math.max(1, ...runs.map((t) => t.fineTuned!.epochs.length - 1));
  const hasAttack = runs.some((t) => t.fineTuned!.epochs.some((e) => e.validAttackRate !== undefined));
  const canvas = h('canvas', {
    role: 'img', class: 'chart', id: 'train-curve',
    'aria-label': `Training curve (${method}): validation accuracy${hasAttack ? ' and attack rate' : ''} after each epoch, for ${runs.length} threshold(s). The table below lists every value.`,
  });
  const wrap = h('div', { class: 'canvas-wrap' }, canvas);
  let width = 0;
  const plotW = () => width - PAD.l - PAD.r;
  const plotH = HEIGHT - PAD.t - PAD.b;
  const X = (epoch: number) => PAD.l + (epoch / xMax) * plotW();
  const Y = (rate: number) => PAD.t + (1 - rate) * plotH;

  function draw() {
    if (width <= 0) return;
    const t = theme();
    const ctx = prepare(canvas, width, HEIGHT);
    ctx.font = `11px ${t.font}`;
    ctx.lineWidth = 1;
    drawPercentGrid(ctx, t, PAD.l, plotW(), Y, 25);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let x = 0; x <= xMax; x += niceStep(xMax, Math.max(2, Math.floor(plotW() / 50)))) {
      ctx.fillStyle = t.muted;
      ctx.fillText(String(x), X(x), PAD.t + plotH + 7);
    }
    ctx.fillStyle = t.fg;
    ctx.fillText(`epoch of ${method} (0 = pruned B′ before training)`, PAD.l + plotW() / 2, PAD.t + plotH + 24);
    // Thresholds differ by dash pattern; colours keep their meaning (accuracy, attack).
    const dashes = [[], [6, 3], [2, 3], [8, 3, 2, 3]];
    runs.forEach((th, k) => {
      const epochs = th.fineTuned!.epochs;
      for (const [color, get] of [[t.accuracy, (e: typeof epochs[number]) => e.validAccuracy], [t.attack, (e: typeof epochs[number]) => e.validAttackRate]] as const) {
        const pts = epochs.filter((e) => get(e) !== undefined);
        if (!pts.length) continue;
        ctx.setLineDash(dashes[k % dashes.length]);
        ctx.strokeStyle = color;
        ctx.lineWidth = 2;
        ctx.beginPath();
        pts.forEach((e, i) => (i ? ctx.lineTo(X(e.epoch), Y(get(e)!)) : ctx.moveTo(X(e.epoch), Y(get(e)!))));
        ctx.stroke();
        ctx.setLineDash([]);
        const last = pts[pts.length - 1];
        ctx.fillStyle = color;
        ctx.textAlign = 'left';
        ctx.textBaseline = 'middle';
        ctx.fillText(`${drop(th.drop)}%`, X(last.epoch) + 6, Y(get(last)!));
      }
    });
  }
  onWidth(wrap, (w) => { width = w; draw(); });
  repaintOnTheme(canvas, draw);

  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' },
    h('span', { class: 'key' }, h('i', { class: 'swatch accuracy' }), 'validation accuracy'),
    hasAttack && h('span', { class: 'key' }, h('i', { class: 'swatch attack' }), 'attack rate (poisoned validation)'),
    h('span', { class: 'key' }, `one line style per threshold: ${runs.map((th) => `${drop(th.drop)}%`).join(', ')}`),
  );
  const table = dataTable('Training epochs as a table',
    ['Threshold', 'Epoch', 'Loss', 'Valid acc (%)', ...(hasAttack ? ['Attack rate (%)'] : []), 'Seconds'],
    runs.flatMap((th) => th.fineTuned!.epochs.map((e) => [
      `${drop(th.drop)}%`, e.epoch, e.loss === null ? '—' : e.loss.toFixed(4), pct(e.validAccuracy),
      ...(hasAttack ? [pct(e.validAttackRate) || '—'] : []), e.seconds.toFixed(1),
    ])), 1);
  return h('div', { class: 'curve train-curve' }, legend, wrap, table);
}
