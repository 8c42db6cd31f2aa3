// Text generation for bundles whose model predicts the next token: the
// manifest's `generate` entry names a forward-only bundle compiled for batch
// 1 (a folder inside the bundle) and the vocabulary. Each new token runs that
// bundle on the last `context` tokens, with the training bundle's current
// weights copied in, and draws from the logits at the last position. A
// `cached` entry names a second bundle that runs one token against key/value
// caches: it draws the same tokens for the cost of one row, while the text
// fits the context.
import type { CachedStepSpec, GenerateSpec, Manifest } from "./manifest.js";
import { ownValue, setOwn } from "./names.js";
import { createRng } from "./data.js";
import { sizeOf, typeText } from "./arena.js";

/** Options of `trainer.generate` and `gradc sample`. */
export interface GenerateOptions {
  /** Text to continue (tokenized with the vocabulary); empty starts from the spec's `start` token. */
  readonly prompt?: string;
  /** How many tokens to draw. */
  readonly tokens: number;
  /** Softmax temperature (default 1); 0 picks the most likely token every time. */
  readonly temperature?: number;
  /** Draw only among the k most likely tokens (default: all). */
  readonly topK?: number;
  /** Seed of the draws (default 0): the same seed, weights and prompt give the same text. */
  readonly seed?: number;
  /**
   * Use the bundle's cached step, if it has one, while the text fits the
   * context (default true); false runs the whole context for every token.
   * Both give the same tokens.
   */
  readonly cache?: boolean;
}

/** What `generate` produced. */
export interface Generation {
  /** The prompt followed by the generated text. */
  readonly text: string;
  /** Only the generated part. */
  readonly generated: string;
  /** Every token id, prompt included. */
  readonly ids: readonly number[];
  /** How many of the generated tokens the cached step drew (the rest: a pass over the whole context each). */
  readonly cachedTokens: number;
}

/** The part of a loaded bundle generation needs: its manifest and a forward pass. */
export interface NextTokenModel {
  readonly manifest: Manifest;
  predict(inputs: Readonly<Record<string, Int32Array | Float32Array | Float64Array>>): Readonly<Record<string, ArrayLike<number>>>;
}

/**
 * Checks the `generate` entry of a manifest (shapes are checked against the
 * inference bundle when it is loaded). `file` names the manifest in errors.
 */
export function checkGenerateSpec(spec: unknown, file: string): asserts spec is GenerateSpec {
  const where = `${file}: generate`;
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) throw new Error(`${where} must be an object`);
  const s = spec as Record<string, unknown>;
  for (const key of ["bundle", "input", "output"] as const) {
    if (typeof s[key] !== "string" || (s[key] as string).length === 0) throw new Error(`${where}.${key} must be a non-empty string (got ${JSON.stringify(s[key] ?? null)})`);
  }
  // the inference bundle is a folder inside this one
  if (!/^[A-Za-z0-9_-]+$/.test(s["bundle"] as string)) throw new Error(`${where}.bundle must be a plain folder name inside the bundle (got ${JSON.stringify(s["bundle"])})`);
  if (!(Number.isInteger(s["context"]) && (s["context"] as number) > 0)) throw new Error(`${where}.context must be an integer > 0 (got ${JSON.stringify(s["context"] ?? null)})`);
  const vocab = s["vocab"];
  if (!Array.isArray(vocab) || vocab.length === 0) throw new Error(`${where}.vocab must be a non-empty array of strings`);
  const seen = new Set<string>();
  vocab.forEach((v, i) => {
    if (typeof v !== "string" || v.length === 0) throw new Error(`${where}.vocab[${i}] must be a non-empty string (got ${JSON.stringify(v)})`);
    if (seen.has(v)) throw new Error(`${where}.vocab[${i}] repeats the token ${JSON.stringify(v)}`);
    seen.add(v);
  });
  if (s["start"] !== undefined && !(typeof s["start"] === "string" && seen.has(s["start"]))) {
    throw new Error(`${where}.start must be a token of the vocabulary (got ${JSON.stringify(s["start"])})`);
  }
  if (s["cached"] !== undefined) checkCachedStepSpec(s["cached"], `${where}.cached`, s["bundle"] as string);
}

/** Checks the cached step of a generate entry; `where` names it in errors. */
function checkCachedStepSpec(spec: unknown, where: string, generateBundle: string): void {
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) throw new Error(`${where} must be an object`);
  const s = spec as Record<string, unknown>;
  const name = (v: unknown) => typeof v === "string" && v.length > 0;
  for (const key of ["bundle", "input", "index", "output"] as const) {
    if (!name(s[key])) throw new Error(`${where}.${key} must be a non-empty string (got ${JSON.stringify(s[key] ?? null)})`);
  }
  if (!/^[A-Za-z0-9_-]+$/.test(s["bundle"] as string) || s["bundle"] === generateBundle) {
    throw new Error(`${where}.bundle must be a plain folder name inside the bundle, other than the generate bundle's (got ${JSON.stringify(s["bundle"])})`);
  }
  if (!Array.isArray(s["caches"])) throw new Error(`${where}.caches must be an array of { input, output }`);
  (s["caches"] as unknown[]).forEach((c, i) => {
    const e = (c ?? {}) as Record<string, unknown>;
    if (!name(e["input"]) || !name(e["output"])) throw new Error(`${where}.caches[${i}] must be { input, output } with non-empty names (got ${JSON.stringify(c)})`);
  });
}

/**
 * Checks that the inference bundle fits the spec and the training bundle: an
 * i32 input [1, context], logits [1, context, vocab] or [context, vocab], and
 * params that the training bundle has with the same shapes.
 */
export function checkInferenceBundle(spec: GenerateSpec, gen: Manifest, train: Manifest, dir: string): void {
  const input = gen.inputs.find((i) => i.name === spec.input);
  if (!input) throw new Error(`${dir}: generate.input "${spec.input}" is not an input of the inference bundle (inputs: ${gen.inputs.map((i) => i.name).join(", ") || "none"})`);
  if (input.dtype !== "i32" || input.shape.length !== 2 || input.shape[0] !== 1 || input.shape[1] !== spec.context) {
    throw new Error(`${dir}: generate.input "${spec.input}" is ${typeText(input.dtype, input.shape)}; expected i32[1,${spec.context}] (batch 1, the context)`);
  }
  const output = gen.outputs.find((o) => o.name === spec.output);
  if (!output) throw new Error(`${dir}: generate.output "${spec.output}" is not an output of the inference bundle (outputs: ${gen.outputs.map((o) => o.name).join(", ") || "none"})`);
  const V = spec.vocab.length;
  if (sizeOf(output.shape) !== spec.context * V || output.shape.at(-1) !== V) {
    throw new Error(`${dir}: generate.output "${spec.output}" is ${typeText(output.dtype, output.shape)}; expected [1,${spec.context},${V}] logits (context × vocabulary)`);
  }
  checkInferenceParams(gen, train, dir);
}

/**
 * Checks the cached step bundle against the spec and the training bundle:
 * i32 inputs token [1, 1] and position [1], one token's logits, each cache an
 * input and an output of one shape, nothing else to feed, and params that
 * the training bundle has with the same shapes.
 */
export function checkCachedStepBundle(spec: GenerateSpec, step: Manifest, train: Manifest, dir: string): void {
  const c = spec.cached!;
  const input = (name: string) => step.inputs.find((i) => i.name === name);
  const output = (name: string) => step.outputs.find((o) => o.name === name);
  const inputs = step.inputs.map((i) => i.name).join(", ") || "none";
  for (const [what, name, shape] of [["input", c.input, [1, 1]], ["index", c.index, [1]]] as const) {
    const t = input(name);
    if (!t) throw new Error(`${dir}: generate.cached.${what} "${name}" is not an input of the step bundle (inputs: ${inputs})`);
    if (t.dtype !== "i32" || t.shape.join(",") !== shape.join(",")) throw new Error(`${dir}: generate.cached.${what} "${name}" is ${typeText(t.dtype, t.shape)}; expected i32[${shape.join(",")}]`);
  }
  const V = spec.vocab.length;
  const logits = output(c.output);
  if (!logits) throw new Error(`${dir}: generate.cached.output "${c.output}" is not an output of the step bundle`);
  if (sizeOf(logits.shape) !== V || logits.shape.at(-1) !== V) throw new Error(`${dir}: generate.cached.output "${c.output}" is ${typeText(logits.dtype, logits.shape)}; expected one token's logits [1,1,${V}]`);
  for (const e of c.caches) {
    const from = input(e.input);
    const to = output(e.output);
    if (!from || !to) throw new Error(`${dir}: generate.cached cache ${JSON.stringify(e.input)} → ${JSON.stringify(e.output)} needs an input and an output of the step bundle by those names`);
    if (from.dtype !== to.dtype || from.shape.join(",") !== to.shape.join(",")) {
      throw new Error(`${dir}: cache "${e.input}" is ${typeText(from.dtype, from.shape)} but its next value "${e.output}" is ${typeText(to.dtype, to.shape)}`);
    }
  }
  const fed = new Set([c.input, c.index, ...c.caches.map((e) => e.input)]);
  const unfed = step.inputs.find((i) => !fed.has(i.name));
  if (unfed) throw new Error(`${dir}: the step bundle's input "${unfed.name}" is neither the token, its position nor a cache`);
  checkInferenceParams(step, train, dir);
}

/** Every param of an inference bundle is a param of the training bundle with the same shape. */
function checkInferenceParams(gen: Manifest, train: Manifest, dir: string): void {
  for (const p of gen.params) {
    const q = train.params.find((t) => t.name === p.name);
    if (!q) throw new Error(`${dir}: the inference bundle's param "${p.name}" is not a param of the training bundle`);
    if (q.shape.join(",") !== p.shape.join(",")) {
      throw new Error(`${dir}: param "${p.name}" is [${p.shape.join(",")}] in the inference bundle but [${q.shape.join(",")}] in the training bundle`);
    }
  }
}

/** Splits text into vocabulary ids, longest token first at each position; names the first character it cannot match. */
export function tokenize(text: string, vocab: readonly string[]): number[] {
  const byFirst = new Map<string, number[]>();
  vocab.forEach((tok, id) => byFirst.set(tok[0]!, [...(byFirst.get(tok[0]!) ?? []), id]));
  for (const ids of byFirst.values()) ids.sort((a, b) => vocab[b]!.length - vocab[a]!.length);
  const out: number[] = [];
  for (let i = 0; i < text.length; ) {
    const id = byFirst.get(text[i]!)?.find((k) => text.startsWith(vocab[k]!, i));
    if (id === undefined) throw new Error(`the prompt's character ${JSON.stringify(text[i])} at position ${i} is not in the model's vocabulary`);
    out.push(id);
    i += vocab[id]!.length;
  }
  return out;
}

function checkOptions(o: GenerateOptions, vocab: number): void {
  if (o === null || typeof o !== "object") throw new Error("generate: options must be an object { prompt, tokens, temperature, topK, seed }");
  if (!(Number.isInteger(o.tokens) && o.tokens >= 0)) throw new Error(`generate: tokens must be an integer ≥ 0 (got ${String(o.tokens)})`);
  if (o.temperature !== undefined && !(Number.isFinite(o.temperature) && o.temperature >= 0)) throw new Error(`generate: temperature must be a finite number ≥ 0 (got ${String(o.temperature)})`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 1)) throw new Error(`generate: topK must be an integer ≥ 1 (got ${String(o.topK)}; the vocabulary has ${vocab} tokens)`);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new Error(`generate: seed must be an integer (got ${String(o.seed)})`);
  if (o.prompt !== undefined && typeof o.prompt !== "string") throw new Error(`generate: prompt must be a string (got ${typeof o.prompt})`);
  if (o.cache !== undefined && typeof o.cache !== "boolean") throw new Error(`generate: cache must be true or false (got ${String(o.cache)})`);
}

/**
 * The cached step's state over one generation: its caches (zeros at first)
 * and how many tokens of the text they hold. `advance` feeds the tokens not
 * yet cached and returns the logits after the last one.
 */
class StepCache {
  private length = 0;
  private readonly feeds: Record<string, Int32Array | Float32Array | Float64Array> = {};
  private readonly token = new Int32Array(1);
  private readonly index = new Int32Array(1);

  constructor(
    private readonly model: NextTokenModel,
    private readonly spec: CachedStepSpec,
  ) {
    setOwn(this.feeds, spec.input, this.token);
    setOwn(this.feeds, spec.index, this.index);
    for (const c of spec.caches) {
      const entry = model.manifest.inputs.find((i) => i.name === c.input)!;
      const n = sizeOf(entry.shape);
      setOwn(this.feeds, c.input, entry.dtype === "f64" ? new Float64Array(n) : new Float32Array(n));
    }
  }

  /** Runs the step on ids[length …] in turn; the logits of the last token. */
  advance(ids: readonly number[]): ArrayLike<number> {
    let logits: ArrayLike<number> | undefined;
    for (; this.length < ids.length; this.length++) {
      this.token[0] = ids[this.length]!;
      this.index[0] = this.length;
      const out = this.model.predict(this.feeds);
      for (const c of this.spec.caches) (ownValue(this.feeds, c.input) as Float32Array).set(ownValue(out, c.output)!);
      logits = ownValue(out, this.spec.output)!;
    }
    if (!logits) throw new Error("generate: the cached step has no new token to run");
    return logits;
  }
}

/**
 * Draws a token from `logits[from .. from + n)`: softmax(logits / temperature)
 * over the `topK` largest, or the argmax at temperature 0. `order` and `probs`
 * are scratch arrays of length n.
 */
export function sampleToken(logits: ArrayLike<number>, from: number, n: number, temperature: number, topK: number, u: number, order: Int32Array, probs: Float64Array): number {
  for (let i = 0; i < n; i++) order[i] = i;
  // the k largest first (ties: the lower id first); k is small next to n only for top-k, so a sort is fine
  order.sort((a, b) => logits[from + b]! - logits[from + a]! || a - b);
  const k = Math.min(topK, n);
  if (temperature === 0) return order[0]!;
  const max = logits[from + order[0]!]!;
  let sum = 0;
  for (let i = 0; i < k; i++) sum += probs[i] = Math.exp((logits[from + order[i]!]! - max) / temperature);
  let acc = 0;
  const target = u * sum;
  for (let i = 0; i < k; i++) {
    acc += probs[i]!;
    if (target < acc) return order[i]!;
  }
  return order[k - 1]!;
}

/**
 * Generates `options.tokens` tokens after the prompt with `model` (the
 * inference bundle, its weights already current). The context slides: the
 * model sees the last `context` tokens, starting at position 0. With `step`
 * (the cached step bundle, weights current too), each token while the text
 * fits the context costs one step over that token alone; once it slides,
 * every position moves, so each token runs the whole context again.
 */
export function generate(model: NextTokenModel, spec: GenerateSpec, options: GenerateOptions, step?: NextTokenModel): Generation {
  checkOptions(options, spec.vocab.length);
  const V = spec.vocab.length;
  const T = spec.context;
  const prompt = options.prompt ?? "";
  const ids = tokenize(prompt, spec.vocab);
  const fromStart = ids.length === 0;
  if (fromStart) {
    if (spec.start === undefined) throw new Error("generate: the prompt is empty and the model declares no start token; give a prompt");
    ids.push(spec.vocab.indexOf(spec.start));
  }
  const temperature = options.temperature ?? 1;
  const topK = options.topK ?? V;
  const rng = createRng(options.seed ?? 0);
  const window = new Int32Array(T);
  const order = new Int32Array(V);
  const probs = new Float64Array(V);
  const first = ids.length;
  const cache = step && spec.cached && options.cache !== false ? new StepCache(step, spec.cached) : undefined;
  let cachedTokens = 0;
  for (let n = 0; n < options.tokens; n++) {
    if (cache && ids.length <= T) {
      // the same positions as the pass below: the text from position 0, its last token at ids.length − 1
      ids.push(sampleToken(cache.advance(ids), 0, V, temperature, topK, rng(), order, probs));
      cachedTokens++;
      continue;
    }
    const from = Math.max(0, ids.length - T);
    const len = ids.length - from;
    window.fill(0);
    for (let i = 0; i < len; i++) window[i] = ids[from + i]!;
    // causal: the logits at the last real position see only the real tokens
    const logits = model.predict({ [spec.input]: window })[spec.output]!;
    ids.push(sampleToken(logits, (len - 1) * V, V, temperature, topK, rng(), order, probs));
  }
  const generated = ids.slice(first).map((i) => spec.vocab[i]).join("");
  const head = fromStart ? "" : prompt;
  return { text: head + generated, generated, ids, cachedTokens };
}
