// One queue per model: audits of different models run at the same time, while a
// second audit of the same model waits for the first (both write the same folder).
// Pure (no vscode): unit-tested.

export class QueueCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

interface Entry {
  controller: AbortController;
  started: boolean;
}

export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly entries = new Map<string, Entry[]>();

  /** Is something running or waiting for this key? */
  busy(key: string): boolean {
    return (this.entries.get(key)?.length ?? 0) > 0;
  }

  /** How many jobs are running now, over all keys. */
  get running(): number {
    let n = 0;
    for (const list of this.entries.values()) n += list.filter((e) => e.started).length;
    return n;
  }

  /**
   * Runs `task` once every earlier task of the same key has settled. Aborting `controller`
   * while the task waits rejects at once with QueueCancelled and the task never starts;
   * once it runs, the task itself reacts to the signal.
   */
  run<T>(key: string, task: (signal: AbortSignal) => Promise<T>, controller = new AbortController()): Promise<T> {
    const entry: Entry = { controller, started: false };
    this.entries.set(key, [...(this.entries.get(key) ?? []), entry]);
    const remove = () => {
      const rest = (this.entries.get(key) ?? []).filter((e) => e !== entry);
      if (rest.length) this.entries.set(key, rest);
      else this.entries.delete(key);
    };

    const ran = (this.tails.get(key) ?? Promise.resolve()).then(() => {
      if (controller.signal.aborted) throw new QueueCancelled();
      entry.started = true;
      return task(controller.signal);
    });
    const tail = ran.then(() => undefined, () => undefined).finally(() => {
      remove();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    this.tails.set(key, tail);

    const cancelledWhileWaiting = new Promise<never>((_, reject) => {
      const onAbort = () => {
        if (entry.started) return;
        remove();
        reject(new QueueCancelled());
      };
      if (controller.signal.aborted) onAbort();
      else controller.signal.addEventListener('abort', onAbort, { once: true });
    });
    cancelledWhileWaiting.catch(() => undefined); // only the race below reports it
    return Promise.race([ran, cancelledWhileWaiting]);
  }

  /** Aborts the job of this key that runs now; the waiting ones stay queued. */
  cancelRunning(key: string): boolean {
    const running = this.entries.get(key)?.find((e) => e.started && !e.controller.signal.aborted);
    running?.controller.abort();
    return running !== undefined;
  }

  /** Aborts everything (on deactivate, so no worker outlives the extension). */
  cancelAll(): void {
    for (const list of this.entries.values()) for (const e of list) e.controller.abort();
  }
}
