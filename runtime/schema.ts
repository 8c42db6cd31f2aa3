// The schema of what a bundle's files hold: manifest.json and the training
// spec, checked field by field before anything trusts them. Every error names
// the file, the field, the value and what was expected; no TypeError from a
// missing field reaches the user.
import type { Manifest, OptimizerSpec, Slot } from "./manifest.js";
import { FORMAT_NAME, FORMAT_VERSION } from "./manifest.js";
import { checkSchedule } from "./schedule.js";
import { sizeOf, typeText } from "./arena.js";

/** A file's content that does not match its schema. */
export class SchemaError extends Error {
  override readonly name = "SchemaError";
}

/** The largest arena a bundle may ask for, in elements (a typed array's limit, and far beyond any sane model). */
export const MAX_ARENA_ELEMENTS = 2 ** 31 - 1;

/** A value as shown in messages: short JSON, or its kind. */
export function showValue(v: unknown): string {
  if (v === undefined) return "missing";
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v === "object" ? "an object" : typeof v;
}

type Json = Readonly<Record<string, unknown>>;

/** Reads fields of untrusted JSON; `where` prefixes every message (the file). */
export class FieldReader {
  constructor(readonly where: string) {}

  fail(field: string, value: unknown, expected: string): never {
    throw new SchemaError(`${this.where}: ${field} is ${showValue(value)}; expected ${expected}`);
  }

  object(v: unknown, field: string): Json {
    if (v === null || typeof v !== "object" || Array.isArray(v)) this.fail(field, v, "an object");
    return v as Json;
  }

  array(v: unknown, field: string): readonly unknown[] {
    if (!Array.isArray(v)) this.fail(field, v, "an array");
    return v;
  }

  string(v: unknown, field: string): string {
    if (typeof v !== "string") this.fail(field, v, "a string");
    return v;
  }

  boolean(v: unknown, field: string): boolean {
    if (typeof v !== "boolean") this.fail(field, v, "true or false");
    return v;
  }

  /** A safe integer in [min, max]. */
  integer(v: unknown, field: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
      this.fail(field, v, `a whole number${max === Number.MAX_SAFE_INTEGER ? ` ≥ ${min}` : ` in [${min}, ${max}]`}`);
    }
    return v;
  }

  /** A finite number ≥ min (or > min when `open`). */
  number(v: unknown, field: string, min = -Infinity, open = false): number {
    if (typeof v !== "number" || !Number.isFinite(v) || (open ? !(v > min) : !(v >= min))) {
      this.fail(field, v, min === -Infinity ? "a finite number" : `a finite number ${open ? ">" : "≥"} ${min}`);
    }
    return v;
  }

  oneOf<T extends string>(v: unknown, field: string, allowed: readonly T[]): T {
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) this.fail(field, v, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    return v as T;
  }

  /** A path inside the bundle: relative, normalized, no `..`, no absolute or drive path. */
  bundlePath(v: unknown, field: string): string {
    const p = this.string(v, field);
    const inside =
      p.length > 0 && !p.includes("\0") && !p.includes("\\") && !p.startsWith("/") && !/^[A-Za-z]:/.test(p) && normalPath(p) && !p.split("/").includes("..") && p !== ".";
    if (!inside) this.fail(field, v, "a path inside the bundle (relative, without ..)");
    return p;
  }
}

/** True when a relative path is as POSIX normalization writes it: no empty segment but a trailing slash's, no "." segment. */
function normalPath(p: string): boolean {
  const parts = p.split("/");
  return parts.every((s, i) => s !== "." && (s !== "" || i === parts.length - 1));
}

const DTYPES = ["f32", "f64", "i32", "bool"] as const;

function checkSlot(r: FieldReader, v: unknown, field: string): Slot {
  const s = r.object(v, field);
  const arena = r.oneOf(s["arena"], `${field}.arena`, ["F", "I"]);
  r.integer(s["offset"], `${field}.offset`);
  const shape = r.array(s["shape"], `${field}.shape`);
  shape.forEach((d, i) => r.integer(d, `${field}.shape[${i}]`));
  const dtype = r.oneOf(s["dtype"], `${field}.dtype`, DTYPES);
  const float = dtype === "f32" || dtype === "f64";
  if (float !== (arena === "F")) r.fail(`${field}.arena`, arena, `${float ? '"F"' : '"I"'} for a ${dtype} value`);
  return s as unknown as Slot;
}

/** Names must be unique strings; `kind` says what they name. */
function checkNames(r: FieldReader, list: readonly unknown[], field: string): Set<string> {
  const seen = new Set<string>();
  list.forEach((e, i) => {
    const name = r.string(r.object(e, `${field}[${i}]`)["name"], `${field}[${i}].name`);
    if (seen.has(name)) r.fail(`${field}[${i}].name`, name, "a name not used twice");
    seen.add(name);
  });
  return seen;
}

/**
 * Checks the optimizer's numbers as a user would expect them: betas and
 * momentum in [0, 1), eps > 0, weight decay ≥ 0, warm-up a whole number of
 * steps, and the schedule's fields. `where` names the file or option.
 */
export function checkOptimizer(v: unknown, where: string, field = "optimizer"): OptimizerSpec {
  const r = new FieldReader(where);
  const o = r.object(v, field);
  const names = ["sgd", "momentum", "adam", "adamw"];
  if (typeof o["name"] !== "string" || !names.includes(o["name"])) {
    throw new SchemaError(`${where}: ${field}.name: unknown name ${showValue(o["name"])}; expected one of ${names.map((n) => JSON.stringify(n)).join(", ")}`);
  }
  r.number(o["lr"], `${field}.lr`, 0);
  const unit = (key: string): void => {
    const x = o[key];
    if (x !== undefined && !(typeof x === "number" && x >= 0 && x < 1)) r.fail(`${field}.${key}`, x, "a number in [0, 1)");
  };
  unit("momentum");
  unit("beta1");
  unit("beta2");
  if (o["eps"] !== undefined) r.number(o["eps"], `${field}.eps`, 0, true);
  if (o["weightDecay"] !== undefined) r.number(o["weightDecay"], `${field}.weightDecay`, 0);
  if (o["warmupSteps"] !== undefined) r.integer(o["warmupSteps"], `${field}.warmupSteps`);
  if (o["nesterov"] !== undefined) r.boolean(o["nesterov"], `${field}.nesterov`);
  if (o["schedule"] !== undefined) {
    const s = r.object(o["schedule"], `${field}.schedule`);
    r.oneOf(s["name"], `${field}.schedule.name`, ["constant", "step", "cosine", "linear"]);
    if (s["gamma"] !== undefined) r.number(s["gamma"], `${field}.schedule.gamma`, 0);
    for (const k of ["minLr", "endLr"]) if (s[k] !== undefined) r.number(s[k], `${field}.schedule.${k}`, 0);
  }
  return checkSchedule(o as unknown as OptimizerSpec, where);
}

/**
 * Checks a training spec: whole numbers of steps and epochs ≥ 1, logging
 * intervals, a data file inside the bundle, and names that exist.
 */
export function checkTraining(v: unknown, where: string, names: { inputs: ReadonlySet<string>; outputs: ReadonlySet<string> }, field = "training"): void {
  const r = new FieldReader(where);
  const t = r.object(v, field);
  const d = r.object(t["data"], `${field}.data`);
  const kind = r.oneOf(d["kind"], `${field}.data.kind`, ["arrays", "mnist"]);
  const input = (x: unknown, f: string): void => {
    if (!names.inputs.has(r.string(x, f))) r.fail(f, x, `the name of a graph input (${[...names.inputs].map((n) => JSON.stringify(n)).join(", ")})`);
  };
  if (kind === "arrays") {
    r.bundlePath(d["file"], `${field}.data.file`);
    const f = d["testFraction"];
    if (f !== undefined && !(typeof f === "number" && f >= 0 && f < 1)) r.fail(`${field}.data.testFraction`, f, "a number in [0, 1)");
  } else {
    r.integer(d["train"], `${field}.data.train`);
    r.integer(d["test"], `${field}.data.test`);
    input(d["images"], `${field}.data.images`);
    input(d["labels"], `${field}.data.labels`);
    if (d["augment"] !== undefined) r.integer(r.object(d["augment"], `${field}.data.augment`)["shift"], `${field}.data.augment.shift`, 0, 27);
  }
  if (d["seed"] !== undefined) r.integer(d["seed"], `${field}.data.seed`, Number.MIN_SAFE_INTEGER);
  if (t["steps"] !== undefined) r.integer(t["steps"], `${field}.steps`, 1);
  if (t["epochs"] !== undefined) r.integer(t["epochs"], `${field}.epochs`, 1);
  if (t["logEvery"] !== undefined) r.integer(t["logEvery"], `${field}.logEvery`, 1);
  if (t["checkpointEvery"] !== undefined) r.integer(t["checkpointEvery"], `${field}.checkpointEvery`);
  if (t["gradNormEvery"] !== undefined) r.integer(t["gradNormEvery"], `${field}.gradNormEvery`);
  if (t["seed"] !== undefined) r.integer(t["seed"], `${field}.seed`, Number.MIN_SAFE_INTEGER);
  if (t["shuffle"] !== undefined) r.boolean(t["shuffle"], `${field}.shuffle`);
  if (t["accuracy"] !== undefined) {
    const a = r.object(t["accuracy"], `${field}.accuracy`);
    const out = r.string(a["output"], `${field}.accuracy.output`);
    if (!names.outputs.has(out)) r.fail(`${field}.accuracy.output`, out, `the name of a graph output (${[...names.outputs].map((n) => JSON.stringify(n)).join(", ")})`);
    input(a["labels"], `${field}.accuracy.labels`);
  }
}

/**
 * Checks a parsed manifest.json against the bundle format: every field
 * present with the right type, slots of whole-number offsets and shapes
 * inside their arena, no two inputs, params, gradients, optimizer-state or
 * hyper slots sharing memory, file paths inside the bundle. `file` names it.
 */
export function checkManifest(raw: unknown, file: string): Manifest {
  const r = new FieldReader(file);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw) || (raw as Json)["format"] !== FORMAT_NAME) {
    const format = raw !== null && typeof raw === "object" ? (raw as Json)["format"] : undefined;
    throw new SchemaError(`${file}: not a gradc bundle manifest (format ${JSON.stringify(format ?? null)}, expected "${FORMAT_NAME}")`);
  }
  const m = raw as Json;
  if (m["version"] !== FORMAT_VERSION) {
    throw new SchemaError(`${file}: bundle format version ${JSON.stringify(m["version"] ?? null)}, but this runtime reads version ${FORMAT_VERSION}; recompile the model`);
  }
  r.string(m["name"], "name");
  r.string(m["backend"], "backend");
  if (m["backendChoice"] !== undefined) {
    const choice = r.object(m["backendChoice"], "backendChoice");
    r.oneOf(choice["asked"], "backendChoice.asked", ["auto"]);
    r.string(choice["reason"], "backendChoice.reason");
  }
  r.oneOf(m["dtype"], "dtype", ["f32", "f64"]);
  const arena = r.object(m["arena"], "arena");
  const size = { F: r.integer(arena["floats"], "arena.floats", 0, MAX_ARENA_ELEMENTS), I: r.integer(arena["ints"], "arena.ints", 0, MAX_ARENA_ELEMENTS) };

  // every slot, with the field that holds it; `owned` ones must not share memory
  const slots: { field: string; slot: Slot; owned: boolean }[] = [];
  // `label` says what the slot holds in layout messages, e.g. `param "W"`
  const slot = (v: unknown, field: string, owned: boolean, label = field): Slot => {
    const s = checkSlot(r, v, field);
    slots.push({ field: label, slot: s, owned });
    return s;
  };
  const inputs = r.array(m["inputs"], "inputs");
  const inputNames = checkNames(r, inputs, "inputs");
  inputs.forEach((e, i) => {
    slot(e, `inputs[${i}]`, true, `input ${JSON.stringify((e as Json)["name"])}`);
    const used = r.array((e as Json)["usedBy"], `inputs[${i}].usedBy`);
    used.forEach((u, j) => r.oneOf(u, `inputs[${i}].usedBy[${j}]`, ["forward", "train"]));
    const classes = (e as Json)["classes"];
    if (classes !== undefined) r.integer(classes, `inputs[${i}].classes`, 1);
  });
  const params = r.array(m["params"], "params");
  const paramNames = checkNames(r, params, "params");
  params.forEach((e, i) => {
    const p = e as Json;
    slot(p, `params[${i}]`, true, `param ${JSON.stringify(p["name"])}`);
    r.boolean(p["trainable"], `params[${i}].trainable`);
    r.string(r.object(p["init"], `params[${i}].init`)["name"], `params[${i}].init.name`);
    if (p["grad"] !== undefined) {
      const g = slot(p["grad"], `params[${i}].grad`, true, `gradient of ${JSON.stringify(p["name"])}`);
      if (sizeOf(g.shape) !== sizeOf((p as unknown as Slot).shape)) r.fail(`params[${i}].grad.shape`, `[${g.shape.join(",")}]`, "the param's number of elements");
    }
  });
  const outputs = r.array(m["outputs"], "outputs");
  const outputNames = checkNames(r, outputs, "outputs");
  outputs.forEach((e, i) => slot(e, `outputs[${i}]`, false, `output ${JSON.stringify((e as Json)["name"])}`));
  if (m["loss"] !== undefined) slot(m["loss"], "loss", false);
  checkOptimizer(m["optimizer"], file);
  if (m["gradClip"] !== undefined) r.number(m["gradClip"], "gradClip", 0, true);
  r.array(m["state"], "state").forEach((e, i) => {
    const s = r.object(e, `state[${i}]`);
    const param = r.string(s["param"], `state[${i}].param`);
    if (!paramNames.has(param)) r.fail(`state[${i}].param`, param, "the name of a param");
    const which = r.oneOf(s["slot"], `state[${i}].slot`, ["m", "v", "velocity"]);
    slot(s, `state[${i}]`, true, `state ${which} of ${JSON.stringify(param)}`);
  });
  const hyper = r.object(m["hyper"], "hyper");
  const lr = slot(hyper["lr"], "hyper.lr", true);
  if (lr.arena !== "F") r.fail("hyper.lr.arena", lr.arena, '"F"');
  slot(hyper["step"], "hyper.step", true);
  if (hyper["seed"] !== undefined) {
    const seed = slot(hyper["seed"], "hyper.seed", true);
    if (seed.arena !== "I") r.fail("hyper.seed.arena", seed.arena, '"I"');
  }
  if (hyper["lossScale"] !== undefined) {
    const scale = slot(hyper["lossScale"], "hyper.lossScale", true);
    if (scale.arena !== "F") r.fail("hyper.lossScale.arena", scale.arena, '"F"');
    if (m["mixed"] === undefined) r.fail("mixed", undefined, "the loss scale's policy, since hyper.lossScale is present");
  }
  if (m["mixed"] !== undefined) {
    const mixed = r.object(m["mixed"], "mixed");
    r.oneOf(mixed["storage"], "mixed.storage", ["bf16"]);
    const scale = r.number(mixed["initialScale"], "mixed.initialScale", 1);
    if (!(Number.isInteger(Math.log2(scale)) && scale <= 2 ** 126)) r.fail("mixed.initialScale", scale, "a power of two in [1, 2^126]");
    r.integer(mixed["growthInterval"], "mixed.growthInterval", 1);
    if (arena["halves"] !== undefined) r.integer(arena["halves"], "arena.halves", 0, MAX_ARENA_ELEMENTS);
  }
  r.array(m["kernels"], "kernels").forEach((e, i) => {
    const k = r.object(e, `kernels[${i}]`);
    r.string(k["name"], `kernels[${i}].name`);
    r.string(k["node"], `kernels[${i}].node`);
    r.array(k["entry"], `kernels[${i}].entry`).forEach((x, j) => r.oneOf(x, `kernels[${i}].entry[${j}]`, ["forward", "gradients", "update"]));
  });
  const files = r.object(m["files"], "files");
  for (const key of ["forward", "step", "weights", "trainer"]) r.bundlePath(files[key], `files.${key}`);
  if (files["gpu"] !== undefined) r.bundlePath(files["gpu"], "files.gpu");
  if (m["hashes"] !== undefined) {
    const h = r.object(m["hashes"], "hashes");
    for (const [k, v] of Object.entries(h)) {
      r.bundlePath(k, `hashes key ${JSON.stringify(k)}`);
      if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) r.fail(`hashes[${JSON.stringify(k)}]`, v, "a sha256 hex digest");
    }
  }
  if (m["digest"] !== undefined && (typeof m["digest"] !== "string" || !/^[0-9a-f]{64}$/.test(m["digest"]))) r.fail("digest", m["digest"], "a sha256 hex digest");
  if (m["graphHash"] !== undefined && (typeof m["graphHash"] !== "string" || !/^[0-9a-f]{64}$/.test(m["graphHash"]))) r.fail("graphHash", m["graphHash"], "a sha256 hex digest");
  if (m["training"] !== undefined) checkTraining(m["training"], file, { inputs: inputNames, outputs: outputNames });
  checkLayout(r, slots, size);
  return raw as Manifest;
}

/** Every slot lies inside its arena; owned slots never share an element. */
function checkLayout(r: FieldReader, slots: readonly { field: string; slot: Slot; owned: boolean }[], size: { F: number; I: number }): void {
  for (const { field, slot: s } of slots) {
    const n = sizeOf(s.shape);
    if (!(s.offset + n <= size[s.arena])) {
      throw new SchemaError(`${r.where}: ${field} (${typeText(s.dtype, s.shape)} at ${s.arena}[${s.offset}]) lies outside the ${s.arena} arena of ${size[s.arena]} elements`);
    }
  }
  for (const arena of ["F", "I"] as const) {
    const owned = slots.filter((x) => x.owned && x.slot.arena === arena && sizeOf(x.slot.shape) > 0).sort((a, b) => a.slot.offset - b.slot.offset);
    for (let i = 1; i < owned.length; i++) {
      const a = owned[i - 1]!;
      const b = owned[i]!;
      if (b.slot.offset < a.slot.offset + sizeOf(a.slot.shape)) {
        throw new SchemaError(`${r.where}: ${b.field} (at ${arena}[${b.slot.offset}]) overlaps ${a.field} (${arena}[${a.slot.offset}..${a.slot.offset + sizeOf(a.slot.shape)})); each input, param, gradient, optimizer state and hyper slot needs its own memory`);
      }
    }
  }
}
