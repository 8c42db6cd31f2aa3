// The manifest schema at load(): every field checked, errors that name the
// file, the field, the value and what was expected; crafted layouts and paths
// that point outside the bundle refused.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { load } from "../../runtime/load.js";
import { checkManifest, checkOptimizer } from "../../runtime/schema.js";
import { errorMessage } from "../helpers.js";
import { writeFixture } from "./fixture.js";
import type { FixtureOptions } from "./fixture.js";

const root = mkdtempSync(join(tmpdir(), "gradc-schema-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fixture = (o: FixtureOptions = {}) => writeFixture(join(root, `b${n++}`), o);

type Json = Record<string, unknown>;
/** The fixture's manifest as plain JSON, edited by `edit`, written back; returns the load error. */
async function loadEdited(edit: (m: Json) => void): Promise<string> {
  const fx = fixture();
  const file = join(fx.dir, "manifest.json");
  const m = JSON.parse(readFileSync(file, "utf8")) as Json;
  edit(m);
  writeFileSync(file, JSON.stringify(m));
  try {
    await load(fx.dir);
  } catch (e) {
    expect(e).not.toBeInstanceOf(TypeError);
    return (e as Error).message;
  }
  return "(loaded)";
}

describe("manifest schema", () => {
  it("names the missing top-level field instead of failing with a TypeError", async () => {
    for (const field of ["inputs", "hyper", "files", "arena", "params", "optimizer", "state", "kernels", "outputs", "name"]) {
      const msg = await loadEdited((m) => delete m[field]);
      expect(msg).toMatch(/manifest\.json: /);
      expect(msg).toContain(`${field} is missing; expected`);
    }
  });

  it("names a bad field deep inside, with its value", async () => {
    expect(await loadEdited((m) => ((m["params"] as Json[])[0]!["offset"] = 2.5))).toMatch(/params\[0\]\.offset is 2\.5; expected a whole number ≥ 0/);
    expect(await loadEdited((m) => ((m["params"] as Json[])[0]!["offset"] = -3))).toMatch(/params\[0\]\.offset is -3/);
    expect(await loadEdited((m) => ((m["params"] as Json[])[0]!["shape"] = "2,3"))).toMatch(/params\[0\]\.shape is "2,3"; expected an array/);
    expect(await loadEdited((m) => ((m["inputs"] as Json[])[1]!["dtype"] = "i64"))).toMatch(/inputs\[1\]\.dtype is "i64"; expected one of "f32", "f64", "i32", "bool"/);
    expect(await loadEdited((m) => ((m["hyper"] as Json)["lr"] = null))).toMatch(/hyper\.lr is null; expected an object/);
    expect(await loadEdited((m) => ((m["arena"] as Json)["floats"] = 1e12))).toMatch(/arena\.floats is 1000000000000; expected a whole number in \[0, 2147483647\]/);
    expect(await loadEdited((m) => (m["backendChoice"] = { asked: "gpu", reason: "x" }))).toMatch(/backendChoice\.asked is "gpu"; expected one of "auto"/);
    expect(await loadEdited((m) => (m["backendChoice"] = { asked: "auto" }))).toMatch(/backendChoice\.reason is (undefined|missing); expected a string/);
  });

  it("refuses overlapping and aliased slots", async () => {
    // W at offset 8 (after x [4,2]); b moved onto W's last element
    expect(await loadEdited((m) => ((m["params"] as Json[])[1]!["offset"] = 10))).toMatch(/param "b" \(at F\[10\]\) overlaps param "W" \(F\[8\.\.14\)\)/);
    // a gradient aliased to its own param
    const msg = await loadEdited((m) => {
      const W = (m["params"] as Json[])[0]!;
      W["grad"] = { ...(W["grad"] as Json), offset: W["offset"] };
    });
    expect(msg).toMatch(/overlaps/);
    expect(msg).toMatch(/gradient of "W"|param "W"/);
    // two inputs in one place
    expect(await loadEdited((m) => ((m["inputs"] as Json[])[1]!["arena"] = "F"))).toMatch(/inputs\[1\]\.arena is "F"; expected "I" for a i32 value/);
  });

  it("refuses file paths that leave the bundle", async () => {
    for (const bad of ["/etc/passwd", "../other/step.js", "a/../../step.js", "", "./step.js", "C:\\x.js"]) {
      const msg = await loadEdited((m) => ((m["files"] as Json)["step"] = bad));
      expect(msg).toContain(`files.step is ${JSON.stringify(bad)}; expected a path inside the bundle`);
    }
    const msg = await loadEdited((m) => (m["training"] = { data: { kind: "arrays", file: "/etc/passwd" } }));
    expect(msg).toMatch(/training\.data\.file is "\/etc\/passwd"; expected a path inside the bundle/);
  });

  it("refuses duplicate names and state of unknown params", async () => {
    expect(await loadEdited((m) => ((m["params"] as Json[])[1]!["name"] = "W"))).toMatch(/params\[1\]\.name is "W"; expected a name not used twice/);
    const msg = await loadEdited((m) => (m["state"] = [{ param: "nope", slot: "m", arena: "F", offset: 0, shape: [], dtype: "f32" }]));
    expect(msg).toMatch(/state\[0\]\.param is "nope"; expected the name of a param/);
  });

  it("checks the training spec: steps, epochs, intervals, names", async () => {
    const spec = (t: Json) => loadEdited((m) => (m["training"] = { data: { kind: "arrays", file: "data.safetensors" }, ...t }));
    expect(await spec({ steps: -5 })).toMatch(/training\.steps is -5; expected a whole number ≥ 1/);
    expect(await spec({ epochs: 2.5 })).toMatch(/training\.epochs is 2\.5/);
    expect(await spec({ logEvery: 0 })).toMatch(/training\.logEvery is 0/);
    expect(await spec({ accuracy: { output: "nope", labels: "y" } })).toMatch(/training\.accuracy\.output is "nope"; expected the name of a graph output \("logits"\)/);
  });

  it("a null, an array or a string is no manifest", () => {
    for (const v of [null, [], "x", 3]) expect(errorMessage(() => checkManifest(v, "m.json"))).toMatch(/m\.json: not a gradc bundle manifest/);
  });
});

describe("optimizer options", () => {
  const bad: [Json, RegExp][] = [
    [{ name: "adam", lr: 0.1, beta1: 1.5 }, /optimizer\.beta1 is 1\.5; expected a number in \[0, 1\)/],
    [{ name: "adam", lr: 0.1, beta2: -3 }, /optimizer\.beta2 is -3; expected a number in \[0, 1\)/],
    [{ name: "adam", lr: 0.1, eps: -1 }, /optimizer\.eps is -1; expected a finite number > 0/],
    [{ name: "adam", lr: 0.1, eps: 0 }, /optimizer\.eps is 0/],
    [{ name: "momentum", lr: 0.1, momentum: NaN }, /optimizer\.momentum is NaN; expected a number in \[0, 1\)/],
    [{ name: "adamw", lr: 0.1, weightDecay: -100 }, /optimizer\.weightDecay is -100; expected a finite number ≥ 0/],
    [{ name: "adam", lr: 0.1, warmupSteps: 2.5 }, /optimizer\.warmupSteps is 2\.5; expected a whole number ≥ 0/],
    [{ name: "adam", lr: Infinity }, /optimizer\.lr is Infinity/],
    [{ name: "rmsprop", lr: 0.1 }, /optimizer\.name: unknown name "rmsprop"; expected one of "sgd", "momentum", "adam", "adamw"/],
  ];
  for (const [spec, msg] of bad) {
    it(`refuses ${JSON.stringify(spec, (_, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v))}`, () => {
      expect(errorMessage(() => checkOptimizer(spec, "compile: options"))).toMatch(msg);
    });
  }

  it("accepts the defaults' ranges", () => {
    expect(() => checkOptimizer({ name: "adam", lr: 0.001, beta1: 0, beta2: 0.999, eps: 1e-8, warmupSteps: 10 }, "x")).not.toThrow();
    expect(() => checkOptimizer({ name: "momentum", lr: 0.1, momentum: 0.9, nesterov: true }, "x")).not.toThrow();
  });
});
