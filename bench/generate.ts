// Generation with and without the key/value-cached step, on examples/lm's
// model (initial weights: the cost does not depend on them): CPU time per
// token while the text fits the context (63 tokens after the start token)
// and over 150 tokens (the context slides after 64), medians of 5 rounds
// after one warm-up, and a check that both draw the same tokens.
// Run with `npx tsx bench/generate.ts`; the bundle goes to a temp folder.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import lm, { config } from "../examples/lm/model.js";
import { compile } from "../compiler/compile.js";
import { load } from "../runtime/load.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "gradc-generate-"));
try {
  compile(lm, { ...config, outDir: path.join(dir, "lm") });
  const trainer = await load(path.join(dir, "lm"));
  const cpuSeconds = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"}; examples/lm, context ${config.generate!.graph.inputs[0]!.shape[1]}`);
  for (const tokens of [63, 150]) {
    const ms: Record<string, number> = {};
    for (const cache of [true, false]) {
      const times: number[] = [];
      for (let round = 0; round < 6; round++) {
        const t0 = cpuSeconds();
        trainer.generate({ tokens, seed: round, cache });
        if (round > 0) times.push(((cpuSeconds() - t0) * 1000) / tokens);
      }
      ms[String(cache)] = median(times);
    }
    const same = [1, 2, 3].every((seed) => trainer.generate({ tokens, seed }).text === trainer.generate({ tokens, seed, cache: false }).text);
    const rate = (m: number) => `${m.toFixed(2)} ms (${(1000 / m).toFixed(0)} tokens/s)`;
    console.log(`${tokens} tokens: CPU time per token with the cache ${rate(ms["true"]!)}, without ${rate(ms["false"]!)}: ${(ms["false"]! / ms["true"]!).toFixed(1)}×; same tokens: ${same}`);
  }
  await trainer.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
