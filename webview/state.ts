// Where the webview's data comes from and goes to. In VS Code the host posts messages
// and getState/setState survive hide/show/reload; standalone, the state is embedded in
// the page and actions that need the editor are simply not offered.
import type { ChannelMaps, ViewState, WebviewToHost } from '../src/protocol';

export type ChannelOrder = 'pruning' | 'index';

/** UI choices worth keeping across hide/show/reload. */
export interface UiState {
  /** key of the picked sample in the spatial grid, see sampleKey() */
  sample?: string;
  order: ChannelOrder;
  inspectTab: number;
  /** maps the host sent after the report (other indices, picked images) */
  extraMaps: ChannelMaps[];
  rerun?: string;
  scrollY: number;
}

export interface Saved {
  view?: ViewState;
  ui: UiState;
}

export interface Bridge {
  readonly standalone: boolean;
  post(msg: WebviewToHost): void;
  load(): Saved;
  save(s: Saved): void;
}

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(s: unknown): void;
}

declare global {
  // Injected by VS Code into webviews; absent in a plain browser.
  // eslint-disable-next-line no-var
  var acquireVsCodeApi: (() => VsCodeApi) | undefined;
}

export const defaultUi = (): UiState => ({ order: 'pruning', inspectTab: 0, extraMaps: [], scrollY: 0 });

function asSaved(raw: unknown): Saved {
  const s = (raw && typeof raw === 'object' ? raw : {}) as Partial<Saved>;
  return { view: s.view, ui: { ...defaultUi(), ...(s.ui ?? {}) } };
}

/** The state embedded by standaloneHtml() in <script type="application/json" id="state">. */
function embeddedState(): ViewState | undefined {
  const el = document.getElementById('state');
  if (!el?.textContent) return undefined;
  try {
    return JSON.parse(el.textContent) as ViewState;
  } catch {
    return undefined;
  }
}

export function createBridge(): Bridge {
  if (typeof globalThis.acquireVsCodeApi === 'function') {
    const api = globalThis.acquireVsCodeApi();
    return {
      standalone: false,
      post: (msg) => api.postMessage(msg),
      load: () => asSaved(api.getState()),
      save: (s) => api.setState(s),
    };
  }
  // Standalone: nothing to talk to; keep UI choices for this page view only.
  let memory: Saved = { view: embeddedState(), ui: defaultUi() };
  return {
    standalone: true,
    post: () => undefined,
    load: () => memory,
    save: (s) => { memory = s; },
  };
}
