// The two arenas of a host device and views of their slots, plus the
// boundary checks that guard every write of user data into a device.
import type { DTypeName, InputEntry, Slot } from "./manifest.js";
import { ownValue } from "./names.js";

/** The float arena: Float32Array, or Float64Array for bundles compiled with dtype "f64". */
export type FloatArray = Float32Array | Float64Array;
/** A view of one slot: a float slot or an int (i32/bool) slot. */
export type SlotView = Float32Array | Float64Array | Int32Array;
/** What a caller may pass for an input: a typed array or plain numbers. */
export type Feed = Float32Array | Float64Array | Int32Array | Uint8Array | readonly number[];
/** Values by input name, e.g. one batch. */
export type Feeds = Readonly<Record<string, Feed>>;

/** Both arenas, allocated once per loaded bundle. */
export interface Arenas {
  readonly F: FloatArray;
  readonly I: Int32Array;
}

/** Where slots are written to (a device). */
export interface SlotSink {
  write(slot: Slot, values: ArrayLike<number>): void;
}

/** Where slots are read from: copies owned by the caller (a host device, or values downloaded from a device). */
export interface SlotSource {
  read(slot: Slot): SlotView;
}

/** The number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A type as printed in messages, e.g. `f32[4,2]`. */
export function typeText(dtype: string, shape: readonly number[]): string {
  return `${dtype}[${shape.join(",")}]`;
}

/** A live view (no copy) of a slot's elements in its arena. */
export function slotView(arenas: Arenas, slot: Slot): SlotView {
  const arena = slot.arena === "F" ? arenas.F : arenas.I;
  return arena.subarray(slot.offset, slot.offset + sizeOf(slot.shape));
}

/** The name of a value's kind in messages: `Float32Array`, `number[]`, `string`. */
export function kindOf(v: unknown): string {
  if (Array.isArray(v)) return "number[]";
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (v === null) return "null";
  return typeof v;
}

const isFloat = (dtype: DTypeName): boolean => dtype === "f32" || dtype === "f64";

/** What an input accepts, as said in messages. */
export function expectedText(entry: { readonly dtype: DTypeName; readonly shape: readonly number[]; readonly classes?: number }): string {
  const kinds = isFloat(entry.dtype) ? "Float32Array, Float64Array or number[]" : "Int32Array or number[] of integers";
  const range = entry.classes !== undefined ? ` in [0, ${entry.classes})` : "";
  return `${typeText(entry.dtype, entry.shape)} (${sizeOf(entry.shape)} values${range}, as ${kinds})`;
}

/** The smallest and largest value an i32 slot holds. */
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

/** Why one value does not fit an input, or undefined when it does. */
function badValue(entry: InputEntry, x: unknown, float: boolean, finite: boolean): string | undefined {
  if (typeof x !== "number") return `is ${typeof x}, not a number`;
  if (float) return Number.isFinite(x) || !finite ? undefined : "is not finite (NaN or infinity would poison the params)";
  if (!Number.isInteger(x)) return "is not an integer";
  if (x < I32_MIN || x > I32_MAX) return "does not fit in i32";
  if (entry.classes !== undefined && !(x >= 0 && x < entry.classes)) return `is not a class index in [0, ${entry.classes})`;
  return undefined;
}

/**
 * Checks one input value at the boundary: its kind of array, its length,
 * that floats are finite, that integers are integers in i32 range, and that
 * class labels lie in [0, classes). Throws an error naming the input, the index, the value and the expected shape and dtype.
 */
export function checkFeed(entry: InputEntry, value: unknown): asserts value is Feed {
  checkFeedAs(entry, value, true);
}

/**
 * checkFeed with the finiteness check chosen. (No default parameter here: V8
 * then boxed a number on every call, and a step must allocate nothing.)
 */
function checkFeedAs(entry: InputEntry, value: unknown, finite: boolean): asserts value is Feed {
  // messages are built only on failure: this runs on every step
  if (value === undefined) throw new Error(`missing input "${entry.name}": expected ${expectedText(entry)}`);
  const float = isFloat(entry.dtype);
  const ok = Array.isArray(value)
    ? true
    : float
      ? value instanceof Float32Array || value instanceof Float64Array
      : value instanceof Int32Array || (entry.dtype === "bool" && value instanceof Uint8Array);
  if (!ok) throw new Error(`input "${entry.name}": got ${kindOf(value)}, expected ${expectedText(entry)}`);
  const arr = value as ArrayLike<number>;
  const n = sizeOf(entry.shape);
  if (arr.length !== n) throw new Error(`input "${entry.name}": got ${arr.length} values, expected ${expectedText(entry)}`);
  // a typed array holds numbers of its kind: only NaN, infinity or labels out of range can be wrong
  const bad = Array.isArray(value)
    ? firstBadPlain(entry, value as readonly unknown[], float, finite)
    : float
      ? finite
        ? firstNonFinite(value as FloatArray)
        : -1
      : firstOutside(value as Int32Array, entry.classes);
  if (bad >= 0) badFeed(entry, arr[bad], bad, float, finite);
}

/** Throws the error of a bad value at `index` of an input. */
function badFeed(entry: InputEntry, x: unknown, index: number, float: boolean, finite: boolean): never {
  throw new Error(`input "${entry.name}": value ${typeof x === "string" ? JSON.stringify(x) : String(x)} at index ${index} ${badValue(entry, x, float, finite)}; expected ${expectedText(entry)}`);
}

/** The index of the first NaN or infinity, or -1. */
function firstNonFinite(a: FloatArray): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

/** The index of the first value outside [0, classes), or -1 (always -1 without classes). */
function firstOutside(a: Int32Array | Uint8Array, classes: number | undefined): number {
  if (classes === undefined) return -1;
  for (let i = 0; i < a.length; i++) if (!(a[i]! >= 0 && a[i]! < classes)) return i;
  return -1;
}

/** The index of the first value of a plain array that does not fit the input, or -1. */
function firstBadPlain(entry: InputEntry, a: readonly unknown[], float: boolean, finite: boolean): number {
  for (let i = 0; i < a.length; i++) if (badValue(entry, a[i], float, finite) !== undefined) return i;
  return -1;
}

/**
 * Writes checked feeds into a device's input slots. The lists are made once,
 * so a write is a check plus a device write per input and allocates nothing
 * (on a host device).
 */
export class InputWriter {
  private readonly byName = new Map<string, InputEntry>();
  private readonly train: InputEntry[] = [];
  private readonly forward: InputEntry[] = [];

  /** `finite: false` lets NaN and infinity through (for --check-numerics, which reports them as the input's). */
  constructor(
    private readonly sink: SlotSink,
    inputs: readonly InputEntry[],
    private readonly finite: boolean,
  ) {
    for (const entry of inputs) {
      this.byName.set(entry.name, entry);
      if (entry.usedBy.includes("train")) this.train.push(entry);
      if (entry.usedBy.includes("forward")) this.forward.push(entry);
    }
  }

  /** Checks and writes every input the entry point reads; other graph inputs in `feeds` are ignored. */
  write(feeds: Feeds, entry: "train" | "forward"): void {
    if (feeds === null || typeof feeds !== "object") {
      throw new Error(`expected an object of inputs by name (${this.names()}), got ${kindOf(feeds)}`);
    }
    for (const key in feeds) {
      if (Object.hasOwn(feeds, key) && !this.byName.has(key)) throw new Error(`unknown input "${key}"; the graph's inputs are ${this.names()}`);
    }
    const list = entry === "train" ? this.train : this.forward;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      const value = ownValue(feeds, e.name);
      checkFeedAs(e, value, this.finite);
      this.sink.write(e, value);
    }
  }

  /** The inputs' names and types, for messages. */
  names(): string {
    return [...this.byName.values()].map((e) => `${e.name}: ${typeText(e.dtype, e.shape)}`).join(", ") || "(none)";
  }
}
