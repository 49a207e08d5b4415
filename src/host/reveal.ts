// Shows a file to the user: in the explorer when it is part of the workspace,
// else in the operating system's file manager.
import * as vscode from 'vscode';

export async function revealPath(file: string): Promise<void> {
  const uri = vscode.Uri.file(file);
  if (vscode.workspace.getWorkspaceFolder(uri)) {
    await vscode.commands.executeCommand('revealInExplorer', uri);
  } else {
    await vscode.commands.executeCommand('revealFileInOS', uri);
  }
}
