// Inspect view: what is in the .h5 before anything runs. Warnings (Lambda and custom
// layers, never executed) come first because they are the reason to look at a model.
import type { InspectResult } from '../src/core/types';
import { facts, h } from './dom';
import { basename, int, num, shape } from './format';
import type { UiState } from './state';
import { vsTable } from './table';

const FORMAT_NAMES: Record<string, string> = {
  'keras2-h5': 'Keras 2 HDF5', 'keras3-h5': 'Keras 3 HDF5', 'keras3-zip': 'Keras 3 .keras (zip)', 'weights-only+arch': 'weights-only HDF5 + architecture file',
};

function zeroCell(z: number[] | undefined): string | Node {
  if (!z) return '—'; // not a layer with output channels
  if (z.length === 0) return '0';
  const list = z.length > 12 ? `${z.slice(0, 12).join(', ')}, …` : z.join(', ');
  return h('span', { class: 'zeroed', title: `channels ${z.join(', ')}` }, h('span', { class: 'badge warn' }, String(z.length)), ` ${list}`);
}

/** `onChangeArch`: the editor's "Change Architecture…" (absent in a standalone page). */
export function inspectView(r: InspectResult, ui: UiState, onTab: (i: number) => void, onChangeArch?: () => void): HTMLElement {
  const zeroed = r.layers.filter((l) => l.zeroChannels && l.zeroChannels.length);
  const header = h('header', { class: 'page-head' },
    h('div', { class: 'title-row' },
      h('h1', { title: r.file }, basename(r.file)),
      h('vscode-badge', { variant: 'counter' }, FORMAT_NAMES[r.format] ?? r.format)),
    h('div', { class: 'path muted', title: r.file }, r.file),
    facts([
      ['Keras version', r.kerasVersion],
      ['Saved with backend', r.backendSavedWith],
      ['Input shape', shape(r.inputShape)],
      ['Classes', int(r.outputClasses)],
      ['Parameters', int(r.params)],
      ['Layers', int(r.layers.length)],
      ['Architecture file', r.archFile ? basename(r.archFile) + (r.archNote ? ` (${r.archNote})` : '') : undefined, r.archFile],
    ]),
    r.format === 'weights-only+arch' && onChangeArch
      ? h('p', { class: 'arch-note' },
        'This file holds weights only; its layers come from the architecture file above. ',
        h('vscode-button', { id: 'change-arch', secondary: true, onclick: onChangeArch }, 'Change Architecture…'))
      : null,
  );

  const warnings = r.warnings.length
    ? h('div', { class: 'callout warning', role: 'alert' },
      h('strong', {}, `${r.warnings.length} warning${r.warnings.length > 1 ? 's' : ''}`),
      h('ul', {}, ...r.warnings.map((w) => h('li', {},
        h('code', {}, w.code), w.layer ? h('span', { class: 'muted' }, ` in layer ${w.layer}`) : null, ` — ${w.message}`))))
    : h('p', { class: 'ok-note' }, 'No warnings: no Lambda, custom or unknown layers in the model config.');
  const zeroNote = zeroed.length
    ? h('div', { class: 'callout info' },
      `${zeroed.length} layer${zeroed.length > 1 ? 's have' : ' has'} channels whose weights are all zero — this model was likely pruned before: `,
      zeroed.map((l) => `${l.name} (${l.zeroChannels!.length})`).join(', '), '.')
    : null;

  const layerTable = vsTable('layer-table', 'Layers',
    [
      { text: 'Layer' }, { text: 'Class' }, { text: 'Output shape' }, { text: 'Params', numeric: true },
      { text: 'Activation' }, { text: 'Inbound' }, { text: 'Zeroed channels', title: 'Output channels whose kernel slice and bias are all zero' },
    ],
    r.layers.map((l) => ({
      className: l.zeroChannels?.length ? 'flagged' : undefined,
      cells: [l.name, l.className, shape(l.outputShape), int(l.params), l.activation ?? '—', l.inbound.join(', ') || '—', zeroCell(l.zeroChannels)],
    })),
    ['15%', '12%', '14%', '9%', '10%', '15%', 'auto']);

  const statRows = r.layers.flatMap((l) => Object.entries(l.weightStats ?? {}).map(([w, s]) => ({
    className: s.zeros > 0 ? 'flagged' : undefined,
    cells: [l.name, w, int(s.count), num(s.min), num(s.max), num(s.mean), num(s.std), `${(s.zeros * 100).toFixed(2)}%`],
  })));
  const statsTable = statRows.length
    ? vsTable('weights-table', 'Weight statistics',
      [{ text: 'Layer' }, { text: 'Weight' }, ...['Count', 'Min', 'Max', 'Mean', 'Std', 'Zeros'].map((text) => ({ text, numeric: true }))],
      statRows, ['18%', '12%', 'auto', 'auto', 'auto', 'auto', 'auto', 'auto'])
    : h('p', { class: 'empty' }, 'No weights were read for this model.');

  const tabs = h('vscode-tabs', { id: 'inspect-tabs', 'selected-index': ui.inspectTab },
    h('vscode-tab-header', { slot: 'header' }, `Layers (${r.layers.length})`),
    h('vscode-tab-panel', {}, layerTable),
    h('vscode-tab-header', { slot: 'header' }, `Weight statistics (${statRows.length})`),
    h('vscode-tab-panel', {}, statsTable),
  );
  tabs.addEventListener('vsc-tabs-select', (ev) => onTab((ev as CustomEvent<{ selectedIndex: number }>).detail.selectedIndex));
  return h('div', { class: 'view inspect' }, header, warnings, zeroNote, tabs);
}
