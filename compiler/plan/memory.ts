// The static memory plan: liveness of every temporary over each entry point's
// kernel sequence, then first-fit placement in which temporaries whose
// lifetimes do not overlap share arena space. What the runtime reads or
// writes between calls (inputs, params, gradients, optimizer state, hyper
// slots, results, constants) keeps its own place. An in-place kernel may
// write its output over an input that dies there.
import type { Stmt } from "../kernel/kir.js";
import { visitKir } from "../kernel/kir.js";
import type { ArenaPlan } from "./arena.js";
import { ALIGN } from "./arena.js";
import type { ArenaName, Buffer, BufferRole } from "../lower/lower.js";
import { elementBytes, isTemporary } from "../lower/lower.js";
import type { Kernel, Schedule } from "../lower/schedule.js";
import { kernelsOf } from "../lower/schedule.js";

/** Kernel buffer names a body loads from and stores into. */
export function accessNames(body: readonly Stmt[]): { reads: Set<string>; writes: Set<string> } {
  const reads = new Set<string>();
  const writes = new Set<string>();
  visitKir(body, {
    stmt: (s) => {
      if (s.k !== "store") return;
      writes.add(s.buf);
      if (s.add) reads.add(s.buf);
    },
    expr: (e) => {
      if (e.k === "load") reads.add(e.buf);
    },
  });
  return { reads, writes };
}

/** The kernel sequences the runtime calls: forward(), and step() (gradients then the update). */
export function programsOf(s: Schedule): Kernel[][] {
  return [kernelsOf(s, "forward"), [...kernelsOf(s, "gradients"), ...kernelsOf(s, "update")]];
}

/** A temporary's lifetime in one program: from the kernel that first touches it to the last. */
interface Span {
  readonly program: number;
  readonly first: number;
  readonly last: number;
}

/** The order roles are laid out in: what the runtime reads and writes comes first. */
const ORDER: readonly BufferRole[] = ["hyper", "input", "block", "param", "grad", "state", "loss", "output", "const", "node", "scratch"];

const bytesOf = (b: Buffer): number => b.size * elementBytes(b);

/** Lays out every buffer of a schedule (see the file header). */
export function planMemory(s: Schedule): ArenaPlan {
  const programs = programsOf(s);
  const spans = new Map<Buffer, Span[]>();
  const readBeforeWrite = new Set<Buffer>();
  programs.forEach((kernels, p) => {
    const seen = new Set<Buffer>();
    kernels.forEach((k, t) => {
      const { reads, writes } = accessNames(k.body);
      for (const name of new Set([...reads, ...writes])) {
        const b = k.buffers[name];
        if (!b || !isTemporary(b)) continue;
        if (!seen.has(b) && !writes.has(name)) readBeforeWrite.add(b);
        seen.add(b);
        const list = spans.get(b) ?? [];
        const last = list.find((x) => x.program === p);
        if (last) list[list.indexOf(last)] = { ...last, last: t };
        else list.push({ program: p, first: t, last: t });
        spans.set(b, list);
      }
    });
  });
  // in-place pairs: the input's last use and the output's first write are the same kernel
  const touches = new Set<string>();
  programs.forEach((kernels, p) => {
    kernels.forEach((k, t) => {
      for (const [inName, outName] of k.inplace) {
        const a = k.buffers[inName];
        const b = k.buffers[outName];
        if (!a || !b || a === b || a.arena !== b.arena || a.size !== b.size || a.dtype !== b.dtype) continue;
        const sa = spans.get(a)?.find((x) => x.program === p);
        const sb = spans.get(b)?.find((x) => x.program === p);
        if (sa && sb && sa.last === t && sb.first === t) touches.add(`${a.id}:${b.id}:${p}`);
      }
    });
  });
  const temps = [...spans.keys()].filter((b) => !readBeforeWrite.has(b));
  const fixed = s.buffers.filter((b) => !temps.includes(b) && !b.within);
  // two temporaries conflict when live together in some program; meeting only at an in-place kernel, they may share one offset
  const relation = (a: Buffer, b: Buffer): "free" | "conflict" | "same" => {
    let rel: "free" | "same" = "free";
    for (const x of spans.get(a)!) {
      for (const y of spans.get(b)!) {
        if (x.program !== y.program || x.last < y.first || y.last < x.first) continue;
        const touch = (x.last === y.first && touches.has(`${a.id}:${b.id}:${x.program}`)) || (y.last === x.first && touches.has(`${b.id}:${a.id}:${x.program}`));
        if (!touch) return "conflict";
        rel = "same";
      }
    }
    return rel;
  };

  const offsets = new Map<Buffer, number>();
  const end: Record<ArenaName, number> = { F: 0, I: 0, H: 0 };
  const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
  fixed.sort((a, b) => ORDER.indexOf(a.role) - ORDER.indexOf(b.role) || a.id - b.id);
  for (const b of fixed) {
    const at = align(end[b.arena]);
    offsets.set(b, at);
    end[b.arena] = at + b.size;
  }
  for (const b of s.buffers) if (b.within) offsets.set(b, offsets.get(b.within.block)! + b.within.at);
  const base: Record<ArenaName, number> = { F: align(end.F), I: align(end.I), H: align(end.H) };
  const placed: Buffer[] = [];
  const inplace: [Buffer, Buffer][] = [];
  const order = [...temps].sort((a, b) => b.size - a.size || spans.get(a)![0]!.first - spans.get(b)![0]!.first || a.id - b.id);
  for (const b of order) {
    const related = placed.filter((x) => x.arena === b.arena).map((x) => ({ x, rel: relation(b, x) })).filter((r) => r.rel !== "free");
    const fits = (at: number): boolean =>
      related.every(({ x, rel }) => {
        const xo = offsets.get(x)!;
        const apart = at + b.size <= xo || xo + x.size <= at;
        return apart || (rel === "same" && xo === at && x.size === b.size);
      });
    // an in-place partner's offset first, then the lowest free offset
    const partner = related.find((r) => r.rel === "same" && fits(offsets.get(r.x)!));
    let at: number;
    if (partner) {
      at = offsets.get(partner.x)!;
      inplace.push([partner.x, b]);
    } else {
      const candidates = [base[b.arena], ...related.map(({ x }) => align(offsets.get(x)! + x.size))].sort((p, q) => p - q);
      at = candidates.find((c) => c >= base[b.arena] && fits(c))!;
    }
    offsets.set(b, at);
    end[b.arena] = Math.max(end[b.arena], at + b.size);
    placed.push(b);
  }
  const floatBytes = s.precision === "f64" ? 8 : 4;
  // saved activations: written by a forward kernel of the step, read by a backward one
  const step = programs[1]!;
  const writtenForward = new Set<Buffer>();
  const saved = new Set<Buffer>();
  for (const k of step) {
    const { reads, writes } = accessNames(k.body);
    if (k.phase === "forward") for (const n of writes) if (k.buffers[n] && isTemporary(k.buffers[n]!)) writtenForward.add(k.buffers[n]!);
    if (k.phase === "backward") for (const n of reads) if (k.buffers[n] && writtenForward.has(k.buffers[n]!)) saved.add(k.buffers[n]!);
  }
  const tempBytes = temps.reduce((n, b) => n + bytesOf(b), 0);
  return {
    offsets,
    floats: end.F,
    ints: end.I,
    halves: end.H,
    peakBytes: end.F * floatBytes + end.I * 4 + end.H * 2,
    pinnedBytes: base.F * floatBytes + base.I * 4 + base.H * 2,
    tempBytes,
    sharedTempBytes: (end.F - base.F) * floatBytes + (end.I - base.I) * 4 + (end.H - base.H) * 2,
    savedActivations: { count: saved.size, bytes: [...saved].reduce((n, b) => n + bytesOf(b), 0) },
    savedAsF32Bytes: [...saved].reduce((n, b) => n + b.size * (b.arena === "H" ? 4 : elementBytes(b)), 0),
    inplace,
  };
}
