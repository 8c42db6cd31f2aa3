// The optimizer update as kernels over each trainable param, run by step()
// after the gradients: SGD, momentum (optionally Nesterov), Adam and AdamW,
// with optional global-norm clipping first. Formulas follow PyTorch's.
import type { OptimizerSpec } from "../../runtime/manifest.js";
import type { Expr, Stmt } from "../kernel/kir.js";
import { bin, let_, load, loop, num, parallel, ref, set, store, un } from "../kernel/kir.js";
import type { Buffer } from "./lower.js";
import { sanitize } from "./names.js";

/** An optimizer with every default filled in, as the manifest records it. */
export type ResolvedOptimizer = OptimizerSpec & { readonly weightDecay: number };

/** Fills PyTorch's defaults; Adam lr 0.001 when no optimizer is given. */
export function resolveOptimizer(spec: OptimizerSpec | undefined): ResolvedOptimizer {
  const s = spec ?? { name: "adam", lr: 0.001 };
  if (!(typeof s.lr === "number" && Number.isFinite(s.lr) && s.lr >= 0)) {
    throw new Error(`optimizer: lr must be a finite number >= 0, got ${String(s.lr)}`);
  }
  switch (s.name) {
    case "sgd": return { ...s, weightDecay: s.weightDecay ?? 0 };
    case "momentum": return { ...s, momentum: s.momentum ?? 0.9, nesterov: s.nesterov ?? false, weightDecay: s.weightDecay ?? 0 };
    case "adam":
    case "adamw":
      return {
        ...s,
        beta1: s.beta1 ?? 0.9,
        beta2: s.beta2 ?? 0.999,
        eps: s.eps ?? 1e-8,
        weightDecay: s.weightDecay ?? (s.name === "adamw" ? 0.01 : 0),
      };
    default:
      throw new Error(`optimizer: unknown name "${String((s as { name: unknown }).name)}" (use sgd, momentum, adam, adamw)`);
  }
}

/** Whether a param belongs to a scope: the scope is its name, or a prefix of it ending at a dot. */
export function inScope(param: string, scope: string): boolean {
  return param === scope || param.startsWith(`${scope}.`);
}

/**
 * A param's learning-rate multiplier: that of the longest `lrMultipliers` key
 * equal to its name or a scope of it (`block1` for `block1.attn.q.W`), else 1.
 */
export function lrMultiplier(opt: OptimizerSpec, param: string): number {
  let best: string | undefined;
  for (const key of Object.keys(opt.lrMultipliers ?? {})) {
    if (inScope(param, key) && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? 1 : opt.lrMultipliers![best]!;
}

/** Checks the multipliers: finite numbers ≥ 0, each key matching at least one trainable param. */
export function checkLrMultipliers(opt: OptimizerSpec, trainable: readonly string[]): void {
  for (const [key, m] of Object.entries(opt.lrMultipliers ?? {})) {
    if (!(typeof m === "number" && Number.isFinite(m) && m >= 0)) throw new Error(`optimizer: lrMultipliers["${key}"] must be a finite number >= 0, got ${String(m)}`);
    if (!trainable.some((n) => inScope(n, key))) {
      throw new Error(`optimizer: lrMultipliers["${key}"] matches no trainable param (scopes are name prefixes ending at a dot; trainable params: ${trainable.join(", ") || "none"})`);
    }
  }
}

/** One param to update: its buffer and its gradient's buffer (same shape). */
export interface UpdateTarget {
  readonly name: string;
  readonly param: Buffer;
  readonly grad: Buffer;
}

/** A kernel before naming: a body over named buffers. */
export interface UpdateKernel {
  /** Base of the kernel's name, e.g. `adam_W1`. */
  readonly base: string;
  readonly what: string;
  readonly body: readonly Stmt[];
  readonly buffers: Readonly<Record<string, Buffer>>;
  /** The param it updates (absent for the clipping kernel). */
  readonly param?: string;
}

/** The state slots an optimizer keeps per param. */
export function stateSlots(opt: ResolvedOptimizer): ("m" | "v" | "velocity")[] {
  return opt.name === "momentum" ? ["velocity"] : opt.name === "adam" || opt.name === "adamw" ? ["m", "v"] : [];
}

/** Threshold below which PyTorch's clip_grad_norm_ leaves gradients alone, as it adds 1e-6. */
const CLIP_EPS = 1e-6;

/**
 * scale = min(1, clip / (‖g‖ + 1e-6)) over all trainable grads together. The
 * grads themselves are not rewritten (two params may share one gradient
 * buffer); the update kernels multiply by `scale` as they read.
 */
export function clipKernel(targets: readonly UpdateTarget[], clip: number, scale: Buffer): UpdateKernel {
  const buffers: Record<string, Buffer> = { scale };
  const body: Stmt[] = [let_("sq", 0)];
  targets.forEach((t, k) => {
    buffers[`g${k}`] = t.grad;
    body.push(loop("i", t.grad.size, [let_("g", load(`g${k}`, ref("i"))), set("sq", bin("+", ref("sq"), bin("*", ref("g"), ref("g"))))]));
  });
  body.push(store("scale", 0, bin("min", 1, bin("/", clip, bin("+", un("sqrt", ref("sq")), CLIP_EPS)))));
  return { base: "clip_grad_norm", what: `global-norm clipping of the gradients to ${clip}`, body, buffers };
}

/**
 * The update of one param. Buffers: `p` (param), `g` (grad), `lr` and `step`
 * (hyper slots), `scale` when clipping, and the state slots by name.
 */
export function updateKernel(
  opt: ResolvedOptimizer,
  target: UpdateTarget,
  hyper: { readonly lr: Buffer; readonly step: Buffer },
  state: Readonly<Record<string, Buffer>>,
  scale: Buffer | undefined,
  multiplier = 1,
): UpdateKernel {
  const buffers: Record<string, Buffer> = { p: target.param, g: target.grad, lr: hyper.lr, ...state };
  const i = ref("i");
  const lr = ref("lr");
  // a scope's learning-rate multiplier scales the rate the runtime wrote
  const pre: Stmt[] = [let_("lr", multiplier === 1 ? load("lr", 0) : bin("*", load("lr", 0), multiplier))];
  let g: Expr = load("g", i);
  if (scale) {
    buffers["scale"] = scale;
    pre.push(let_("sc", load("scale", 0)));
    g = bin("*", g, ref("sc"));
  }
  const wd = opt.weightDecay;
  // L2 weight decay couples into the gradient (sgd, momentum, adam): g + wd·p
  if (wd !== 0 && opt.name !== "adamw") g = bin("+", g, bin("*", wd, load("p", i)));
  const each: Stmt[] = [let_("gi", g)];
  const gi = ref("gi");
  let what: string;
  switch (opt.name) {
    case "sgd":
      what = `SGD: p -= lr·g`;
      each.push(store("p", i, bin("-", load("p", i), bin("*", lr, gi))));
      break;
    case "momentum": {
      const mu = opt.momentum!;
      // v = μv + g; p -= lr·v, or with Nesterov p -= lr·(g + μv)
      what = opt.nesterov ? `Nesterov momentum ${mu}: v = μv + g; p -= lr·(g + μv)` : `momentum ${mu}: v = μv + g; p -= lr·v`;
      each.push(
        let_("vi", bin("+", bin("*", mu, load("velocity", i)), gi)),
        store("velocity", i, ref("vi")),
        store("p", i, bin("-", load("p", i), bin("*", lr, opt.nesterov ? bin("+", gi, bin("*", mu, ref("vi"))) : ref("vi")))),
      );
      break;
    }
    case "adam":
    case "adamw": {
      const b1 = opt.beta1!;
      const b2 = opt.beta2!;
      buffers["step"] = hyper.step;
      // bias corrections 1 − βᵗ with t the 1-based step the runtime wrote
      pre.push(
        let_("t", load("step", 0)),
        let_("bc1", bin("-", 1, bin("pow", b1, ref("t")))),
        let_("bc2", bin("-", 1, bin("pow", b2, ref("t")))),
        // per step, not per element: the step size lr / (1 − β1ᵗ) and 1 / √(1 − β2ᵗ)
        let_("stepSize", bin("/", lr, ref("bc1"))),
        let_("rbc2", bin("/", 1, un("sqrt", ref("bc2")))),
      );
      // AdamW decays the weights directly: p ← p·(1 − lr·wd)
      const p0: Expr = opt.name === "adamw" && wd !== 0 ? bin("*", load("p", i), bin("-", 1, bin("*", lr, wd))) : load("p", i);
      what = `${opt.name === "adamw" ? "AdamW" : "Adam"}: p -= lr·m̂/(√v̂ + ε)${opt.name === "adamw" ? " after p *= 1 − lr·wd" : ""}`;
      each.push(
        let_("mi", bin("+", bin("*", b1, load("m", i)), bin("*", 1 - b1, gi))),
        let_("vi", bin("+", bin("*", b2, load("v", i)), bin("*", 1 - b2, bin("*", gi, gi)))),
        store("m", i, ref("mi")),
        store("v", i, ref("vi")),
        // p −= lr·m̂/(√v̂ + ε) with m̂ = m/(1 − β1ᵗ), √v̂ = √v/√(1 − β2ᵗ): one division and one root per element
        store("p", i, bin("-", p0, bin("/", bin("*", ref("stepSize"), ref("mi")), bin("+", bin("*", un("sqrt", ref("vi")), ref("rbc2")), num(opt.eps!))))),
      );
      break;
    }
    default:
      throw new Error(`optimizer: unknown name "${String(opt.name)}"`);
  }
  if (multiplier !== 1) what += ` with lr × ${multiplier}`;
  return {
    base: `${opt.name}_${sanitize(target.name)}`,
    what,
    // each element updated on its own: the iterations are independent
    body: [...pre, parallel("i", target.param.size, each)],
    buffers,
    param: target.name,
  };
}
