// Placeholder until the demo exists: audits demo/ with defaults.
export async function runDemo(_out?: string, _json?: boolean, _backend?: unknown): Promise<number> {
  throw new Error('demo not ready');
}
