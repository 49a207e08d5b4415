// Smoke test of the e2e harness itself: a real workbench (code-server + chromium)
// loads the extension in development mode, the palette lists every contributed
// command, and running one activates the extension.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  contributedCommands, extensionBuilt, hasCommand, hostUnavailableReason, paletteLabel, repoRoot, runCommand,
  runningExtensionRow, screenshot, withWorkbench,
} from './harness';

const skip = hostUnavailableReason() ?? (extensionBuilt() ? undefined : 'dist/extension.cjs is missing: run npm run build');

/** Commands with a commandPalette `when` clause depend on context (or are hidden): not expected there. */
function paletteCommands() {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const hidden = new Set<string>((pkg.contributes?.menus?.commandPalette ?? [])
    .filter((m: { when?: string }) => m.when !== undefined).map((m: { command: string }) => m.command));
  return contributedCommands().filter((c) => !hidden.has(c.command));
}

test('workbench lists every contributed command and activates the extension', { skip, timeout: 240_000 }, async () => {
  await withWorkbench('smoke', { extensionDevelopmentPath: repoRoot }, async ({ page }) => {
    const commands = paletteCommands();
    assert.ok(commands.length > 0, 'package.json contributes no palette commands');
    const missing: string[] = [];
    for (const [i, c] of commands.entries()) {
      // The first may wait for the extension's registration; the rest are there by then.
      if (!(await hasCommand(page, paletteLabel(c), i === 0 ? 30_000 : 5_000))) missing.push(paletteLabel(c));
    }
    assert.deepEqual(missing, [], `not in the command palette: ${missing.join(', ')}`);

    // Any of our commands activates the extension; the runtime view then lists it as activated.
    const log = commands.find((c) => c.command === 'backdoorAudit.showLog') ?? commands[0];
    await runCommand(page, paletteLabel(log));
    const row = await runningExtensionRow(page, /backdoor-audit|Backdoor Audit/i);
    assert.ok(row, 'the extension is not in Developer: Show Running Extensions');
    assert.match(row, /Activation/, `not activated: ${row}`);
    await screenshot(page, 'smoke-running-extensions');
  });
});
