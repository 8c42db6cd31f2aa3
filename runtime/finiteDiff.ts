// Finite-difference gradient checking, shared by `checkGrads` (the compiler's
// interpreter) and `gradc check` (a compiled float64 bundle): the derivative
// of a loss along one direction, its rounding noise and the relative error of
// a symbolic derivative against it. Knows nothing of graphs or bundles.

/** The float64 machine epsilon. */
const EPS = 2 ** -52;
/** Differences closer than this many rounding errors of the loss are not told apart. */
const NOISE_ULPS = 32;

/** The largest |v| of an array (0 when empty). */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/**
 * The rounding noise η of a difference quotient with step h, for losses of
 * the sizes given: η = 32·ε·max|L| / h.
 */
export function quotientNoise(h: number, ...losses: readonly number[]): number {
  return (NOISE_ULPS * EPS * maxAbs(losses)) / h;
}

/**
 * The relative error of a symbolic derivative a against a numeric b:
 *   max(0, |a − b| − η) / max(|a|, |b|, scale)
 * `scale` (e.g. 1e-4 · the largest gradient component) keeps components far
 * smaller than the rest from failing on truncation error, and η keeps zero
 * gradients from failing on noise. NaN stays NaN (a failure).
 */
export function relativeError(a: number, b: number, noise: number, scale: number): number {
  return Math.max(0, Math.abs(a - b) - noise) / Math.max(Math.abs(a), Math.abs(b), scale, Number.MIN_VALUE);
}

/** What a derivative check found. */
export interface DerivativeCheck {
  /** The finite-difference derivative compared with. */
  readonly numeric: number;
  /** The relative error (0 for a derivative accepted at a kink). */
  readonly error: number;
  /** True when the derivative was accepted at a kink (see `checkDerivative`'s `kinks`). */
  readonly kink: boolean;
}

/** Options of `checkDerivative`. */
export interface DerivativeOptions {
  /** The step h along the direction. */
  readonly h: number;
  /** The loss at the point itself, L(0). */
  readonly loss0: number;
  /** The error's floor of scale (see `relativeError`). */
  readonly scale: number;
  /**
   * Try again at a kink (relu at 0, ties of max) when the error exceeds this
   * tolerance: once with h/1000 (a kink between −h and h), then accept a
   * symbolic value between the one-sided derivatives of a kink at 0.
   * Absent: no second try.
   */
  readonly kinkTolerance?: number;
}

/**
 * Compares a symbolic directional derivative a with finite differences of
 * `lossAt(t)`, the loss moved by t along the direction.
 *
 * Central differences D(h) = (L(h) − L(−h)) / 2h, combined by one Richardson
 * step R = (4·D(h/2) − D(h)) / 3, whose error is O(h⁴).
 */
export function checkDerivative(a: number, lossAt: (t: number) => number, o: DerivativeOptions): DerivativeCheck {
  const { h, loss0, scale } = o;
  const ls = [lossAt(h), lossAt(-h), lossAt(h / 2), lossAt(-h / 2)] as const;
  const b = (4 * ((ls[2] - ls[3]) / h) - (ls[0] - ls[1]) / (2 * h)) / 3;
  let error = relativeError(a, b, quotientNoise(h, loss0, ...ls), scale);
  let numeric = b;
  const tolerance = o.kinkTolerance;
  if (tolerance === undefined || error <= tolerance) return { numeric, error, kink: false };
  // a kink within h: a smaller step on each side
  const hs = h / 1000;
  const up = lossAt(hs);
  const down = lossAt(-hs);
  const noise = quotientNoise(hs, loss0, up, down);
  const central = (up - down) / (2 * hs);
  const small = relativeError(a, central, noise, scale);
  if (small < error) [error, numeric] = [small, central];
  const right = (up - loss0) / hs;
  const left = (loss0 - down) / hs;
  const slack = tolerance * Math.max(Math.abs(right), Math.abs(left), scale) + 2 * noise;
  const jump = Math.abs(right - left) > slack;
  if (!(error <= tolerance) && jump && a >= Math.min(left, right) - slack && a <= Math.max(left, right) + slack) {
    return { numeric, error: 0, kink: true };
  }
  return { numeric, error, kink: false };
}

/** A number in a report: 3 significant digits in exponent form (`1.23e-7`). */
export const sci = (v: number): string => (v === 0 ? "0" : Number.isFinite(v) ? v.toExponential(2) : String(v));
/** A number in a report: 6 significant digits. */
export const num = (v: number): string => (v === 0 ? "0" : Number.isFinite(v) ? v.toPrecision(6) : String(v));

/** A report's rows (header first) as lines of padded columns, each indented by two spaces. */
export function reportTable(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => `  ${row.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()}`);
}
