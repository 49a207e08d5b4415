// Spatial activation grid: for one picked image, every channel's H×W map as a small
// heatmap, clean and triggered side by side on one shared colour scale, so a channel
// that lights up only with the trigger is obvious at a glance.
import type { AuditReport, ChannelMaps } from '../src/core/types';
import { drawLegend, heat, interact, onWidth, prepare, repaintOnTheme, theme } from './canvas';
import { dataTable, h } from './dom';
import { basename, drop, num } from './format';
import { prunedAt } from './heatstrip';
import type { ChannelOrder } from './state';

export interface GridProps {
  report: AuditReport;
  /** report.samples plus maps the host sent later */
  maps: ChannelMaps[];
  sample?: string;
  order: ChannelOrder;
  standalone: boolean;
  onChange(change: { sample?: string; order?: ChannelOrder }): void;
  request(index: number): void;
  pickImage(): void;
}

const SOURCE_RANK = { clean: 0, poisoned: 1, image: 2 } as const;

/** Clean and poisoned maps of the same index are shown together; a picked image alone. */
export function sampleKey(m: ChannelMaps): string {
  return m.source === 'image' ? `img:${m.file}#${m.index}` : `idx:${m.index}`;
}

/** Later maps for the same (source, file, index) replace earlier ones. */
export function mergeMaps(a: ChannelMaps[], b: ChannelMaps[]): ChannelMaps[] {
  const id = (m: ChannelMaps) => `${m.source}|${m.file}|${m.index}`;
  const out = new Map<string, ChannelMaps>();
  for (const m of [...a, ...b]) out.set(id(m), m);
  return [...out.values()];
}

function describeMap(m: ChannelMaps, target?: number): string {
  const who = m.source === 'image' ? basename(m.file) : `${m.source} #${m.index}`;
  const label = m.label !== undefined ? `label ${m.label}, ` : '';
  const hit = m.source !== 'clean' && target !== undefined && m.predicted === target ? ' (attack target)' : '';
  return `${who}: ${label}predicted ${m.predicted}${hit}`;
}

function optionLabel(key: string, maps: ChannelMaps[], target?: number): string {
  if (key.startsWith('img:')) return `${basename(maps[0].file)} → ${maps[0].predicted}`;
  const part = (m: ChannelMaps) => `${m.source}${m.label !== undefined ? ` (label ${m.label})` : ''} → ${m.predicted}${m.source !== 'clean' && m.predicted === target ? ' ⚠' : ''}`;
  return `#${maps[0].index}: ${maps.map(part).join(', ')}`;
}

export function spatialGrid(p: GridProps): HTMLElement {
  const groups = new Map<string, ChannelMaps[]>();
  for (const m of p.maps) {
    const k = sampleKey(m);
    groups.set(k, [...(groups.get(k) ?? []), m]);
  }
  for (const g of groups.values()) g.sort((a, b) => SOURCE_RANK[a.source] - SOURCE_RANK[b.source]);
  const keys = [...groups.keys()].sort((a, b) => {
    const ia = a.startsWith('idx:'), ib = b.startsWith('idx:');
    if (ia !== ib) return ia ? -1 : 1;
    return ia ? Number(a.slice(4)) - Number(b.slice(4)) : a.localeCompare(b);
  });
  const key = p.sample && groups.has(p.sample) ? p.sample : keys[0];

  const controls = h('div', { class: 'controls' });
  if (keys.length) {
    const select = h('vscode-single-select', { id: 'sample-select', 'aria-label': 'Sample image' }) as HTMLElement & { value: string };
    for (const k of keys) {
      select.append(h('vscode-option', { value: k, selected: k === key }, optionLabel(k, groups.get(k)!, p.report.target)));
    }
    select.addEventListener('change', () => p.onChange({ sample: select.value }));
    controls.append(h('label', { class: 'control' }, h('span', {}, 'Sample'), select));
  }
  const order = h('vscode-single-select', { id: 'order-select', 'aria-label': 'Channel order' }) as HTMLElement & { value: string };
  order.append(
    h('vscode-option', { value: 'pruning', selected: p.order === 'pruning' }, 'pruning order'),
    h('vscode-option', { value: 'index', selected: p.order === 'index' }, 'channel index'),
  );
  order.addEventListener('change', () => p.onChange({ order: order.value as ChannelOrder }));
  controls.append(h('label', { class: 'control' }, h('span', {}, 'Channel order'), order));

  if (!p.standalone) {
    const field = h('vscode-textfield', { id: 'index-field', type: 'number', min: 0, placeholder: 'index', 'aria-label': 'Validation set index to load' }) as HTMLElement & { value: string; invalid: boolean };
    const load = () => {
      const i = Number(field.value);
      field.invalid = !(field.value !== '' && Number.isInteger(i) && i >= 0);
      if (!field.invalid) p.request(i);
    };
    field.addEventListener('keydown', (ev) => { if ((ev as KeyboardEvent).key === 'Enter') load(); });
    controls.append(
      h('span', { class: 'control' }, field, h('vscode-button', { secondary: true, onclick: load }, 'Load index')),
      h('vscode-button', { secondary: true, onclick: () => p.pickImage() }, 'Pick PNG/JPEG…'),
    );
  }

  if (!key) {
    return h('div', { class: 'grid' }, controls,
      h('p', { class: 'empty' }, p.standalone
        ? 'This report has no activation maps of sample images.'
        : 'This report has no activation maps of sample images. Load an index or pick an image above.'));
  }

  const shown = groups.get(key)!;
  const H = shown[0].height, W = shown[0].width;
  const C = Math.min(...shown.map((m) => m.channels));
  const max = Math.max(0, ...shown.map((m) => (Number.isFinite(m.max) ? m.max : Math.max(...m.values))));
  const rankOf = new Map(p.report.ranking.map((r, i) => [r.channel, i]));
  const channels = Array.from({ length: C }, (_, c) => c);
  if (p.order === 'pruning') channels.sort((a, b) => (rankOf.get(a) ?? C + a) - (rankOf.get(b) ?? C + b));
  const at = prunedAt(p.report.thresholds);
  const firstDrop = [...p.report.thresholds].filter((t) => t.reached).sort((a, b) => a.drop - b.drop)[0]?.drop;

  // per map and channel: mean and max, for the tooltip and the text twin
  const stats = shown.map((m) => channels.map((c) => {
    let s = 0, mx = 0;
    for (let i = c * H * W; i < (c + 1) * H * W; i++) { s += m.values[i]; mx = Math.max(mx, m.values[i]); }
    return { mean: s / (H * W), max: mx };
  }));

  // geometry: each map scaled to ~40 px tall, maps of a channel side by side
  const scale = Math.max(1, Math.min(8, Math.round(40 / Math.max(H, 1))));
  const mw = W * scale, mh = H * scale;
  const gap = 2;
  const minCellW = shown.length * mw + (shown.length - 1) * gap + 12;
  const cellH = mh + 22;
  const legendH = 40;

  const canvas = h('canvas', {
    tabindex: 0, role: 'img', class: 'chart',
    'aria-label': `Spatial activation maps of ${C} channels of ${p.report.layer} for ${shown.map((m) => describeMap(m)).join(' and ')}. Use the arrow keys to read channels.`,
  });
  const readout = h('div', { class: 'readout', 'aria-live': 'polite' });
  const wrap = h('div', { class: 'canvas-wrap' }, canvas);
  let width = 0;
  let cursor: number | undefined;
  const perRow = () => Math.max(1, Math.floor(width / minCellW));
  // spread the spare width over the cells so rows fill the panel
  let cellW = minCellW;
  // whole pixels: fractional origins leave hairline seams between the map pixels
  const cellXY = (k: number) => ({ x: Math.round((k % perRow()) * cellW), y: legendH + Math.floor(k / perRow()) * cellH });

  function draw() {
    if (width <= 0) return;
    const t = theme();
    cellW = Math.min(minCellW * 1.6, width / perRow());
    const rows = Math.ceil(C / perRow());
    const ctx = prepare(canvas, width, legendH + rows * cellH + 4);
    drawLegend(ctx, 120, 8, Math.min(240, width - 140), max, 'activation', t, num);
    ctx.font = `11px ${t.mono}`;
    ctx.textBaseline = 'top';
    channels.forEach((c, k) => {
      const { x, y } = cellXY(k);
      const pruned = at.get(c);
      ctx.textAlign = 'left';
      const mark = pruned !== undefined && pruned === firstDrop;
      ctx.fillStyle = mark ? t.threshold : t.muted;
      ctx.fillText(String(c), x + 6, y + 3);
      if (mark) ctx.fillRect(x + 6, y + 14, ctx.measureText(String(c)).width, 1.5);
      shown.forEach((m, j) => {
        const x0 = x + 6 + j * (mw + gap);
        const y0 = y + 17;
        const off = c * H * W;
        for (let yy = 0; yy < H; yy++) {
          for (let xx = 0; xx < W; xx++) {
            ctx.fillStyle = heat(m.values[off + yy * W + xx], max);
            ctx.fillRect(x0 + xx * scale, y0 + yy * scale, scale, scale);
          }
        }
      });
      if (cursor === k) {
        ctx.strokeStyle = t.focus;
        ctx.lineWidth = 2;
        ctx.strokeRect(x + 2, y + 1, cellW - 4, cellH - 2);
      }
    });
  }

  type Hit = { k: number; j?: number; yy?: number; xx?: number };
  interact<Hit>({
    canvas, readout,
    hint: 'Hover a map or focus the grid and use the arrow keys to read channels.',
    hit: (x, y) => {
      if (y < legendH) return undefined;
      const col = Math.floor(x / cellW), row = Math.floor((y - legendH) / cellH);
      if (col >= perRow()) return undefined;
      const k = row * perRow() + col;
      if (k >= C) return undefined;
      const { x: cx, y: cy } = cellXY(k);
      const lx = x - cx - 6, ly = y - cy - 17;
      const j = Math.floor(lx / (mw + gap));
      const inMap = j >= 0 && j < shown.length && lx - j * (mw + gap) < mw && ly >= 0 && ly < mh;
      return inMap ? { k, j, xx: Math.floor((lx - j * (mw + gap)) / scale), yy: Math.floor(ly / scale) } : { k };
    },
    describe: ({ k, j, yy, xx }) => {
      const c = channels[k];
      const rank = rankOf.get(c);
      const pruned = at.get(c);
      const lines = [`Channel ${c}${rank !== undefined ? ` · pruning rank ${rank + 1}` : ''}${pruned !== undefined ? ` · pruned from ${drop(pruned)}%` : ''}`];
      if (j !== undefined && yy !== undefined && xx !== undefined) {
        const m = shown[j];
        lines.push(`${m.source === 'image' ? basename(m.file) : m.source} at (y ${yy}, x ${xx}): ${num(m.values[c * H * W + yy * W + xx])}`);
      }
      shown.forEach((m, jj) => lines.push(`${m.source === 'image' ? 'image' : m.source}: max ${num(stats[jj][k].max)}, mean ${num(stats[jj][k].mean)}`));
      return lines;
    },
    move: (cur, key) => {
      const k = cur?.k ?? -1;
      const pr = perRow();
      const next = ({
        ArrowRight: k + 1, ArrowLeft: k - 1, ArrowDown: k < 0 ? 0 : k + pr, ArrowUp: k - pr, Home: 0, End: C - 1,
      } as Record<string, number>)[key];
      if (next === undefined) return undefined;
      return { k: Math.max(0, Math.min(C - 1, next)) };
    },
    anchor: ({ k }) => { const { x, y } = cellXY(k); return { x: x + cellW / 2, y: y + cellH }; },
    highlight: (it) => { cursor = it?.k; draw(); },
    same: (a, b) => a.k === b.k && a.j === b.j && a.yy === b.yy && a.xx === b.xx,
  });
  onWidth(wrap, (w) => { width = w; draw(); });
  repaintOnTheme(canvas, draw);

  const captions = h('div', { class: 'map-captions' },
    h('span', { class: 'muted' }, 'Each cell: channel number, then'),
    ...shown.map((m, j) => h('span', { class: `chip src-${m.source}` },
      `${['left', 'middle', 'right'][shown.length === 2 && j === 1 ? 2 : j]}: ${describeMap(m, p.report.target)}`)),
    h('span', { class: 'muted' }, `· ${H}×${W} per map, one colour scale for all`),
    firstDrop !== undefined && h('span', { class: 'muted' }, '·'),
    firstDrop !== undefined && h('span', { class: 'pruned-key' }, `underlined = pruned at the ${drop(firstDrop)}% threshold`),
  );
  const table = dataTable('Per-channel maxima and means as a table',
    ['Channel', ...shown.flatMap((m) => [`${m.source} max`, `${m.source} mean`])],
    channels.map((c, k) => [c, ...shown.flatMap((_, j) => [num(stats[j][k].max), num(stats[j][k].mean)])]), 1);
  return h('div', { class: 'grid' }, controls, captions, wrap, readout, table);
}
