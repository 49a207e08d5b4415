// "Model Inspector": a read-only custom editor for .h5/.keras files (priority "option",
// so it never takes over from other HDF5 viewers; "Open With…" and Inspect Model use it).
// The file is only read by the worker: nothing in it is executed.
import * as vscode from 'vscode';
import { INSPECTOR_VIEW_TYPE } from './ids';
import type { Panels } from './panels';

export class ModelInspectorProvider implements vscode.CustomReadonlyEditorProvider {
  constructor(private readonly panels: Panels) {}

  static register(panels: Panels): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(INSPECTOR_VIEW_TYPE, new ModelInspectorProvider(panels), {
      webviewOptions: { retainContextWhenHidden: false },
      supportsMultipleEditorsPerDocument: true,
    });
  }

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => undefined };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    if (document.uri.scheme !== 'file') {
      panel.webview.html = `<!DOCTYPE html><html><body><p>Only files on this machine's disk can be inspected (this one is ${document.uri.scheme}:).</p></body></html>`;
      return;
    }
    this.panels.attachInspector(panel, document.uri.fsPath);
  }
}
