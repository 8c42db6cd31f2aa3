// Register tiling: a product nest (productNest.ts) becomes tiles of 4×4
// elements of C, each summed in its own local over one shared p loop, so that
// every operand value loaded (or computed) in the p loop serves four products.
// Rows and columns past the last whole tile get tiles of their own width. Each
// element is computed by the same expressions in the same order as before:
// results do not change, bit for bit.
import type { Expr, Stmt } from "../../kernel/kir.js";
import { addE, let_, mapExpr, mulE, parallel, ref } from "../../kernel/kir.js";
import type { KernelPass } from "../target.js";
import type { ProductNest } from "./productNest.js";
import { declaredNames, freshNames, productNest, replaceStmts } from "./productNest.js";

/** Rows and columns of C a tile covers. */
export const TILE = 4;

/**
 * Copies of a block, one per element (r, c) of a tile, side by side: each
 * copy's row variable is i + r and column variable j + c, its locals renamed;
 * a local whose value another copy already has (the same expression once
 * renamed, e.g. an operand of row r for every column) is that copy's.
 */
class Jam {
  /** Per copy, each local's new name. */
  private readonly renamed: Map<string, string>[];
  /** Per block, a local's value (as text) → its name. */
  private readonly seen = new Map<string, string>();

  constructor(
    private readonly nest: ProductNest,
    private readonly mr: number,
    private readonly nr: number,
    private readonly mutable: ReadonlySet<string>,
    private readonly fresh: (base: string) => string,
    /** Told each local's copy, so the kernel's probes (--check-numerics) follow the copies. */
    private readonly copied: (from: string, to: string) => void,
  ) {
    this.renamed = Array.from({ length: mr * nr }, () => new Map<string, string>());
  }

  /** The block once per copy, row by row (values shared where equal). */
  block(stmts: readonly Stmt[], seen = new Map<string, string>()): Stmt[] {
    const out: Stmt[] = [];
    for (let r = 0; r < this.mr; r++) {
      for (let c = 0; c < this.nr; c++) {
        const names = this.renamed[r * this.nr + c]!;
        const ex = (e: Expr): Expr =>
          mapExpr(e, (x) => {
            if (x.k !== "var") return x;
            if (x.name === this.nest.rows.v) return addE(x, r);
            if (x.name === this.nest.cols.v) return addE(x, c);
            const to = names.get(x.name);
            return to ? ref(to) : x;
          });
        for (const s of stmts) {
          switch (s.k) {
            case "let": {
              const init = ex(s.init);
              const key = JSON.stringify(init);
              const same = this.mutable.has(s.name) ? undefined : seen.get(key);
              if (same) {
                names.set(s.name, same);
              } else {
                const name = this.fresh(`${s.name.replace(/_$/, "")}${r}${c}`);
                names.set(s.name, name);
                this.copied(s.name, name);
                if (!this.mutable.has(s.name)) seen.set(key, name);
                out.push(let_(name, init));
              }
              break;
            }
            case "set": out.push({ ...s, name: names.get(s.name) ?? s.name, value: ex(s.value) }); break;
            case "store": out.push({ ...s, index: ex(s.index), value: ex(s.value) }); break;
            case "comment": if (r === 0 && c === 0) out.push(s); break;
            default: throw new Error(`registerTiles: a ${s.k} statement in a product nest`);
          }
        }
      }
    }
    return out;
  }

  /** The tile: the block before the p loop, the p loop, the block after it. */
  tile(): Stmt[] {
    const { pre, sum, post } = this.nest;
    const outer = this.seen;
    const before = this.block(pre, outer);
    // in the p loop, every copy's operand values first, then the accumulations (the last statement of each copy)
    const inner = this.block(sum.body);
    const after = this.block(post, outer);
    const ordered = [...inner.filter((s) => s.k !== "set"), ...inner.filter((s) => s.k === "set")];
    return [...before, { ...sum, body: ordered }, ...after];
  }
}

/** A product nest in tiles (see the file header). */
function tiled(nest: ProductNest, mutable: ReadonlySet<string>, fresh: (base: string) => string, copied: (from: string, to: string) => void): Stmt[] {
  const [m, n] = [nest.rows.to, nest.cols.to];
  const mt = Math.floor(m / TILE);
  const nt = Math.floor(n / TILE);
  const rm = m - mt * TILE;
  const rn = n - nt * TILE;
  const ti = fresh(`t${nest.rows.v}`);
  const tj = fresh(`t${nest.cols.v}`);
  const tile = (mr: number, nr: number) => new Jam(nest, mr, nr, mutable, fresh, copied).tile();
  /** Tiles of one band of rows (tile rows `from` to `to`), whole columns then the rest. */
  const band = (mr: number, from: number, to: number): Stmt => {
    const cols: Stmt[] = [];
    const at = let_(nest.cols.v, mulE(ref(tj), TILE));
    if (nt > 0) cols.push(parallel(tj, nt, [at, ...tile(mr, TILE)]));
    if (rn > 0) cols.push(parallel(tj, nt + 1, [at, ...tile(mr, rn)], nt));
    return parallel(ti, to, [let_(nest.rows.v, mulE(ref(ti), TILE)), ...cols], from);
  };
  const bands: Stmt[] = [];
  if (mt > 0) bands.push(band(TILE, 0, mt));
  if (rm > 0) bands.push(band(rm, mt, mt + 1));
  return bands;
}

/** The register-tiling pass of the TypeScript backends. */
export const registerTiles: KernelPass = {
  name: "registerTiles",
  run: (k) => {
    let found = false;
    const taken = declaredNames(k.body);
    const fresh = freshNames(taken);
    // a probed local's copies hold the same node's elements
    const probes = k.probes ? new Map(k.probes) : undefined;
    const copied = (from: string, to: string) => {
      const node = k.probes?.get(from);
      if (node !== undefined) probes!.set(to, node);
    };
    const body = replaceStmts(k.body, (s) => {
      const nest = productNest(s);
      if (!nest) return undefined;
      found = true;
      // locals that are set after their let keep one copy per element
      const mutable = new Set<string>();
      const visit = (xs: readonly Stmt[]) => xs.forEach((x) => (x.k === "set" ? mutable.add(x.name) : x.k === "for" ? visit(x.body) : undefined));
      visit(nest.cols.body);
      return tiled(nest, mutable, fresh, copied);
    });
    return found ? { ...k, body, ...(probes ? { probes } : {}) } : k;
  },
};
