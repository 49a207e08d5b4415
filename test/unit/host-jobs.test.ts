// Per-model queue: different models in parallel, the same model one after the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedQueue, QueueCancelled } from '../../src/host/jobs';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('different keys run at the same time', async () => {
  const q = new KeyedQueue();
  const a = deferred();
  const b = deferred();
  const started: string[] = [];
  const pa = q.run('a', async () => { started.push('a'); await a.promise; return 'A'; });
  const pb = q.run('b', async () => { started.push('b'); await b.promise; return 'B'; });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['a', 'b']);
  assert.equal(q.running, 2);
  a.resolve();
  b.resolve();
  assert.deepEqual(await Promise.all([pa, pb]), ['A', 'B']);
  assert.equal(q.busy('a'), false);
});

test('the same key waits for the one before, even if that one fails', async () => {
  const q = new KeyedQueue();
  const first = deferred();
  const order: string[] = [];
  const p1 = q.run('m', async () => { order.push('1 start'); await first.promise; order.push('1 end'); throw new Error('boom'); });
  const p2 = q.run('m', async () => { order.push('2 start'); return 2; });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['1 start']);
  assert.equal(q.busy('m'), true);
  first.resolve();
  await assert.rejects(p1, /boom/);
  assert.equal(await p2, 2);
  assert.deepEqual(order, ['1 start', '1 end', '2 start']);
  assert.equal(q.busy('m'), false);
});

test('cancelRunning aborts the running job; the waiting one then starts', async () => {
  const q = new KeyedQueue();
  const p1 = q.run('m', (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))));
  const p2 = q.run('m', async (signal) => (signal.aborted ? 'aborted' : 'ran'));
  await new Promise((r) => setImmediate(r));
  assert.equal(q.cancelRunning('m'), true);
  await assert.rejects(p1, /aborted/);
  assert.equal(await p2, 'ran');
});

test('a waiting job cancelled by its own controller rejects at once and never starts', async () => {
  const q = new KeyedQueue();
  const first = deferred();
  let secondStarted = false;
  const p1 = q.run('m', () => first.promise);
  const c = new AbortController();
  const p2 = q.run('m', async () => { secondStarted = true; }, c);
  c.abort();
  await assert.rejects(p2, QueueCancelled);
  first.resolve();
  await p1;
  await new Promise((r) => setImmediate(r));
  assert.equal(secondStarted, false);
  assert.equal(q.busy('m'), false);
});

test('cancelAll aborts running and waiting jobs', async () => {
  const q = new KeyedQueue();
  const p1 = q.run('a', (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))));
  const p2 = q.run('a', async () => 'never');
  await new Promise((r) => setImmediate(r));
  q.cancelAll();
  await assert.rejects(p1, /aborted/);
  await assert.rejects(p2, QueueCancelled);
});
