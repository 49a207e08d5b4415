// A tiny element builder. Text always goes through textContent, never innerHTML,
// so nothing in a report (file names, layer names) can inject markup.
type Attrs = Record<string, string | number | boolean | undefined | ((ev: Event) => void)>;
export type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Attrs, ...children: Child[]): HTMLElement;
export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** A section with a heading, the unit every dashboard panel is built from. */
export function section(id: string, title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'panel', id, 'aria-labelledby': `${id}-h` },
    h('h2', { id: `${id}-h` }, title), ...children);
}

/** Key/value facts rendered as a definition list. */
export function facts(items: [string, Child, string?][]): HTMLElement {
  const dl = h('dl', { class: 'facts' });
  for (const [k, v, title] of items) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(h('div', { class: 'fact', title }, h('dt', {}, k), h('dd', {}, v)));
  }
  return dl;
}

/** A collapsible plain table, the text twin of a canvas chart. */
export function dataTable(summary: string, header: string[], rows: (string | number)[][], numericFrom = 1): HTMLElement {
  const table = h('table', { class: 'data' },
    h('thead', {}, h('tr', {}, ...header.map((c, i) => h('th', { scope: 'col', class: i >= numericFrom ? 'num' : undefined }, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c, i) => h('td', { class: i >= numericFrom ? 'num' : undefined }, c))))));
  return h('details', { class: 'as-table' }, h('summary', {}, summary), h('div', { class: 'scroll' }, table));
}
