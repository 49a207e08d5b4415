// Shared canvas plumbing: crisp sizing on HiDPI, theme colours read from CSS variables,
// the colour map, and one pointer/keyboard interaction model so every chart has the same
// hover tooltip, arrow-key cursor and screen-reader readout.
import { h } from './dom';

/** Viridis anchor colours: perceptually uniform, readable in light, dark and for most colour-blind readers. */
const STOPS = ['#440154', '#482475', '#414487', '#355f8d', '#2a788e', '#21918c', '#22a884', '#44bf70', '#7ad151', '#bddf26', '#fde725'];

const LUT: string[] = (() => {
  const rgb = STOPS.map((s) => [1, 3, 5].map((i) => parseInt(s.slice(i, i + 2), 16)));
  const out: string[] = [];
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (rgb.length - 1);
    const k = Math.min(Math.floor(t), rgb.length - 2);
    const f = t - k;
    const c = rgb[k].map((v, j) => Math.round(v + (rgb[k + 1][j] - v) * f));
    out.push(`rgb(${c[0]},${c[1]},${c[2]})`);
  }
  return out;
})();

/** Colour for v on the scale [0, max]; values outside are clamped. */
export function heat(v: number, max: number): string {
  const t = max > 0 && Number.isFinite(v) ? Math.min(1, Math.max(0, v / max)) : 0;
  return LUT[Math.round(t * 255)];
}

/** A CSS variable resolved at the body (VS Code puts its theme on <html>, classes on <body>). */
export function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

export interface Theme {
  fg: string;
  muted: string;
  grid: string;
  bg: string;
  /** panel background, behind labels drawn over lines */
  surface: string;
  font: string;
  mono: string;
  focus: string;
  accuracy: string;
  attack: string;
  threshold: string;
  pruned: string;
  suspect: string;
}

export function theme(): Theme {
  return {
    fg: cssVar('--ba-fg', '#333'),
    muted: cssVar('--ba-muted', '#777'),
    grid: cssVar('--ba-grid', 'rgba(128,128,128,0.3)'),
    bg: cssVar('--ba-bg', '#fff'),
    surface: cssVar('--ba-surface', '#fff'),
    font: cssVar('--vscode-font-family', 'system-ui, sans-serif'),
    mono: cssVar('--vscode-editor-font-family', 'monospace'),
    focus: cssVar('--vscode-focusBorder', '#0078d4'),
    accuracy: cssVar('--ba-accuracy', '#3794ff'),
    attack: cssVar('--ba-attack', '#f14c4c'),
    threshold: cssVar('--ba-threshold', '#cca700'),
    pruned: cssVar('--ba-pruned', '#888'),
    suspect: cssVar('--ba-suspect', '#f14c4c'),
  };
}

/** Size the backing store for the device pixel ratio; drawing stays in CSS pixels. */
export function prepare(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.floor(width));
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, height);
  return ctx;
}

/** Horizontal colour legend: gradient bar with 0, mid and max labelled. */
export function drawLegend(ctx: CanvasRenderingContext2D, x: number, y: number, w: number, max: number, label: string, t: Theme, fmt: (v: number) => string): void {
  const h = 10;
  for (let i = 0; i < w; i++) {
    ctx.fillStyle = heat((i / (w - 1)) * max, max);
    ctx.fillRect(x + i, y, 1.5, h);
  }
  ctx.strokeStyle = t.grid;
  ctx.strokeRect(x + 0.5, y + 0.5, w - 1, h - 1);
  ctx.fillStyle = t.muted;
  ctx.font = `11px ${t.font}`;
  ctx.textBaseline = 'top';
  ctx.textAlign = 'left';
  ctx.fillText('0', x, y + h + 3);
  ctx.textAlign = 'center';
  ctx.fillText(fmt(max / 2), x + w / 2, y + h + 3);
  ctx.textAlign = 'right';
  ctx.fillText(fmt(max), x + w, y + h + 3);
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  ctx.fillText(label, x - 8, y + h / 2);
}

// ---------- tooltip + interaction ----------

let tip: HTMLDivElement | undefined;

function tooltip(): HTMLDivElement {
  if (!tip) {
    tip = document.createElement('div');
    tip.className = 'tooltip';
    tip.setAttribute('role', 'tooltip');
    tip.hidden = true;
    document.body.append(tip);
  }
  return tip;
}

export function showTip(clientX: number, clientY: number, lines: string[]): void {
  const el = tooltip();
  el.replaceChildren(...lines.map((l, i) => {
    const d = document.createElement('div');
    if (i === 0) d.className = 'tip-title';
    d.textContent = l;
    return d;
  }));
  el.hidden = false;
  const r = el.getBoundingClientRect();
  const x = Math.min(clientX + 14, window.innerWidth - r.width - 6);
  const y = clientY + 16 + r.height > window.innerHeight ? clientY - r.height - 10 : clientY + 16;
  el.style.left = `${Math.max(4, x)}px`;
  el.style.top = `${Math.max(4, y)}px`;
}

export function hideTip(): void {
  if (tip) tip.hidden = true;
}

export interface Interactive<T> {
  canvas: HTMLCanvasElement;
  /** visible one-line text twin of the tooltip, announced politely to screen readers */
  readout: HTMLElement;
  /** idle text of the readout */
  hint: string;
  hit(x: number, y: number): T | undefined;
  describe(item: T): string[];
  /** keyboard navigation: the item after pressing key, from item (undefined = none yet) */
  move(item: T | undefined, key: string): T | undefined;
  /** where the item is on the canvas, in CSS pixels, to place the tooltip for keyboard users */
  anchor(item: T): { x: number; y: number };
  /** redraw with the cursor on item (or none) */
  highlight(item: T | undefined): void;
  same(a: T, b: T): boolean;
}

/** Wire hover, leave, focus, blur and arrow keys for one chart. */
export function interact<T>(c: Interactive<T>): void {
  let current: T | undefined;
  const set = (item: T | undefined, clientX?: number, clientY?: number) => {
    const changed = item === undefined ? current !== undefined : current === undefined || !c.same(item, current);
    current = item;
    if (changed) c.highlight(item);
    if (item === undefined) {
      hideTip();
      c.readout.textContent = c.hint;
      return;
    }
    const lines = c.describe(item);
    c.readout.textContent = lines.join(' · ');
    if (clientX === undefined || clientY === undefined) {
      const r = c.canvas.getBoundingClientRect();
      const a = c.anchor(item);
      clientX = r.left + a.x;
      clientY = r.top + a.y;
    }
    showTip(clientX, clientY, lines);
  };
  c.readout.textContent = c.hint;
  c.canvas.addEventListener('mousemove', (ev) => {
    const r = c.canvas.getBoundingClientRect();
    set(c.hit(ev.clientX - r.left, ev.clientY - r.top), ev.clientX, ev.clientY);
  });
  c.canvas.addEventListener('mouseleave', () => {
    if (document.activeElement !== c.canvas) set(undefined);
    else hideTip();
  });
  c.canvas.addEventListener('blur', () => set(undefined));
  c.canvas.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { set(undefined); return; }
    const next = c.move(current, ev.key);
    if (next === undefined) return;
    ev.preventDefault();
    set(next);
  });
}

/** Common 1-D keyboard navigation over 0..n-1. */
export function step1d(i: number | undefined, key: string, n: number, page = 10): number | undefined {
  if (n === 0) return undefined;
  const cur = i ?? -1;
  switch (key) {
    case 'ArrowRight': case 'ArrowDown': return Math.min(n - 1, cur + 1);
    case 'ArrowLeft': case 'ArrowUp': return Math.max(0, cur < 0 ? 0 : cur - 1);
    case 'PageDown': return Math.min(n - 1, cur + page);
    case 'PageUp': return Math.max(0, cur - page);
    case 'Home': return 0;
    case 'End': return n - 1;
    default: return undefined;
  }
}

/** Redraw when the element's width changes (panel resize, sidebar toggle). */
export function onWidth(el: HTMLElement, draw: (width: number) => void): void {
  let last = -1;
  new ResizeObserver(() => {
    const w = el.clientWidth;
    if (w > 0 && w !== last) { last = w; draw(w); }
  }).observe(el);
}

/** A tick step of 1, 2 or 5 × 10^k giving at most `count` ticks over 0..n. */
export function niceStep(n: number, count: number): number {
  const raw = Math.max(1, n / Math.max(1, count));
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const painters = new Map<HTMLCanvasElement, () => void>();

/** Every chart registers here so a theme change can repaint them all. */
export function repaintOnTheme(canvas: HTMLCanvasElement, draw: () => void): void {
  painters.set(canvas, draw);
}

export function repaintAll(): void {
  for (const [canvas, draw] of painters) {
    if (canvas.isConnected) draw();
    else painters.delete(canvas);
  }
}

/** A focusable chart canvas with its text readout, in the wrapper whose width it follows. */
export function chartShell(ariaLabel: string): { canvas: HTMLCanvasElement; readout: HTMLElement; wrap: HTMLElement } {
  const canvas = h('canvas', { tabindex: 0, role: 'img', class: 'chart', 'aria-label': ariaLabel });
  return { canvas, readout: h('div', { class: 'readout', 'aria-live': 'polite' }), wrap: h('div', { class: 'canvas-wrap' }, canvas) };
}

/** Horizontal grid lines and their percent labels every `step` points, from 0 to 100%. */
export function drawPercentGrid(ctx: CanvasRenderingContext2D, t: Theme, left: number, width: number, y: (rate: number) => number, step: number): void {
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let v = 0; v <= 100; v += step) {
    const py = Math.round(y(v / 100)) + 0.5;
    ctx.strokeStyle = t.grid;
    ctx.beginPath();
    ctx.moveTo(left, py);
    ctx.lineTo(left + width, py);
    ctx.stroke();
    ctx.fillStyle = t.muted;
    ctx.fillText(`${v}%`, left - 8, py);
  }
}
