// --check-numerics: runs a bundle's kernels one at a time and stops at the
// first NaN or infinity one of them writes, naming the kernel, the graph node
// it computes and the line of the user's model it came from.
import type { FusedNode, KernelEntry, Manifest, Slot } from "./manifest.js";
import type { SlotView } from "./arena.js";
import type { Device, EntryPoint, KernelList, MaybePromise } from "./device.js";
import { now } from "./device.js";

/** Where the first non-finite value came from. */
export interface NumericsFault {
  /** What was running: an entry point's kernel, or the check of the inputs and params before any kernel. */
  readonly phase: "forward" | "gradients" | "update" | "input" | "param";
  /** The 1-based step that `step()` was computing, when it was a step. */
  readonly step?: number;
  /** The kernel that wrote the value (absent for inputs and params). */
  readonly kernel?: string;
  /**
   * The graph node that produced it, as printed (`e:f32[3,1] = div 1.0 d`), or
   * what an update does. In a fused kernel, which computes several nodes and
   * stores only some, `blame` says how the node was found.
   */
  readonly node?: string;
  /**
   * How the node of a fused kernel was found: `made`, the kernel's checked
   * form saw this node turn finite operands into NaN or infinity; `stored`, no
   * node did before the value was stored (a float32 store overflowed, or the
   * target's own code made it), and this is the stored node; `suspect`, the
   * bundle has no checked form of the kernel (a device without one, an older
   * bundle), and this is the first node that can make NaN or infinity (see `suspectNode`).
   */
  readonly blame?: "made" | "stored" | "suspect";
  /** The user's file:line, or `grad of sqrt at file:line` for backward nodes. */
  readonly src?: string;
  /** For a fused kernel: how many nodes it computes. */
  readonly fused?: number;
  /** The value's name (a node's printed name, an input, a param). */
  readonly label: string;
  /** The element's position, e.g. `[1,0]` (`[]` for a scalar). */
  readonly index: string;
  readonly value: number;
}

/** Thrown by a bundle loaded with `checkNumerics`: the first NaN or infinity, and where it came from. */
export class NumericsError extends Error {
  override readonly name = "NumericsError";
  constructor(readonly fault: NumericsFault) {
    super(describeFault(fault));
  }
}

/** One line: the value, the step, the kernel, the user's line and the printed node. */
export function describeFault(f: NumericsFault): string {
  const at = f.step !== undefined ? `step ${f.step}: ` : "";
  const what = String(f.value);
  if (f.phase === "input" || f.phase === "param") {
    return `${at}${f.phase} "${f.label}" holds ${what} at ${f.index} before any kernel ran`;
  }
  const src = f.src ? ` (${f.src})` : "";
  const fused = !f.fused
    ? ""
    : f.blame === "made"
      ? `; of the ${f.fused} nodes this fused kernel computes, this one made it out of finite operands`
      : f.blame === "stored"
        ? `; this is the node stored there: none of the ${f.fused} nodes this fused kernel computes made it out of finite operands before the store (a float32 store overflows beyond ±3.4e38)`
        : `; of the ${f.fused} nodes this fused kernel computes, this is the first that can turn finite values into NaN or infinity (compile with fusion: false to check node by node)`;
  return `${at}kernel ${f.kernel} produced ${what} in ${f.label}${f.index}${src}: ${f.node}${fused}`;
}

/** Ops that can make NaN or infinity out of finite inputs (x/0, log 0, sqrt of a negative, overflow). */
export const RISKY_OPS: ReadonlySet<string> = new Set(["div", "log", "sqrt", "rsqrt", "pow", "exp"]);

/**
 * The node of a fused kernel that most likely produced a non-finite value:
 * the first one whose op is in RISKY_OPS, else the last one (the kernel's result).
 */
export function suspectNode(nodes: readonly FusedNode[]): FusedNode | undefined {
  return nodes.find((n) => RISKY_OPS.has(n.op)) ?? nodes.at(-1);
}

/**
 * The node of a fused kernel to blame for a non-finite value written to the
 * slot labelled `label`: with `flags` from its checked form, the first node
 * that made one out of finite operands, else the stored node; without, the
 * suspect (`suspectNode`). Undefined for a kernel of one node.
 */
export function blameNode(nodes: readonly FusedNode[] | undefined, label: string, flags?: Uint8Array): { node: FusedNode; blame: "made" | "stored" | "suspect" } | undefined {
  if (!nodes || nodes.length < 2) return undefined;
  if (flags) {
    const i = flags.indexOf(1);
    if (i >= 0 && nodes[i]) return { node: nodes[i], blame: "made" };
    const stored = nodes.find((n) => n.node.startsWith(`${label}:`));
    if (stored) return { node: stored, blame: "stored" };
  }
  return { node: suspectNode(nodes)!, blame: "suspect" };
}

/** The index of the first NaN or ±Infinity of `a`, or -1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    // v - v is NaN exactly for NaN and ±Infinity
    if (v - v !== 0) return i;
  }
  return -1;
}

/** `[i,j,...]` of a flat row-major index into `shape`. */
export function unravelIndex(flat: number, shape: readonly number[]): string {
  const out: number[] = [];
  let rest = flat;
  for (let ax = shape.length - 1; ax >= 0; ax--) {
    const d = shape[ax]!;
    out.push(d > 0 ? rest % d : 0);
    rest = d > 0 ? Math.floor(rest / d) : 0;
  }
  return `[${out.reverse().join(",")}]`;
}

/** A float slot to scan and the name it goes by in messages. */
interface Watched {
  readonly slot: Slot;
  readonly label: string;
}

/** One kernel with the float slots it writes, and the flags its checked form sets (a fused kernel's). */
interface CheckedKernel {
  readonly entry: KernelEntry;
  readonly writes: readonly Watched[];
  readonly flags?: Uint8Array;
}

type Phase = "forward" | "gradients" | "update";

/**
 * A device whose entry points run one kernel at a time, each followed by a
 * scan of the float slots it wrote: it throws a NumericsError at the first
 * NaN or infinity. Inputs and params are scanned before the first kernel, so
 * bad data is told apart from a bad kernel. Everything else is the wrapped
 * device's. On an asynchronous device each scan waits for its read.
 */
export class CheckedDevice implements Device {
  readonly backend: string;
  readonly synchronous: boolean;
  private readonly lists: Readonly<Record<Phase, readonly CheckedKernel[]>>;
  private readonly trainInputs: Watched[];
  private readonly forwardInputs: Watched[];
  private readonly params: Watched[];
  private readonly stepSlot: Slot | undefined;

  constructor(manifest: Manifest, private readonly device: Device) {
    this.backend = device.backend;
    this.synchronous = device.synchronous;
    const byName = new Map(manifest.kernels.map((k) => [k.name, k]));
    const bind = (list: Phase): CheckedKernel[] =>
      device.kernels(list).map((name) => {
        const entry = byName.get(name);
        if (!entry) throw new Error(`manifest.json: kernel ${name} is not in the manifest's kernel list`);
        if (!entry.writes) throw new Error(`manifest.json: kernel ${name} lists no written slots, which --check-numerics needs; recompile the model with this version of gradc`);
        const writes = entry.writes.filter((w) => w.arena === "F").map((w) => ({ slot: w, label: w.label ?? name }));
        const fused = entry.nodes && entry.nodes.length > 1 && device.runKernelChecked;
        return { entry, writes, ...(fused ? { flags: new Uint8Array(entry.nodes!.length) } : {}) };
      });
    this.lists = { forward: bind("forward"), gradients: bind("gradients"), update: bind("update") };
    const watch = (s: Slot & { readonly name: string }): Watched => ({ slot: s, label: s.name });
    const floats = manifest.inputs.filter((i) => i.arena === "F");
    this.trainInputs = floats.filter((i) => i.usedBy.includes("train")).map(watch);
    this.forwardInputs = floats.filter((i) => i.usedBy.includes("forward")).map(watch);
    this.params = manifest.params.filter((p) => p.arena === "F").map(watch);
    this.stepSlot = manifest.hyper.step.arena === "I" ? manifest.hyper.step : undefined;
  }

  write(slot: Slot, values: ArrayLike<number>): void {
    this.device.write(slot, values);
  }

  writeScalar(slot: Slot, value: number): void {
    this.device.writeScalar(slot, value);
  }

  read(slot: Slot): MaybePromise<SlotView> {
    return this.device.read(slot);
  }

  scalar(slot: Slot): MaybePromise<number> {
    return this.device.scalar(slot);
  }

  norm(slot: Slot): MaybePromise<number> {
    return this.device.norm(slot);
  }

  kernels(list: KernelList): readonly string[] {
    return this.device.kernels(list);
  }

  close(): MaybePromise<void> {
    return this.device.close?.();
  }

  runKernel(name: string): MaybePromise<void> {
    return this.device.runKernel(name);
  }

  /** The checks of an entry point, in order: sources to scan, then kernel lists. */
  private plan(entry: EntryPoint): { sources: readonly Watched[]; phases: readonly Phase[] } {
    switch (entry) {
      case "forward":
        return { sources: this.forwardInputs, phases: ["forward"] };
      case "gradients":
        return { sources: this.trainInputs, phases: ["gradients"] };
      case "update":
        return { sources: [], phases: ["update"] };
      case "step":
        return { sources: this.trainInputs, phases: ["gradients", "update"] };
      default:
        return entry satisfies never;
    }
  }

  run(entry: EntryPoint): MaybePromise<void> {
    const { sources, phases } = this.plan(entry);
    // the runtime writes the 1-based step count before each step()
    const step = (entry === "step" || entry === "update") && this.stepSlot ? this.device.scalar(this.stepSlot) : undefined;
    if (!this.synchronous || step instanceof Promise) return this.runAsync(sources, phases, step);
    const call = `${entry}()`;
    this.scanSources(sources, step, (s) => now(this.device.read(s), this.device, call));
    for (const phase of phases) {
      for (const k of this.lists[phase]) {
        let checked = false;
        if (k.flags) {
          k.flags.fill(0);
          checked = now(this.device.runKernelChecked!(k.entry.name, k.flags), this.device, call);
        }
        if (!checked) now(this.device.runKernel(k.entry.name), this.device, call);
        for (const w of k.writes) this.scanWrite(k, w, now(this.device.read(w.slot), this.device, call), phase, step, checked);
      }
    }
  }

  private async runAsync(sources: readonly Watched[], phases: readonly Phase[], stepValue: MaybePromise<number> | undefined): Promise<void> {
    const step = await stepValue;
    const values = new Map<Slot, SlotView>();
    for (const w of [...sources, ...(sources.length ? this.params : [])]) values.set(w.slot, await this.device.read(w.slot));
    this.scanSources(sources, step, (s) => values.get(s)!);
    for (const phase of phases) {
      for (const k of this.lists[phase]) {
        let checked = false;
        if (k.flags) {
          k.flags.fill(0);
          checked = await this.device.runKernelChecked!(k.entry.name, k.flags);
        }
        if (!checked) await this.device.runKernel(k.entry.name);
        for (const w of k.writes) this.scanWrite(k, w, await this.device.read(w.slot), phase, step, checked);
      }
    }
  }

  /** Inputs, then params (only when inputs are scanned: the update alone reads neither). */
  private scanSources(inputs: readonly Watched[], step: number | undefined, values: (slot: Slot) => SlotView): void {
    if (!inputs.length) return;
    for (const [phase, list] of [["input", inputs], ["param", this.params]] as const) {
      for (const w of list) {
        const v = values(w.slot);
        const i = firstNonFinite(v);
        if (i >= 0) {
          throw new NumericsError({ phase, ...(step !== undefined ? { step } : {}), label: w.label, index: unravelIndex(i, w.slot.shape), value: v[i]! });
        }
      }
    }
  }

  private scanWrite(k: CheckedKernel, w: Watched, values: SlotView, phase: Phase, step: number | undefined, checked: boolean): void {
    const i = firstNonFinite(values);
    if (i < 0) return;
    const found = blameNode(k.entry.nodes, w.label, checked ? k.flags : undefined);
    const src = found ? found.node.src : k.entry.src;
    throw new NumericsError({
      phase,
      ...(step !== undefined ? { step } : {}),
      kernel: k.entry.name,
      node: found ? found.node.node : k.entry.node,
      ...(src ? { src } : {}),
      ...(found ? { fused: k.entry.nodes!.length, blame: found.blame } : {}),
      label: w.label,
      index: unravelIndex(i, w.slot.shape),
      value: values[i]!,
    });
  }
}
