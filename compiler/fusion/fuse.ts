// Kernel fusion: which values are stored in memory and which kernel computes
// each. Elementwise work stays inline in the kernels that read it; a value is
// stored only when it is a result, feeds an op that cannot inline it, is read
// by another kernel after being produced inside a reduction or matmul
// epilogue, crosses from the forward to the backward pass (unless it is
// recomputed), or is shared by kernels and costly to recompute.
import type { Coord } from "../kernel/coords.js";
import { canonical, coordsKey, flatIndex, identity } from "../kernel/coords.js";
import { inputCoords, isUnitReshape } from "./coords.js";
import type { Group, Level } from "./groups.js";
import { canBeTotal, levelOfShape, nativeCoords, newGroup, sameReduction } from "./groups.js";
import type { Program, Value } from "./program.js";
import { opCost, storageOf } from "./program.js";
import { matmulOperandCoords } from "./matmulFrame.js";
import type { Precision } from "../lower/lower.js";

/** The result of fusion: stored values and the kernels in execution order. */
export interface FusionPlan {
  readonly program: Program;
  /** Values with a buffer: sources, results and every value read from memory. */
  readonly stored: ReadonlySet<Value>;
  readonly groups: readonly Group[];
  /** The group computing each member. */
  readonly groupOf: ReadonlyMap<Value, Group>;
  /** Where each member of a reduce group lives (every element, kept positions, after the loops). */
  readonly levels: ReadonlyMap<Value, Level>;
}

/** A free value shared by kernels is stored from this cost on (an exp costs 8, an add 1). */
const SHARED_COST = 8;

/** The costs fusion weighs when it decides what to store and what to recompute inline. */
export interface CostModel {
  /**
   * A value inlined into a matmul operand is recomputed as often as
   * `matmulReuse` says: it is stored once that total cost per element is above this.
   */
  readonly operandCost: number;
  /** How many times this target's matmul kernel reads each element of A and of B. */
  matmulReuse(mm: Value, precision: Precision): readonly [number, number];
}

/** How to fuse: `fusion: false` gives one kernel per node; the target's cost model decides what matmul operands store. */
export interface FuseOptions {
  readonly fusion: boolean;
  readonly cost: CostModel;
  readonly precision: Precision;
}

/** One value reached while inlining a kernel's computation. */
interface Reach {
  readonly v: Value;
  readonly coords: readonly Coord[];
  /** stored: read from its buffer; local: a value computed inside a group and kept in a local; literal. */
  readonly how: "stored" | "local" | "literal";
}

/** Mutable state of one round of grouping. */
interface Round {
  readonly stored: Set<Value>;
  readonly groups: Group[];
  readonly groupOf: Map<Value, Group>;
  readonly levels: Map<Value, Level>;
  /** Groups each group reads stored values from. */
  readonly deps: Map<Group, Set<Group>>;
  /** Values to store in the next round. */
  readonly more: Set<Value>;
  /** The target's costs, and the precision they are asked at. */
  readonly cost: CostModel;
  readonly precision: Precision;
}

/**
 * Walks the inline computation of `v`'s inputs at `coords` (in a frame of `n`
 * axes): free values are descended into; stored values, locals and literals
 * are reported. `onFree` sees each free value reached.
 */
export function reachInputs(
  v: Value,
  coords: readonly Coord[],
  n: number,
  isStored: (v: Value) => boolean,
  isLocal: (v: Value) => boolean,
  out: Reach[],
  onFree?: (f: Value, coords: readonly Coord[]) => boolean,
): void {
  const ins = inputCoords(v, coords, n);
  if (!ins) throw new Error(`fuse: ${v.node.op} ${String(v.node)} needs its input in memory`);
  v.inputs.forEach((u, i) => reachValue(u, ins[i]!, n, isStored, isLocal, out, onFree));
}

function reachValue(
  u: Value,
  coords: readonly Coord[],
  n: number,
  isStored: (v: Value) => boolean,
  isLocal: (v: Value) => boolean,
  out: Reach[],
  onFree?: (f: Value, coords: readonly Coord[]) => boolean,
): void {
  if (u.kind === "literal") return void out.push({ v: u, coords, how: "literal" });
  if (u.kind === "alias") {
    const s = storageOf(u);
    if (s.kind === "literal") return void out.push({ v: s, coords, how: "literal" });
    // an alias of a stored value reads its buffer at the alias's own flat index
    if (isStored(s)) return void out.push({ v: s, coords: [flatIndex(coords, u.node.shape, n)], how: "stored" });
    return reachInputs(u, coords, n, isStored, isLocal, out, onFree);
  }
  if (isStored(u)) return void out.push({ v: u, coords, how: "stored" });
  if (isLocal(u) || u.kind === "reduce" || u.kind === "matmul" || u.kind === "opaque") return void out.push({ v: u, coords, how: "local" });
  if (onFree && !onFree(u, coords)) return;
  reachInputs(u, coords, n, isStored, isLocal, out, onFree);
}

/** Compares where a value is read with where its group computes it (flat offsets for stored reads through aliases). */
function readAtNative(g: Group, r: Reach, level?: Level): boolean {
  const native = nativeCoords(g, r.v, level);
  if (!native) return false;
  if (r.coords.length === native.length && coordsKey(canonical(r.coords, r.v.node.shape, g.n)) === coordsKey(native)) return true;
  return r.how === "stored" && r.coords.length === 1 && coordsKey(r.coords) === coordsKey([flatIndex(native, r.v.node.shape, g.n)]);
}

/** Whether an elementwise value reads (through elementwise values) anything computed: not only sources and literals. */
function readsComputed(v: Value): boolean {
  return v.inputs.some((u) => u.kind !== "source" && u.kind !== "literal" && (u.kind === "reduce" || u.kind === "matmul" || u.kind === "opaque" || readsComputed(u)));
}

/** The cost of one element of an elementwise value computed from sources and everything else it reads; 0 for constant expressions. */
function treeCost(v: Value): number {
  if (v.kind === "literal" || v.kind === "source" || v.kind === "reduce" || v.kind === "matmul" || v.kind === "opaque") return 0;
  if (isConstant(v)) return 0;
  return opCost(v) + v.inputs.reduce((a, u) => a + treeCost(u), 0);
}

/** Whether a value is computed from literals only (the JavaScript engine folds it). */
export function isConstant(v: Value): boolean {
  if (v.kind === "literal") return true;
  if (v.kind === "source" || v.kind === "reduce" || v.kind === "matmul" || v.kind === "opaque") return false;
  return v.inputs.every(isConstant);
}

/** Values the initial rules store, before any grouping. */
function initialStored(p: Program): Set<Value> {
  const stored = new Set<Value>();
  const store = (v: Value) => {
    const s = storageOf(v);
    if (s.kind !== "literal") stored.add(s);
  };
  for (const v of p.values) {
    if (v.kind === "source") stored.add(v);
    // an op without an inline form reads its operands from memory
    if (v.kind === "opaque") {
      v.inputs.forEach(store);
      stored.add(v);
    }
    // a reshape that is more than adding or dropping unit axes reads its input's flat layout
    if (v.kind === "alias" && v.node.op === "reshape" && !isUnitReshape(v)) store(v.inputs[0]!);
  }
  for (const r of p.roots) {
    const s = storageOf(r);
    stored.add(s);
  }
  // values the backward reads from the forward pass are kept (saved activations);
  // pure re-indexing is followed to what it reads
  const keep = (u: Value) => {
    if (u.phase !== "forward") return;
    if (u.kind === "alias" || (u.kind === "index" && opCost(u) === 0)) return u.inputs.forEach(keep);
    // what only reads inputs and params cheaply is recomputed where needed
    if ((u.kind === "pointwise" || u.kind === "index") && !u.copy && (readsComputed(u) || treeCost(u) >= SHARED_COST)) stored.add(u);
  };
  for (const v of p.values) if (v.phase === "backward") v.inputs.forEach(keep);
  return stored;
}

/** Whether group `a` depends (through stored values) on group `b`. */
function dependsOn(r: Round, a: Group, b: Group): boolean {
  const seen = new Set<Group>();
  const stack = [a];
  while (stack.length) {
    const g = stack.pop()!;
    if (g === b) return true;
    if (seen.has(g)) continue;
    seen.add(g);
    for (const d of r.deps.get(g) ?? []) stack.push(d);
  }
  return false;
}

/** What `v` reads when computed at `coords` in a frame of `n` axes. */
function reachOf(r: Round, v: Value, coords: readonly Coord[], n: number): Reach[] {
  const out: Reach[] = [];
  const isStored = (u: Value) => r.stored.has(u);
  const isLocal = (u: Value) => r.groupOf.has(u);
  if (v.kind === "reduce") {
    reachValue(v.inputs[0]!, coords, n, isStored, isLocal, out);
  } else {
    reachInputs(v, coords, n, isStored, isLocal, out);
  }
  return out;
}

/**
 * The coordinates at which a member's inputs are read: a reduction reads
 * its input at every element (or, as the total, at the kept positions);
 * other members at their own native coordinates.
 */
export function memberCoords(g: Group, v: Value, level: Level | undefined): Coord[] | undefined {
  if (g.kind === "reduce" && v.kind === "reduce") {
    if (v === g.total) return nativeCoords(g, v.inputs[0]!, "k");
    return sameReduction(g, v) ? identity(g.n) : undefined;
  }
  if (g.kind === "matmul" && v.kind === "matmul") return undefined;
  return nativeCoords(g, v, level);
}

/**
 * Tries to add `v` to group `g`: its reads of `g`'s values must be where `g`
 * computes them, and every other group it reads must not depend on `g`.
 */
function tryJoin(r: Round, g: Group, v: Value): boolean {
  if (g.phase !== v.phase || g.kind === "opaque" || g.kind === "single") return false;
  let level: Level | undefined;
  let asTotal = false;
  if (g.kind === "reduce") {
    if (v.kind === "reduce") {
      if (g.total) return false;
      if (sameReduction(g, v)) level = "k";
      else if (canBeTotal(g, v)) asTotal = true;
      else return false;
    } else {
      level = levelOfShape(g, v.node.shape);
      if (g.total && level !== "x") level = "t";
      if (!level) return false;
    }
  } else if (g.kind === "matmul" || g.kind === "pointwise") {
    if (v.kind !== "pointwise" && v.kind !== "index") return false;
  }
  if (asTotal) {
    g.total = v;
    level = "t";
  }
  const coords = memberCoords(g, v, level);
  if (!coords) {
    if (asTotal) g.total = undefined;
    return false;
  }
  const reached = reachOf(r, v, coords, g.n);
  const others = new Set<Group>();
  let ok = true;
  for (const x of reached) {
    if (x.how === "literal") continue;
    const owner = r.groupOf.get(x.v);
    if (owner === g) {
      // a total is read only after the loops, by values that live there too
      const lvl = r.levels.get(x.v);
      if (x.v === g.total && (level !== "t" || asTotal)) ok = false;
      else if (!readAtNative(g, x, lvl)) ok = false;
    } else if (x.how === "local") {
      ok = false;
    } else if (owner) {
      others.add(owner);
    }
  }
  for (const o of others) if (dependsOn(r, o, g)) ok = false;
  if (!ok) {
    if (asTotal) g.total = undefined;
    return false;
  }
  g.members.push(v);
  r.groupOf.set(v, g);
  if (level) r.levels.set(v, level);
  const deps = r.deps.get(g) ?? new Set<Group>();
  for (const o of others) deps.add(o);
  r.deps.set(g, deps);
  return true;
}

/** Opens a new group at `v`, reading the groups its inputs come from. */
function open(r: Round, kind: Group["kind"], v: Value): Group {
  const g = newGroup(r.groups.length, kind, v);
  r.groups.push(g);
  r.groupOf.set(v, g);
  if (kind === "reduce") r.levels.set(v, "k");
  const deps = new Set<Group>();
  const coords = kind === "reduce" ? identity(g.n) : kind === "pointwise" ? identity(g.n) : undefined;
  const reached: Reach[] = [];
  if (kind === "matmul") {
    matmulOperandCoords(v, g.n).forEach((c, i) => {
      const operand = v.inputs[i]!;
      const got: Reach[] = [];
      reachValue(operand, c, g.n, (u) => r.stored.has(u), (u) => r.groupOf.has(u), got);
      // an operand computed from another kernel's locals is stored whole when that costs least:
      // it is read at a high cost per element, or other kernels read it too; else the locals are stored
      const top = storageOf(operand);
      const reuse = r.cost.matmulReuse(v, r.precision)[i]!;
      const whole = inlineCostIn(r, top) * reuse > r.cost.operandCost || top.users.length >= 2;
      if (got.some((x) => x.how === "local") && whole && (top.kind === "pointwise" || top.kind === "index") && !r.groupOf.has(top)) {
        r.more.add(top);
      } else {
        reached.push(...got);
      }
    });
  } else if (coords) {
    reached.push(...reachOf(r, v, coords, g.n));
  } else {
    for (const u of v.inputs) {
      const s = storageOf(u);
      if (r.groupOf.has(s)) reached.push({ v: s, coords: [], how: r.stored.has(s) ? "stored" : "local" });
    }
  }
  for (const x of reached) {
    const owner = r.groupOf.get(x.v);
    if (owner === g) continue;
    // a kernel that cannot take in another's locals reads them from memory
    if (x.how === "local") r.more.add(x.v);
    else if (owner) deps.add(owner);
  }
  r.deps.set(g, deps);
  return g;
}

/** One round: groups for the current stored set, and the values that must be stored as well. */
function groupRound(p: Program, stored: Set<Value>, options: FuseOptions): Round {
  const r: Round = { stored, groups: [], groupOf: new Map(), levels: new Map(), deps: new Map(), more: new Set(), cost: options.cost, precision: options.precision };
  for (const v of p.values) {
    switch (v.kind) {
      case "source":
      case "literal":
      case "alias":
        continue;
      case "opaque":
        open(r, "opaque", v);
        continue;
      case "matmul":
        open(r, "matmul", v);
        continue;
      default:
        break;
    }
    // the groups whose locals v reads: v can only be computed there
    const reached = v.kind === "reduce" ? reachOf(r, v, identity(v.inputs[0]!.node.rank), v.inputs[0]!.node.rank) : reachOf(r, v, identity(v.node.rank), v.node.rank);
    const owners = new Map<Group, Value[]>();
    for (const x of reached) {
      if (x.how !== "local") continue;
      const g = r.groupOf.get(x.v);
      // a value left unplaced this round is placed in the next
      if (g) owners.set(g, [...(owners.get(g) ?? []), x.v]);
    }
    if (owners.size > 0) {
      // the latest owner keeps v; the others' locals go to memory
      const latest = [...owners.keys()].sort((a, b) => b.id - a.id)[0]!;
      if (owners.size > 1) {
        for (const [g, locals] of owners) if (g !== latest) locals.forEach((l) => r.more.add(l));
      } else if (!tryJoin(r, latest, v)) {
        owners.get(latest)!.forEach((l) => r.more.add(l));
      }
      continue;
    }
    if (v.kind !== "reduce" && !stored.has(v)) continue; // free: inlined wherever it is read
    // a reduction or a stored elementwise value joins a kernel that computes what it reads, where it can
    const producers = [...new Set(reached.filter((x) => x.how === "stored").map((x) => r.groupOf.get(x.v)).filter((g) => g !== undefined))];
    producers.sort((a, b) => b.id - a.id);
    if (producers.some((g) => tryJoin(r, g, v))) continue;
    open(r, v.kind === "reduce" ? "reduce" : "pointwise", v);
  }
  return r;
}

/** The cost of computing one element of a free value inline, down to stored values and locals. */
function inlineCostIn(r: Round, u: Value, memo = new Map<Value, number>()): number {
  if (u.kind === "literal" || r.stored.has(u) || r.groupOf.has(u) || isConstant(u)) return 0;
  if (u.kind === "reduce" || u.kind === "matmul" || u.kind === "opaque" || u.kind === "source") return 0;
  if (u.kind === "alias") return r.stored.has(storageOf(u)) ? 0 : inlineCostIn(r, u.inputs[0]!, memo);
  let c = memo.get(u);
  if (c === undefined) {
    c = opCost(u) + u.inputs.reduce((a, x) => a + inlineCostIn(r, x, memo), 0);
    memo.set(u, c);
  }
  return c;
}

/** Free values inlined by several kernels and costly, or inlined into matmul operands at a high cost: stored next round. */
function costlyShared(r: Round): Set<Value> {
  const isStored = (u: Value) => r.stored.has(u);
  const isLocal = (u: Value) => r.groupOf.has(u);
  const memo = new Map<Value, number>();
  const inlineCost = (u: Value): number => inlineCostIn(r, u, memo);
  const users = new Map<Value, Set<Group>>();
  const worst = new Map<Value, number>();
  const walkAll = (stop?: ReadonlySet<Value>) => {
    users.clear();
    worst.clear();
    for (const g of r.groups) {
      if (g.kind === "single" || g.kind === "opaque") continue;
      for (const v of g.members) {
        const seen = (reuse: number) => (f: Value) => {
          if (!users.has(f)) users.set(f, new Set());
          users.get(f)!.add(g);
          worst.set(f, Math.max(worst.get(f) ?? 0, reuse * inlineCost(f)));
          return !stop?.has(f);
        };
        const out: Reach[] = [];
        if (v.kind === "matmul") {
          // the target's matmul reads each element of A and of B this many times
          const [ca, cb] = matmulOperandCoords(v, g.n);
          const [ra, rb] = r.cost.matmulReuse(v, r.precision);
          reachValue(v.inputs[0]!, ca, g.n, isStored, isLocal, out, seen(ra));
          reachValue(v.inputs[1]!, cb, g.n, isStored, isLocal, out, seen(rb));
          continue;
        }
        const coords = memberCoords(g, v, r.levels.get(v));
        if (!coords) continue;
        if (v.kind === "reduce") reachValue(v.inputs[0]!, coords, g.n, isStored, isLocal, out, seen(1));
        else reachInputs(v, coords, g.n, isStored, isLocal, out, seen(1));
      }
    }
  };
  const costly = (f: Value): boolean => {
    if (f.kind !== "pointwise" && f.kind !== "index") return false;
    return (users.get(f)!.size >= 2 && inlineCost(f) >= SHARED_COST) || (worst.get(f) ?? 0) > r.cost.operandCost;
  };
  walkAll();
  const candidates = new Set([...users.keys()].filter(costly));
  if (!candidates.size) return candidates;
  // once the outermost candidates are stored, the ones inside them may no longer be read costly
  walkAll(candidates);
  return new Set([...users.keys()].filter((f) => candidates.has(f) && costly(f)));
}

/** Groups in an order that respects their reads, earliest demand first. */
function order(r: Round): Group[] {
  const demand = (g: Group) => Math.min(...g.members.map((v) => v.demand));
  const pending = new Map(r.groups.map((g) => [g, new Set([...(r.deps.get(g) ?? [])].filter((d) => d !== g))]));
  const out: Group[] = [];
  while (pending.size) {
    const ready = [...pending].filter(([, d]) => d.size === 0).map(([g]) => g);
    if (!ready.length) throw new Error("fuse: kernels depend on each other in a cycle");
    ready.sort((a, b) => demand(a) - demand(b) || a.id - b.id);
    const g = ready[0]!;
    out.push(g);
    pending.delete(g);
    for (const d of pending.values()) d.delete(g);
  }
  return out;
}

/** One kernel per value, as emitted before fusion (for comparison and debugging). */
function unfused(p: Program): FusionPlan {
  const stored = new Set<Value>();
  const groups: Group[] = [];
  const groupOf = new Map<Value, Group>();
  for (const v of p.values) {
    if (v.kind === "alias" || v.kind === "literal") continue;
    stored.add(v);
    if (v.kind === "source") continue;
    const g = newGroup(groups.length, "single", v);
    groups.push(g);
    groupOf.set(v, g);
  }
  for (const r of p.roots) stored.add(storageOf(r));
  return { program: p, stored, groups, groupOf, levels: new Map() };
}

/**
 * Fuses a program: rounds of grouping, each storing the values the previous
 * round could not keep inline, until none is added.
 */
export function fuseProgram(p: Program, options: FuseOptions): FusionPlan {
  if (!options.fusion) return unfused(p);
  const stored = initialStored(p);
  for (let round = 0; round <= p.values.length; round++) {
    const r = groupRound(p, stored, options);
    // anchors first: storing them frees the values computed from them, which may then stay inline
    const anchors = [...r.more].filter((v) => v.kind === "reduce" || v.kind === "matmul" || v.kind === "opaque");
    let more: Set<Value> = anchors.length ? new Set(anchors) : r.more;
    if (!more.size) more = costlyShared(r);
    if (!more.size) {
      // a stored value that is not a source needs a kernel; values kept only as locals do not
      return { program: p, stored, groups: order(r), groupOf: r.groupOf, levels: r.levels };
    }
    for (const v of more) stored.add(v);
  }
  throw new Error("fuse: grouping did not settle");
}
