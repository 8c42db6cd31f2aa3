// An independent check of a memory plan: runs each entry point's kernels in
// order, tracking which buffer holds a live value at every element of the
// arenas, and reports any kernel that reads an element whose value another
// buffer has overwritten, or any write over a value still to be read.
import type { ArenaPlan } from "../../../compiler/plan/arena.js";
import type { Expr, Stmt } from "../../../compiler/kernel/kir.js";
import type { Buffer } from "../../../compiler/lower/lower.js";
import type { Kernel, Schedule } from "../../../compiler/lower/schedule.js";

/** Buffer names loaded and stored by a kernel body (its own walk, not the compiler's). */
function touched(stmts: readonly Stmt[], reads: Set<string>, writes: Set<string>): void {
  const expr = (e: Expr): void => {
    if (e.k === "load") {
      reads.add(e.buf);
      expr(e.index);
    } else if (e.k === "un") expr(e.a);
    else if (e.k === "bin") [e.a, e.b].forEach(expr);
    else if (e.k === "sel") [e.c, e.a, e.b].forEach(expr);
  };
  for (const s of stmts) {
    if (s.k === "for") touched(s.body, reads, writes);
    // a backend's own code computes what its reference loops say
    else if (s.k === "extern") touched(s.reference, reads, writes);
    else if (s.k === "let") expr(s.init);
    else if (s.k === "set") expr(s.value);
    else if (s.k === "if") {
      expr(s.c);
      touched(s.then, reads, writes);
      touched(s.else ?? [], reads, writes);
    } else if (s.k === "store") {
      writes.add(s.buf);
      if (s.add) reads.add(s.buf);
      expr(s.index);
      expr(s.value);
    }
  }
}

/** The runtime's view: what it reads or writes between calls never moves and is never overwritten by another buffer. */
const KEPT = new Set(["input", "param", "grad", "state", "hyper", "const", "loss", "output", "block"]);

/** One problem found by the simulation. */
export interface Clash {
  readonly program: string;
  readonly kernel: string;
  readonly what: string;
}

/**
 * Simulates `programs` (each a list of kernels) over element ownership of
 * both arenas. A buffer's value is live from its write until its last read
 * in the program; kept buffers are live always. Returns every clash, and the
 * in-place writes (an output written over an input whose last read is that
 * kernel) for which the kernel did not declare the pair in-place safe.
 */
export function simulate(s: Schedule, plan: ArenaPlan, programs: Record<string, readonly Kernel[]>): Clash[] {
  const clashes: Clash[] = [];
  const span = (b: Buffer) => {
    const at = plan.offsets.get(b);
    if (at === undefined) throw new Error(`no offset for ${b.label}`);
    return [at, at + b.size] as const;
  };
  const kept = s.buffers.filter((b) => KEPT.has(b.role));
  for (const [pname, kernels] of Object.entries(programs)) {
    const access = kernels.map((k) => {
      const reads = new Set<string>();
      const writes = new Set<string>();
      touched(k.body, reads, writes);
      // the WebAssembly scratch memory is private to one kernel call: no arena buffer
      const map = (names: Set<string>) => new Set([...names].filter((n) => k.buffers[n]).map((n) => k.buffers[n]!));
      return { reads: map(reads), writes: map(writes) };
    });
    const lastRead = new Map<Buffer, number>();
    access.forEach((a, t) => a.reads.forEach((b) => lastRead.set(b, t)));
    // owner of every element: the buffer whose value is there
    const owner: Record<"F" | "I" | "H", (Buffer | undefined)[]> = { F: new Array(plan.floats), I: new Array(plan.ints), H: new Array(plan.halves) };
    // writing buffer b (a view writes into its block)
    const claim = (b: Buffer, t: number, k: Kernel) => {
      const owns = b.within?.block ?? b;
      const [lo, hi] = span(b);
      for (let e = lo; e < hi; e++) {
        const prev = owner[b.arena][e];
        if (prev && prev !== owns) {
          const prevLive = KEPT.has(prev.role) || (lastRead.get(prev) ?? -1) > t;
          if (prevLive) clashes.push({ program: pname, kernel: k.name, what: `${b.label} overwrites live ${prev.label}` });
          else if ((lastRead.get(prev) ?? -1) === t) {
            // an in-place write: the kernel must have said so
            const names = (x: Buffer) => Object.keys(k.buffers).filter((n) => k.buffers[n] === x);
            const declared = k.inplace.some(([i, o]) => names(prev).includes(i) && names(b).includes(o));
            if (!declared) clashes.push({ program: pname, kernel: k.name, what: `${b.label} written over its input ${prev.label} without an in-place declaration` });
          }
        }
        owner[b.arena][e] = owns;
      }
    };
    for (const b of kept) for (let e = span(b)[0]; e < span(b)[1]; e++) owner[b.arena][e] = b.within?.block ?? b;
    kernels.forEach((k, t) => {
      for (const b of access[t]!.reads) {
        // a kernel that writes a buffer may read it back (accumulation)
        if (access[t]!.writes.has(b)) continue;
        const owns = b.within?.block ?? b;
        const [lo, hi] = span(b);
        for (let e = lo; e < hi; e++) {
          const o = owner[b.arena][e];
          if (o !== owns) clashes.push({ program: pname, kernel: k.name, what: `${b.label} read after ${o?.label ?? "nothing"} took its place` });
        }
      }
      for (const b of access[t]!.writes) claim(b, t, k);
    });
  }
  return clashes;
}
