// The HDF5 library can loop forever on a corrupt file, and JavaScript cannot
// interrupt a WebAssembly call on its own thread. This thread reads the state
// core/h5/file.ts shares and, once a single HDF5 call has run for `limit`
// seconds and the process has spent as many seconds of CPU meanwhile (a loop
// burns CPU; a call merely slowed by a busy machine does not), writes a marker
// line naming the file to stderr (synchronously: the main thread is stuck and
// cannot relay it) and kills its process. The parent (client.ts,
// shardProcess.ts) turns the marker into a clear error.
import { Worker } from 'node:worker_threads';
import { shareH5Activity } from '../core/h5/file';
import { H5_STUCK_MARKER } from '../protocol';

const THREAD = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { buf, limit, marker } = workerData;
const state = new Int32Array(buf, 0, 2);
const name = new Uint8Array(buf, 8);
// The process's CPU seconds (every thread), and their count when the current call was first seen.
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
let seen = -1, cpuAtStart = 0;
setInterval(() => {
  if (Atomics.load(state, 0) <= 0) { seen = -1; return; }
  const start = Atomics.load(state, 1);
  if (start !== seen) { seen = start; cpuAtStart = cpu(); }
  if (Date.now() / 1000 - start > limit && cpu() - cpuAtStart > limit) {
    const end = name.indexOf(0);
    writeSync(2, '\\n' + marker + Buffer.from(name.subarray(0, end < 0 ? name.length : end)).toString() + '\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}, 250);
`;

/** `limit`: seconds one HDF5 call may take; reading even large weights takes a few. */
export function startH5Watchdog(limit = Number(process.env.BACKDOOR_AUDIT_H5_TIMEOUT) || 20): void {
  const buf = new SharedArrayBuffer(8 + 4096);
  shareH5Activity(buf);
  // execArgv: [] so the thread does not load the parent's loaders (tsx in tests): it must start on its own.
  new Worker(THREAD, { eval: true, execArgv: [], workerData: { buf, limit, marker: H5_STUCK_MARKER } }).unref();
}
