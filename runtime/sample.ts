// `gradc sample <bundle>`: continues a prompt with a next-token predictor's
// bundle, using its latest checkpoint (or another one, or its initial weights).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { FlagDefs } from "./flags.js";
import { flagNumber, flagsHelp, flagString, parseFlags, UsageError } from "./flags.js";
import { load } from "./load.js";

export const SAMPLE_FLAGS: FlagDefs = {
  prompt: { kind: "string", value: "TEXT", help: "the text to continue (default: the model's start token)" },
  tokens: { kind: "int", value: "N", help: "how many tokens to generate (default 200)" },
  temperature: { kind: "number", value: "T", help: "softmax temperature; 0 always picks the most likely token (default 1)" },
  "top-k": { kind: "int", value: "K", help: "draw only among the K most likely tokens (default: all)" },
  seed: { kind: "int", value: "S", help: "seed of the draws (default 0)" },
  checkpoint: { kind: "string", value: "FILE", help: "weights to use (default: <dir>/checkpoints/latest.safetensors if present, else the initial weights)" },
  "no-cache": { kind: "boolean", help: "run the whole context for every token, even where the bundle has a key/value-cached step (the same text, slower)" },
  help: { kind: "boolean", short: "h", help: "show this help" },
};

/** The usage text of `gradc sample`. */
export function sampleHelp(command = "gradc sample <dir>"): string {
  return `Usage: ${command} --prompt "..." [--tokens N] [--temperature T] [--top-k K] [--seed S]\n\nContinues the prompt with a bundle whose model predicts the next token (compiled\nwith a generate config), and prints the prompt and its continuation.\n\nOptions:\n${flagsHelp(SAMPLE_FLAGS)}`;
}

/** Runs `gradc sample` on `argv`; prints the text with `out` and notes with `note`. Returns the exit code. */
export async function sampleCommand(argv: readonly string[], out: (text: string) => void, note: (text: string) => void = () => {}): Promise<number> {
  const { flags, positional } = parseFlags(argv, SAMPLE_FLAGS, "gradc sample");
  if (flags["help"]) {
    out(sampleHelp());
    return 0;
  }
  if (positional.length !== 1) throw new UsageError(`gradc sample takes one bundle folder${positional.length ? `, got: ${positional.join(" ")}` : " (see gradc sample --help)"}`);
  const dir = resolve(positional[0]!);
  const trainer = await load(dir);
  if (!trainer.manifest.generate) throw new Error(`${dir}: the model is not a next-token predictor (its manifest has no generate entry; compile it with a generate config)`);
  const given = flagString(flags, "checkpoint");
  const latest = join(dir, "checkpoints", "latest.safetensors");
  const ckpt = given !== undefined ? resolve(given) : existsSync(latest) ? latest : undefined;
  if (ckpt) {
    trainer.restore(ckpt);
    note(`weights: ${ckpt} (step ${trainer.stepCount})`);
  } else {
    note(`weights: the bundle's initial weights (no checkpoint at ${latest}: train it first)`);
  }
  const prompt = flagString(flags, "prompt");
  const temperature = flagNumber(flags, "temperature");
  const topK = flagNumber(flags, "top-k");
  const seed = flagNumber(flags, "seed");
  const started = performance.now();
  const tokens = flagNumber(flags, "tokens") ?? 200;
  const result = trainer.generate({
    tokens,
    ...(flags["no-cache"] ? { cache: false } : {}),
    ...(prompt !== undefined ? { prompt } : {}),
    ...(temperature !== undefined ? { temperature } : {}),
    ...(topK !== undefined ? { topK } : {}),
    ...(seed !== undefined ? { seed } : {}),
  });
  const seconds = (performance.now() - started) / 1000;
  const cached = trainer.manifest.generate.cached ? `, ${result.cachedTokens} of them by the key/value-cached step` : "";
  note(`${tokens} tokens in ${seconds.toFixed(2)} s (${(tokens / seconds).toFixed(0)} tokens/s${cached})`);
  out(result.text);
  return 0;
}
