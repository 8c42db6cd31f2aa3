// A page's pool worker (a module Web Worker started by runtime/browser/threads.ts):
// it instantiates the kernels' WebAssembly modules on their shared memories,
// says it is ready, and serves jobs (runtime/jobs.ts) until the page stops it.
import { CHUNK_BITS, controlViews, instantiateUnits, runChunks, serveJobs } from "../jobs.js";
import type { WorkerStart } from "../jobs.js";

/** This worker's global scope, as much of it as is used here. */
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<WorkerStart>) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (e) => {
  scope.onmessage = null;
  const { units, control, spin, words } = e.data;
  let table;
  try {
    table = instantiateUnits(units).table;
  } catch (err) {
    scope.postMessage({ error: err instanceof Error ? err.message : String(err) });
    return;
  }
  scope.postMessage("ready");
  const { ctl, args } = controlViews(control);
  serveJobs(ctl, args, table, spin, words, CHUNK_BITS, runChunks);
};
