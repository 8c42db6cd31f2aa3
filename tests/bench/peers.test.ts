// The peers' benchmark in its quick mode (losses only, no timing): from the
// same weights and data, gradc, jax-js and TensorFlow.js (wasm) give the same
// loss before and after one update on every workload, and the same 512³
// product. PyTorch stays out: it is an optional column of the bench only.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LOSS_RTOL, peersBench, peersTable } from "../../bench/peers/peers.js";
import type { PeersResult } from "../../bench/peers/peers.js";

const folder = mkdtempSync(path.join(os.tmpdir(), "gradc-peers-test-"));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe("npm run bench -- --quick", () => {
  it("the peers' losses agree with gradc's to float32 rounding on every workload", async () => {
    const r = await peersBench(folder, { quick: true, torch: false });
    const names = r.workloads.map((w) => w.name);
    expect(names).toEqual(["mlpSgd", "mlpAdam", "xor", "transformer", "cnn"]);
    for (const w of r.workloads) {
      const g = w.losses.gradc!;
      // one update lowers the loss on the batch it was computed on
      expect(g[1]!, `${w.name}: loss after one update`).toBeLessThan(g[0]!);
      expect(w.losses.jax, `${w.name}: jax-js ran (${w.skipped.jax ?? ""})`).toBeDefined();
      // tfjs-wasm has no kernel for a convolution's filter gradient
      if (w.name === "cnn") expect(w.skipped.tfjs).toMatch(/Conv2DBackpropFilter/);
      else expect(w.losses.tfjs, `${w.name}: tfjs ran (${w.skipped.tfjs ?? ""})`).toBeDefined();
      for (const [system, l] of Object.entries(w.losses)) {
        for (const k of [0, 1]) {
          expect(Math.abs(l[k]! - g[k]!), `${w.name}: ${system}'s loss ${k} ${l[k]} vs gradc's ${g[k]}`).toBeLessThanOrEqual(LOSS_RTOL * Math.abs(g[k]!));
        }
      }
      expect(w.agree).toBe(true);
      expect(w.ms).toEqual({});
    }
    expect(r.sgemm.agree).toBe(true);
    // the JSON written is what was returned, and the table says the losses agree
    const saved = JSON.parse(readFileSync(path.join(folder, "peers-quick.json"), "utf8")) as PeersResult;
    expect(saved.workloads.map((w) => w.losses)).toEqual(r.workloads.map((w) => w.losses));
    expect(peersTable(r)).not.toMatch(/DISAGREE/);
  }, 900_000);
});
