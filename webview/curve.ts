// Pruning curve: validation accuracy and attack rate against channels pruned, with the
// accuracy-drop thresholds as horizontal lines and where each was reached as verticals.
import type { AuditReport } from '../src/core/types';
import { chartShell, drawPercentGrid, interact, niceStep, onWidth, prepare, repaintOnTheme, theme } from './canvas';
import { dataTable, h } from './dom';
import { ESTIMATED_ATTACK, attackEstimated, drop, pct, pctUnit } from './format';

interface Point { pruned: number; channel?: number; acc: number; attack?: number }

const PAD = { l: 52, r: 64, t: 22, b: 42 };
const HEIGHT = 320;

export function pruningCurve(report: AuditReport): HTMLElement {
  const n = report.ranking.length;
  const points: Point[] = [
    { pruned: 0, acc: report.baseline.validAccuracy, attack: report.baseline.validAttackRate },
    ...[...report.steps].sort((a, b) => a.pruned - b.pruned)
      .map((s) => ({ pruned: s.pruned, channel: s.channel, acc: s.validAccuracy, attack: s.validAttackRate })),
  ];
  const hasAttack = points.some((p) => p.attack !== undefined);
  const thresholds = [...report.thresholds].sort((a, b) => a.drop - b.drop);
  const base = report.baseline.validAccuracy;
  const xMax = Math.max(n, ...points.map((p) => p.pruned), 1);

  const { canvas, readout, wrap } = chartShell(
    `Pruning curve: validation accuracy${hasAttack ? ' and attack rate' : ''} against channels pruned, ${points.length - 1} steps. Use the arrow keys to read each step.`);
  let width = 0;
  let cursor: number | undefined;

  const plotW = () => width - PAD.l - PAD.r;
  const plotH = HEIGHT - PAD.t - PAD.b;
  const X = (pruned: number) => PAD.l + (pruned / xMax) * plotW();
  const Y = (rate: number) => PAD.t + (1 - rate) * plotH;

  function line(ctx: CanvasRenderingContext2D, color: string, get: (p: Point) => number | undefined) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    let started = false;
    for (const p of points) {
      const v = get(p);
      if (v === undefined) { started = false; continue; }
      if (started) ctx.lineTo(X(p.pruned), Y(v));
      else ctx.moveTo(X(p.pruned), Y(v));
      started = true;
    }
    ctx.stroke();
    if (points.length <= 100) {
      ctx.fillStyle = color;
      for (const p of points) {
        const v = get(p);
        if (v === undefined) continue;
        ctx.beginPath();
        ctx.arc(X(p.pruned), Y(v), 1.8, 0, Math.PI * 2);
        ctx.fill();
      }
    }
  }

  function draw() {
    if (width <= 0) return;
    const t = theme();
    const ctx = prepare(canvas, width, HEIGHT);
    ctx.font = `11px ${t.font}`;

    // grid and axes
    ctx.lineWidth = 1;
    drawPercentGrid(ctx, t, PAD.l, plotW(), Y, 20);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const stepX = niceStep(xMax, Math.max(2, Math.floor(plotW() / 60)));
    for (let x = 0; x <= xMax; x += stepX) {
      const px = Math.round(X(x)) + 0.5;
      ctx.strokeStyle = t.grid;
      ctx.beginPath();
      ctx.moveTo(px, PAD.t + plotH);
      ctx.lineTo(px, PAD.t + plotH + 4);
      ctx.stroke();
      ctx.fillStyle = t.muted;
      ctx.fillText(String(x), px, PAD.t + plotH + 7);
    }
    ctx.fillStyle = t.fg;
    ctx.fillText(`channels pruned (of ${n} in ${report.layer})`, PAD.l + plotW() / 2, PAD.t + plotH + 24);
    ctx.save();
    ctx.translate(13, PAD.t + plotH / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText('% of validation images', 0, 0);
    ctx.restore();

    // thresholds: accuracy line at baseline - drop, and where the sweep crossed it
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1;
    for (const th of thresholds) {
      const y = Math.round(Y(base - th.drop / 100)) + 0.5;
      ctx.strokeStyle = t.threshold;
      ctx.beginPath();
      ctx.moveTo(PAD.l, y);
      ctx.lineTo(PAD.l + plotW(), y);
      ctx.stroke();
      if (th.reached) {
        const x = Math.round(X(th.pruned)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(x, PAD.t);
        ctx.lineTo(x, PAD.t + plotH);
        ctx.stroke();
      }
    }
    ctx.setLineDash([]);
    // labels of the horizontals at the right, pushed apart when thresholds are close
    ctx.fillStyle = t.threshold;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    let prevY = -Infinity;
    for (const th of thresholds) {
      const y = Math.max(Y(base - th.drop / 100), prevY + 12);
      prevY = y;
      ctx.fillText(`−${drop(th.drop)}%`, PAD.l + plotW() + 6, y);
    }
    // labels of the verticals: thresholds reached at the same step share one label
    // ("2/4/10%"), and close labels alternate between two rows, which fit above the plot
    const atStep = new Map<number, number[]>();
    for (const th of thresholds.filter((x) => x.reached)) atStep.set(th.pruned, [...(atStep.get(th.pruned) ?? []), th.drop]);
    let lastX = -Infinity;
    let row = 0;
    for (const [pruned, drops] of atStep) {
      const x = X(pruned);
      row = x - lastX < 34 ? 1 - row : 0;
      lastX = x;
      ctx.fillStyle = t.threshold;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'bottom';
      ctx.fillText(`${drops.map(drop).join('/')}%`, x, PAD.t - 3 - row * 10);
    }

    if (hasAttack) line(ctx, t.attack, (p) => p.attack);
    line(ctx, t.accuracy, (p) => p.acc);

    if (cursor !== undefined) {
      const p = points[cursor];
      const x = Math.round(X(p.pruned)) + 0.5;
      ctx.strokeStyle = t.focus;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, PAD.t);
      ctx.lineTo(x, PAD.t + plotH);
      ctx.stroke();
      for (const [v, c] of [[p.acc, t.accuracy], [p.attack, t.attack]] as const) {
        if (v === undefined) continue;
        ctx.fillStyle = c;
        ctx.strokeStyle = t.bg;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(x, Y(v), 4.5, 0, Math.PI * 2);
        ctx.fill();
        ctx.stroke();
      }
    }
  }

  const nearest = (px: number): number => {
    let best = 0;
    for (let i = 1; i < points.length; i++) {
      if (Math.abs(X(points[i].pruned) - px) < Math.abs(X(points[best].pruned) - px)) best = i;
    }
    return best;
  };

  interact<number>({
    canvas, readout,
    hint: 'Hover or focus the chart and use ←/→ to read each pruning step.',
    hit: (x, y) => (x < PAD.l - 6 || x > PAD.l + plotW() + 6 || y < PAD.t - 12 || y > PAD.t + plotH + 6 ? undefined : nearest(x)),
    describe: (i) => {
      const p = points[i];
      const crossed = thresholds.filter((th) => th.reached && th.pruned === p.pruned).map((th) => `${drop(th.drop)}%`);
      return [
        p.pruned === 0 ? 'Baseline (nothing pruned)' : `${p.pruned} channel${p.pruned > 1 ? 's' : ''} pruned · last: channel ${p.channel}`,
        `validation accuracy ${pctUnit(p.acc)} (−${((base - p.acc) * 100).toFixed(4)} pts)`,
        ...(p.attack !== undefined ? [`${attackEstimated(report) ? 'est. ' : ''}attack rate ${pctUnit(p.attack)}`] : []),
        ...(crossed.length ? [`${crossed.join(', ')} threshold reached here`] : []),
      ];
    },
    move: (i, key) => {
      const last = points.length - 1;
      const cur = i ?? -1;
      switch (key) {
        case 'ArrowRight': return Math.min(last, cur + 1);
        case 'ArrowLeft': return Math.max(0, cur - 1);
        case 'PageDown': return Math.min(last, cur + 10);
        case 'PageUp': return Math.max(0, cur - 10);
        case 'Home': return 0;
        case 'End': return last;
        default: return undefined;
      }
    },
    anchor: (i) => ({ x: X(points[i].pruned), y: Y(points[i].acc) }),
    highlight: (i) => { cursor = i; draw(); },
    same: (a, b) => a === b,
  });
  onWidth(wrap, (w) => { width = w; draw(); });
  repaintOnTheme(canvas, draw);

  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' },
    h('span', { class: 'key' }, h('i', { class: 'swatch accuracy' }), 'validation accuracy'),
    hasAttack && h('span', { class: 'key' }, h('i', { class: 'swatch attack' }),
      attackEstimated(report) ? `${ESTIMATED_ATTACK} (stamped clean validation)` : 'attack rate (poisoned validation)'),
    thresholds.length > 0 && h('span', { class: 'key' }, h('i', { class: 'swatch threshold dashed' }), 'accuracy-drop thresholds'),
  );
  const table = dataTable('Pruning steps as a table',
    ['Channels pruned', 'Channel', 'Valid acc (%)', ...(hasAttack ? [attackEstimated(report) ? 'Est. attack rate (%)' : 'Attack rate (%)'] : [])],
    points.map((p) => [p.pruned, p.channel ?? '—', pct(p.acc), ...(hasAttack ? [pct(p.attack) || '—'] : [])]), 0);
  return h('div', { class: 'curve' }, legend, wrap, readout, table);
}
