// V8's sampling heap profiler through node:inspector: the host bytes a piece
// of code allocates, by the file of the allocating function.
import { Session } from "node:inspector/promises";

/**
 * The host bytes allocated while `f` runs, sampled by V8's allocation sampler
 * every 64 bytes (objects collected since included): by the allocating
 * function's file (`byFile`), and with what builtins allocate (a subarray, a
 * boxed number) charged to the file of the function that called them (`byCaller`).
 */
export async function allocated(f: () => Promise<void> | void): Promise<{ total: number; byFile: Map<string, number>; byCaller: Map<string, number> }> {
  const session = new Session();
  session.connect();
  try {
    await session.post("HeapProfiler.enable");
    const options = { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true };
    await session.post("HeapProfiler.startSampling", options as { samplingInterval: number });
    try {
      await f();
    } finally {
      const { profile } = await session.post("HeapProfiler.stopSampling");
      const [byFile, byCaller] = [new Map<string, number>(), new Map<string, number>()];
      let total = 0;
      const walk = (n: typeof profile.head, caller: string): void => {
        total += n.selfSize;
        const file = n.callFrame.url.replace(/^.*\/node_modules\//, "").replace(/^.*\/(runtime|compiler)\//, "$1/");
        byFile.set(file, (byFile.get(file) ?? 0) + n.selfSize);
        const charged = file || caller;
        byCaller.set(charged, (byCaller.get(charged) ?? 0) + n.selfSize);
        n.children.forEach((c) => walk(c, charged));
      };
      walk(profile.head, "");
      return { total, byFile, byCaller };
    }
  } finally {
    session.disconnect();
  }
}
