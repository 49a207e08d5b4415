// A problem with the user's input: shown as one line naming the file, never
// with a stack trace. Anything else that escapes is a bug in this tool.
export class UserError extends Error {
  constructor(message: string, readonly file?: string, readonly code = 'bad-input') {
    super(file ? `${file}: ${message}` : message);
    this.name = 'UserError';
  }

  /** Rebuilds an error that crossed a process boundary (message already names the file). */
  static revive(e: { message: string; file?: string; code?: string }): UserError {
    const err = new UserError('', undefined, e.code);
    err.message = e.message;
    return Object.assign(err, { file: e.file });
  }
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

export function assertUser(cond: unknown, message: string, file?: string, code?: string): asserts cond {
  if (!cond) throw new UserError(message, file, code);
}
