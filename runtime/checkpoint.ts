// Checkpoints and weights files: every param, every optimizer-state buffer and
// the step count in one safetensors file, checked against the manifest on read.
// Files come in decoded (a path names them in errors) and go out as bytes: the
// Node runtime reads and writes them on disk, the browser runtime fetches,
// downloads and stores them.
import type { Manifest, Slot } from "./manifest.js";
import type { NamedTensor, TensorData } from "./safetensorsFormat.js";
import { encodeSafetensors } from "./safetensorsFormat.js";
import type { SlotSink, SlotSource } from "./arena.js";
import { typeText } from "./arena.js";
import { ownValue } from "./names.js";

/** The metadata `format` of a checkpoint file. */
export const CHECKPOINT_FORMAT = "gradc-checkpoint";

/** A decoded safetensors file (see decodeSafetensors). */
export interface SafetensorsContent {
  readonly tensors: Readonly<Record<string, NamedTensor>>;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The tensor name of an optimizer-state buffer in a checkpoint. */
export function stateKey(param: string, slot: string): string {
  return `state/${param}/${slot}`;
}

/** Every named slot a checkpoint holds: params, then optimizer state. */
export function checkpointSlots(manifest: Manifest): [string, Slot][] {
  return [
    ...manifest.params.map((p): [string, Slot] => [p.name, p]),
    ...manifest.state.map((s): [string, Slot] => [stateKey(s.param, s.slot), s]),
  ];
}

/** The dtype a tensor's array holds, in the manifest's words. */
function dataDtype(d: TensorData): string {
  return d instanceof Float32Array ? "f32" : d instanceof Float64Array ? "f64" : d instanceof Int32Array ? "i32" : "u8";
}

/** Whether a decoded array may fill a slot of the given dtype. */
function dtypeFits(slot: Slot, d: TensorData): boolean {
  switch (slot.dtype) {
    case "f32":
      return d instanceof Float32Array;
    case "f64":
      return d instanceof Float64Array;
    case "i32":
      return d instanceof Int32Array;
    case "bool":
      return d instanceof Int32Array || d instanceof Uint8Array;
    default:
      return slot.dtype satisfies never;
  }
}

/** The dtype a float slot is stored as: the arena's precision decides. */
function storedSlot(manifest: Manifest, slot: Slot): Slot {
  return slot.arena === "F" ? { ...slot, dtype: manifest.dtype } : slot;
}

/**
 * Checks that `tensors` hold exactly the named slots with matching shapes and
 * dtypes. `file` names the source and `what` the kind of tensor in errors.
 */
export function checkSlots(slots: readonly [string, Slot][], tensors: Readonly<Record<string, NamedTensor>>, file: string, what: string): void {
  const known = new Set(slots.map(([n]) => n));
  for (const name of Object.keys(tensors)) {
    if (!known.has(name)) throw new Error(`${file}: tensor "${name}" is not a ${what} of this bundle (expected ${[...known].join(", ") || "none"})`);
  }
  for (const [name, slot] of slots) {
    const t = ownValue(tensors, name);
    const want = typeText(slot.dtype, slot.shape);
    if (!t) throw new Error(`${file}: ${what} "${name}" (${want}) is missing`);
    const sameShape = t.shape.length === slot.shape.length && t.shape.every((d, i) => d === slot.shape[i]);
    if (!sameShape || !dtypeFits(slot, t.data)) {
      throw new Error(`${file}: ${what} "${name}" is ${typeText(dataDtype(t.data), t.shape)}, but the manifest expects ${want}`);
    }
  }
}

/** Copies checked tensors into their slots. */
function copyIn(sink: SlotSink, slots: readonly [string, Slot][], tensors: Readonly<Record<string, NamedTensor>>): void {
  for (const [name, slot] of slots) sink.write(slot, tensors[name]!.data);
}

/** Fills the params from the bundle's weights file (`path` names it in errors). */
export function loadWeights(sink: SlotSink, manifest: Manifest, file: SafetensorsContent, path: string): void {
  const { tensors } = file;
  const slots = manifest.params.map((p): [string, Slot] => [p.name, storedSlot(manifest, p)]);
  checkSlots(slots, tensors, path, "param");
  copyIn(sink, slots, tensors);
}

/**
 * A checkpoint's bytes: params by name, optimizer state as
 * `state/<param>/<slot>`, and the step count in the metadata.
 */
export function encodeCheckpoint(source: SlotSource, manifest: Manifest, stepCount: number): Uint8Array {
  const tensors: Record<string, NamedTensor> = Object.create(null) as Record<string, NamedTensor>;
  for (const [name, slot] of checkpointSlots(manifest)) tensors[name] = { shape: slot.shape, data: source.read(slot) };
  return encodeSafetensors(tensors, {
    format: CHECKPOINT_FORMAT,
    model: manifest.name,
    optimizer: manifest.optimizer.name,
    step: String(stepCount),
    ...(manifest.graphHash ? { graph: manifest.graphHash } : {}),
  });
}

/**
 * Reads a checkpoint into a device's slots after checking that every param and
 * state buffer matches the manifest; returns the saved step count.
 */
export function restoreCheckpoint(file: SafetensorsContent, path: string, sink: SlotSink, manifest: Manifest): number {
  const { tensors, metadata } = file;
  if (metadata["format"] !== CHECKPOINT_FORMAT) {
    throw new Error(`${path}: not a gradc checkpoint (metadata format ${JSON.stringify(metadata["format"] ?? null)}, expected "${CHECKPOINT_FORMAT}")`);
  }
  const text = metadata["step"];
  const step = typeof text === "string" && /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(step)) throw new Error(`${path}: invalid step count ${JSON.stringify(text ?? null)} in the metadata (expected a whole number of steps)`);
  const graph = metadata["graph"];
  if (graph !== undefined && manifest.graphHash !== undefined && graph !== manifest.graphHash) {
    throw new Error(`${path}: was saved from another graph (sha256 ${graph.slice(0, 12)}…) than this bundle's (${manifest.graphHash.slice(0, 12)}…), probably before a recompile that changed the model; start without --resume, or move the checkpoint away`);
  }
  const slots = checkpointSlots(manifest).map(([n, s]): [string, Slot] => [n, storedSlot(manifest, s)]);
  const isState = (name: string): boolean => name.startsWith("state/");
  const byGroup = (state: boolean): Record<string, NamedTensor> =>
    Object.fromEntries(Object.entries(tensors).filter(([n]) => isState(n) === state));
  // check everything first, so a bad file leaves the trainer untouched
  checkSlots(slots.filter(([n]) => !isState(n)), byGroup(false), path, "param");
  checkSlots(slots.filter(([n]) => isState(n)), byGroup(true), path, `optimizer state (${manifest.optimizer.name})`);
  copyIn(sink, slots, tensors);
  return step;
}

/** A param to import: its name and shape. */
export interface ParamShape {
  readonly name: string;
  readonly shape: readonly number[];
}

/**
 * Reads params by name from a safetensors file written by gradc (a weights
 * file or a checkpoint) or by another tool (PyTorch's `safetensors` writer):
 * F16, BF16, F32 or F64 tensors, returned as float64 values. Every param must
 * be there with its shape; optimizer state (`state/…`) is ignored; any other
 * tensor is an error, as in PyTorch's strict load_state_dict.
 */
export function importParams(file: SafetensorsContent, path: string, params: readonly ParamShape[]): Map<string, Float64Array> {
  const { tensors } = file;
  const known = new Set(params.map((p) => p.name));
  const unexpected = Object.keys(tensors).filter((n) => !known.has(n) && !n.startsWith("state/"));
  if (unexpected.length) {
    throw new Error(`${path}: ${unexpected.map((n) => `"${n}"`).join(", ")} ${unexpected.length === 1 ? "is not a param" : "are not params"} of this model (its params: ${[...known].join(", ")})`);
  }
  const out = new Map<string, Float64Array>();
  for (const p of params) {
    const t = tensors[p.name];
    if (!t) throw new Error(`${path}: param "${p.name}" (${typeText("f32", p.shape)}) is missing from the file`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new Error(`${path}: param "${p.name}" is [${t.shape.join(",")}] in the file, but the model's is [${p.shape.join(",")}]`);
    }
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) {
      throw new Error(`${path}: param "${p.name}" is ${dataDtype(t.data)} in the file; params are read from F16, BF16, F32 or F64 tensors`);
    }
    out.set(p.name, Float64Array.from(t.data));
  }
  return out;
}

/** Overwrites the bundle's params with those of a safetensors file (see importParams); optimizer state and step count are left alone. */
export function loadParams(file: SafetensorsContent, path: string, sink: SlotSink, manifest: Manifest): void {
  const values = importParams(file, path, manifest.params);
  for (const p of manifest.params) sink.write(p, values.get(p.name)!);
}
