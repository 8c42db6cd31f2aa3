// Gradient norms during training: every N steps the L2 norm of each trainable
// param's gradient goes to logs/grad_norms.csv, flagged when it vanishes or
// explodes, with a one-line warning the first time a param is flagged.
import { closeSync, existsSync, openSync, readFileSync, writeSync } from "node:fs";
import { csvCell, fromCsvCell, terminalText } from "./names.js";
import type { Series } from "./plot.js";

/** A norm below this fraction of the step's largest norm is flagged "vanishing". */
export const VANISHING_RELATIVE = 1e-7;
/** A norm below this is flagged "vanishing" whatever the other norms are. */
export const VANISHING_ABSOLUTE = 1e-10;
/** A norm above this, or not finite, is flagged "exploding". */
export const EXPLODING = 1e3;

export type GradFlag = "" | "vanishing" | "exploding";

/** The flag of one norm, given the largest finite norm of the same step. */
export function flagOf(norm: number, largest: number): GradFlag {
  if (!Number.isFinite(norm) || norm > EXPLODING) return "exploding";
  if (norm < VANISHING_ABSOLUTE || norm < VANISHING_RELATIVE * largest) return "vanishing";
  return "";
}

/** The largest finite value of `values` (0 when there is none). */
export function largestFinite(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v) && v > m) m = v;
  }
  return m;
}

/** A CSV field from a name (see csvCell: quoted when needed, never a spreadsheet formula). */
export const csvField = csvCell;

/** Parses CSV text into rows of fields; quoted fields may hold commas, line breaks and doubled quotes. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else if (c !== "\r") field += c;
  }
  if (field.length > 0 || row.length > 0) rows.push([...row, field]);
  return rows;
}

/** Where the norms come from: a loaded bundle (see `Trainer.gradNorm`). */
export interface GradSource {
  gradNorm(name: string): number;
}

/** Where the norms come from on a device that works asynchronously (a GPU's). */
export interface AsyncGradSource {
  gradNormAsync(name: string): Promise<number>;
}

const short = (x: number): string => (Number.isFinite(x) ? x.toExponential(2) : String(x));
/** A warning names at most this many params. */
const WARN_NAMES = 6;

/**
 * Writes the gradient norms of `names` to a CSV file (`step,param,norm,flag`),
 * appending to an existing log when `append` is set (a resumed run), and warns
 * through `warn` the first time each param gets each flag.
 */
export class GradNormLog {
  private readonly fd: number;
  private readonly norms: Float64Array;
  private readonly warned = new Set<string>();

  constructor(
    readonly file: string,
    private readonly names: readonly string[],
    append: boolean,
    private readonly warn: (line: string) => void,
  ) {
    const appending = append && existsSync(file);
    this.fd = openSync(file, appending ? "a" : "w");
    if (!appending) writeSync(this.fd, "step,param,norm,flag\n");
    this.norms = new Float64Array(names.length);
  }

  /**
   * Reads every norm from `source` after step `step` and writes them. Params
   * flagged for the first time are named in one warning line per flag.
   */
  record(step: number, source: GradSource): void {
    for (let i = 0; i < this.names.length; i++) this.norms[i] = source.gradNorm(this.names[i]!);
    this.write(step);
  }

  /** `record` on a device that works asynchronously: each norm is one download. */
  async recordAsync(step: number, source: AsyncGradSource): Promise<void> {
    for (let i = 0; i < this.names.length; i++) this.norms[i] = await source.gradNormAsync(this.names[i]!);
    this.write(step);
  }

  /** Writes the norms just read as step `step`'s rows, and warns of new flags. */
  private write(step: number): void {
    const largest = largestFinite(this.norms);
    let rows = "";
    const fresh: Record<Exclude<GradFlag, "">, string[]> = { vanishing: [], exploding: [] };
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i]!;
      const norm = this.norms[i]!;
      const flag = flagOf(norm, largest);
      rows += `${step},${csvField(name)},${norm},${flag}\n`;
      if (flag && !this.warned.has(`${flag}\0${name}`)) {
        this.warned.add(`${flag}\0${name}`);
        fresh[flag].push(`${terminalText(JSON.stringify(name))} ${short(norm)}`);
      }
    }
    writeSync(this.fd, rows);
    const biggest = terminalText(JSON.stringify(this.names[this.norms.indexOf(largest)] ?? ""));
    const why = {
      vanishing: `norm < ${VANISHING_RELATIVE} × the largest, ${short(largest)} for ${biggest}, or < ${VANISHING_ABSOLUTE}`,
      exploding: `norm > ${EXPLODING} or not finite`,
    };
    for (const flag of ["exploding", "vanishing"] as const) {
      const list = fresh[flag];
      if (!list.length) continue;
      const shown = list.length > WARN_NAMES ? `${list.slice(0, WARN_NAMES).join(", ")} and ${list.length - WARN_NAMES} more` : list.join(", ");
      this.warn(`warning: ${flag} gradient${list.length > 1 ? "s" : ""} at step ${step} (${why[flag]}): ${shown}; see ${this.file}`);
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** One row of grad_norms.csv. */
export interface GradNormRow {
  readonly step: number;
  readonly param: string;
  readonly norm: number;
  readonly flag: GradFlag;
}

/** Reads a grad_norms.csv written by GradNormLog. */
export function readGradNorms(file: string): GradNormRow[] {
  const [head, ...rows] = parseCsv(readFileSync(file, "utf8"));
  if (head?.join(",") !== "step,param,norm,flag") throw new Error(`${file}: not a gradient-norm log (header ${JSON.stringify(head?.join(",") ?? "")})`);
  return rows.map(([step, param, norm, flag]) => ({ step: Number(step), param: fromCsvCell(param ?? ""), norm: Number(norm), flag: (flag ?? "") as GradFlag }));
}

/** The rows as one plot series per param, in the order params first appear. */
export function gradNormSeries(rows: readonly GradNormRow[]): Series[] {
  const byParam = new Map<string, [number, number][]>();
  for (const r of rows) {
    let points = byParam.get(r.param);
    if (!points) byParam.set(r.param, (points = []));
    points.push([r.step, r.norm]);
  }
  return [...byParam].map(([name, points]) => ({ name, points }));
}
