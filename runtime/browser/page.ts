// The training page `gradc serve` opens: trains the served bundle in the tab
// with the browser runtime, a slice of steps between frames, and shows the
// loss, gradient norms, test accuracy, the gradient code of a param and, for
// MNIST, a pad to draw a digit on. Every piece of text from the bundle goes
// in through textContent; plots are built as SVG elements.
//
// The query: ?steps=N trains N steps in all on load and then sets the title
// to "gradc: done" (for tests and CI); window.gradc exposes the state.
import type { TrainingSpec } from "../manifest.js";
import type { Trainer } from "../open.js";
import type { TrainingData } from "../arrays.js";
import { MNIST_PIXELS } from "../arrays.js";
import { TrainingRun, argmax } from "../run.js";
import { downsample, logTicks, niceTicks, seriesColor, tickLabel } from "../plot.js";
import { PAGE_THREADS, fetchTrainingData, loadBundle } from "./index.js";
import { downloadBytes, loadCheckpoint, storeCheckpoint } from "./store.js";

/** Where the server puts the page's own files beside the bundle. */
const BUNDLE = "/bundle";
const ASSETS = "/gradc";
/** How the page loads the bundle: its threads, and gpu.js's browser build for a gpu bundle (served by gradc serve). */
const LOAD = { threads: PAGE_THREADS, gpuScript: `${ASSETS}/gpu.js` };

type Status = "loading" | "ready" | "training" | "paused" | "done" | "error";

/** The state tests and scripts read: `window.gradc`. */
interface PageState {
  status: Status;
  step: number;
  loss: number;
  backend: string;
  /** Threads the kernels run on, the main one included (Web Workers beside it when the page is cross-origin isolated). */
  threads: number;
  /** What a gpu bundle's kernels run on ("WebGPU: …" or "WebGL2: …"); "" on the host. */
  adapter: string;
  /** Every step's loss, in order from step 1. */
  losses: number[];
  /** Test accuracy after each epoch: [epoch, accuracy]. */
  accuracy: [number, number][];
  stepsPerSecond: number;
  /** Seconds spent in training slices (steps, evaluation, gradient norms), page updates aside. */
  trainSeconds: number;
  error?: string;
}

declare global {
  interface Window {
    gradc: PageState;
  }
}

const state: PageState = { status: "loading", step: 0, loss: NaN, backend: "", threads: 1, adapter: "", losses: [], accuracy: [], stepsPerSecond: 0, trainSeconds: 0 };
window.gradc = state;

const $ = <T extends Element = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as unknown as T;
};
const text = (id: string, value: string): void => {
  $(id).textContent = value;
};
const fmt = (x: number): string => (!Number.isFinite(x) ? String(x) : Math.abs(x) >= 1e-3 || x === 0 ? x.toFixed(4) : x.toExponential(3));

const query = new URLSearchParams(location.search);
const stepsWanted = ((): number | undefined => {
  const v = query.get("steps");
  if (v === null) return undefined;
  const n = Number(v);
  if (!(Number.isSafeInteger(n) && n > 0)) throw new Error(`?steps= must be a whole number of steps > 0 (got ${JSON.stringify(v)})`);
  return n;
})();

let trainer: Trainer;
let data: TrainingData;
let run: TrainingRun;
let spec: TrainingSpec;
let running = false;
let gradNames: string[] = [];
let gradSeries: [number, number][][] = [];

/** True once a trainer is loaded (the checkpoint buttons need one). */
let loaded = false;

function setStatus(s: Status): void {
  state.status = s;
  text("status", s);
  for (const id of ["reset", "download", "save-db", "resume-db"]) ($(id) as HTMLButtonElement).disabled = s === "loading" || !loaded;
  ($("start") as HTMLButtonElement).disabled = s === "training" || s === "done" || s === "loading" || s === "error";
  ($("pause") as HTMLButtonElement).disabled = s !== "training";
}

function fail(e: unknown): void {
  running = false;
  const message = e instanceof Error ? e.message : String(e);
  state.error = message;
  text("error", message);
  $("error").hidden = false;
  setStatus("error");
  document.title = "gradc: error";
}

/** A new run from the bundle's initial weights. */
async function fresh(): Promise<void> {
  const old = trainer;
  trainer = await loadBundle(BUNDLE, LOAD);
  // the old trainer's workers (a gpu trainer's buffers) are handed back
  await old?.close();
  state.threads = trainer.device.threads ?? 1;
  run = new TrainingRun(trainer, data, stepsWanted === undefined ? {} : { steps: stepsWanted });
  loaded = true;
  state.step = run.step;
  state.loss = NaN;
  state.losses = [];
  state.accuracy = [];
  state.trainSeconds = 0;
  gradSeries = gradNames.map(() => []);
  $("acc-list").replaceChildren();
  showStats();
  drawPlots();
}

async function start(): Promise<void> {
  trainer = await loadBundle(BUNDLE, LOAD);
  const m = trainer.manifest;
  if (!m.training) throw new Error(`${trainer.dir}/manifest.json: the bundle has no training spec (give the model a config.training and recompile)`);
  spec = m.training;
  const info = await pageInfo();
  state.backend = info.backend;
  text("model", m.name);
  const threads = trainer.device.threads ?? 1;
  state.adapter = trainer.device.adapter ?? "";
  const kernels = info.backend === "wasm" ? `TypeScript kernels with WebAssembly SIMD matmuls, ${threads} thread${threads > 1 ? "s" : ""}` : info.backend === "gpu" ? `gpu.js kernels on ${state.adapter}` : "TypeScript kernels";
  text("backend", `${info.backend}: ${kernels}, on the ${trainer.device.backend} device`);
  text("isolation", crossOriginIsolated ? "cross-origin isolated (SharedArrayBuffer available)" : "not cross-origin isolated");
  data = await fetchTrainingData(trainer, spec.data, m.inputs, `${ASSETS}/mnist.safetensors`);
  gradNames = m.params.filter((p) => p.grad).map((p) => p.name);
  text("data", `${data.train.size} training examples${data.test ? `, ${data.test.size} test` : ""}, batches of ${trainer.batchSize}`);
  await fresh();
  showGradCode(info.grads);
  if (spec.data.kind === "mnist") setUpPad(spec.data.images, spec.accuracy?.output);
  setStatus("ready");
  if (stepsWanted !== undefined) train();
}

function showStats(): void {
  text("step", `${run.step} / ${run.plan.total}`);
  text("epoch", `${run.step === 0 ? 1 : run.epoch + 1} (${run.plan.stepsPerEpoch} steps each)`);
  text("loss", fmt(state.loss));
  text("rate", state.stepsPerSecond ? state.stepsPerSecond.toFixed(0) : "–");
  text("lr", trainer.learningRate().toPrecision(3));
  const last = state.accuracy[state.accuracy.length - 1];
  text("acc", last ? `${(100 * last[1]).toFixed(2)}% after epoch ${last[0]}` : run.evaluates ? "after the first epoch" : "no test split");
}

/** Trains a slice of about 30 ms, updates the page, and schedules the next slice. */
async function slice(): Promise<void> {
  if (!running) return;
  const t0 = performance.now();
  let made = 0;
  const every = run.plan.gradNormEvery;
  while (!run.done && performance.now() - t0 < 30) {
    const loss = trainer.synchronous ? run.next() : await run.nextAsync();
    made++;
    state.losses.push(loss);
    state.step = run.step;
    state.loss = loss;
    if (!Number.isFinite(loss)) throw new Error(`the loss is ${loss} at step ${run.step}; try a lower learning rate`);
    if (every > 0 && (run.step % every === 0 || run.step === 1)) {
      for (let i = 0; i < gradNames.length; i++) gradSeries[i]!.push([run.step, await trainer.gradNormAsync(gradNames[i]!)]);
    }
    if (run.endsEpoch && run.evaluates) {
      const acc = (await run.evaluateAsync())!;
      state.accuracy.push([run.epoch + 1, acc]);
      const li = document.createElement("li");
      li.textContent = `epoch ${run.epoch + 1}: ${(100 * acc).toFixed(2)}%`;
      $("acc-list").append(li);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  state.trainSeconds += seconds;
  if (made > 0 && seconds > 0) state.stepsPerSecond = state.stepsPerSecond ? 0.8 * state.stepsPerSecond + 0.2 * (made / seconds) : made / seconds;
  showStats();
  drawPlots();
  if (run.done) {
    running = false;
    setStatus("done");
    document.title = "gradc: done";
    return;
  }
  setTimeout(() => void slice().catch(fail), 0);
}

function train(): void {
  if (running || run.done) return;
  running = true;
  setStatus("training");
  void slice().catch(fail);
}

// ---- plots: SVG elements, text through textContent ----
const SVG = "http://www.w3.org/2000/svg";
function el(tag: string, attrs: Record<string, string | number>, parent: Element): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent.append(e);
  return e;
}

/** Draws series into an <svg> (600 × 260): axes, ticks, one polyline per series, a legend. */
function plot(svg: SVGSVGElement, series: { name: string; points: readonly (readonly [number, number])[] }[], yLabel: string, logY: boolean): void {
  svg.replaceChildren();
  const W = 600, H = 260, L = 60, R = 10, T = 10, B = 36;
  const all = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y) && (!logY || y > 0));
  el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff", stroke: "#999" }, svg);
  const xl = el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", class: "axis-label" }, svg);
  xl.textContent = "step";
  const yl = el("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", class: "axis-label", transform: `rotate(-90 12 ${(T + H - B) / 2})` }, svg);
  yl.textContent = yLabel;
  if (all.length === 0) return;
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const x0 = Math.min(...xs), x1 = Math.max(x0 + 1, ...xs);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 === y0) [y0, y1] = logY ? [y0 / 2, y1 * 2] : [y0 - 1, y1 + 1];
  const f = (y: number): number => (logY ? Math.log10(y) : y);
  const px = (x: number): number => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number): number => H - B - ((f(y) - f(y0)) / (f(y1) - f(y0))) * (H - T - B);
  for (const t of logY ? logTicks(y0, y1).filter((t) => t >= y0 && t <= y1) : niceTicks(y0, y1, 5)) {
    el("line", { x1: L, x2: W - R, y1: py(t), y2: py(t), stroke: "#eee" }, svg);
    const label = el("text", { x: L - 4, y: py(t) + 4, "text-anchor": "end", class: "tick" }, svg);
    label.textContent = tickLabel(t, logY);
  }
  for (const t of niceTicks(x0, x1, 6)) {
    const label = el("text", { x: px(t), y: H - B + 14, "text-anchor": "middle", class: "tick" }, svg);
    label.textContent = tickLabel(t);
  }
  series.forEach((s, i) => {
    const pts = downsample(s.points.filter(([, y]) => Number.isFinite(y) && (!logY || y > 0)), 600);
    const color = seriesColor(i, series.length);
    el("polyline", { points: pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" "), fill: "none", stroke: color, "stroke-width": 1.5, class: "line" }, svg);
    if (series.length > 1) {
      const name = el("text", { x: W - R - 4, y: T + 14 + 13 * i, "text-anchor": "end", fill: color, class: "legend" }, svg);
      name.textContent = s.name;
    }
  });
}

function drawPlots(): void {
  const points = state.losses.map((y, i): [number, number] => [run.startStep + i + 1, y]);
  const finite = state.losses.filter((y) => Number.isFinite(y));
  const logY = finite.length > 0 && Math.min(...finite) > 0 && Math.max(...finite) >= 100 * Math.min(...finite);
  plot($<SVGSVGElement>("loss-plot"), [{ name: "loss", points }], logY ? "loss (log)" : "loss", logY);
  const logged = run.plan.gradNormEvery > 0 && gradNames.length > 0;
  $("grad-section").hidden = !logged;
  if (logged) plot($<SVGSVGElement>("grad-plot"), gradNames.map((name, i) => ({ name, points: gradSeries[i]! })), "‖dLoss/dparam‖ (log)", true);
}

// ---- the gradient code of a param (precomputed by gradc serve: the text of gradc inspect --grad) ----
interface GradCode {
  readonly name: string;
  readonly code: string;
  readonly math?: string;
}

/** What gradc serve precomputed for the page: the compiler target's name and every trainable param's gradient code. */
interface PageInfo {
  readonly backend: string;
  readonly grads: readonly GradCode[];
}

async function pageInfo(): Promise<PageInfo> {
  const res = await fetch(`${ASSETS}/page.json`, { cache: "no-store" });
  if (!res.ok) throw new Error(`cannot read ${ASSETS}/page.json: HTTP ${res.status}`);
  const info = (await res.json()) as Partial<PageInfo>;
  return { backend: typeof info.backend === "string" ? info.backend : "ts", grads: Array.isArray(info.grads) ? info.grads : [] };
}

function showGradCode(grads: readonly GradCode[]): void {
  const select = $<HTMLSelectElement>("grad-param");
  select.replaceChildren();
  for (const g of grads) {
    const o = document.createElement("option");
    o.value = g.name;
    o.textContent = g.name;
    select.append(o);
  }
  const show = (): void => {
    const g = grads.find((x) => x.name === select.value);
    text("grad-math", g?.math ?? "");
    text("grad-code", g?.code ?? "");
  };
  select.addEventListener("change", show);
  show();
}

// ---- MNIST: draw a digit, see predict()'s probabilities ----
function setUpPad(images: string, output: string | undefined): void {
  const out = output ?? trainer.manifest.outputs[0]?.name;
  const input = trainer.manifest.inputs.find((i) => i.name === images && i.usedBy.includes("forward"));
  if (!out || !input) return;
  $("draw-section").hidden = false;
  const pad = $<HTMLCanvasElement>("pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true })!;
  const clear = (): void => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, pad.width, pad.height);
    $("probs").replaceChildren();
  };
  clear();
  let drawing = false;
  const at = (e: PointerEvent): [number, number] => {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
  };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    const [x, y] = at(e);
    ctx.beginPath();
    ctx.moveTo(x, y);
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = at(e);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = pad.width / 12;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const done = (): void => {
    if (!drawing) return;
    drawing = false;
    void predictPad(pad, ctx, input.name, input.shape, out).catch(fail);
  };
  pad.addEventListener("pointerup", done);
  pad.addEventListener("pointerleave", done);
  $("clear").addEventListener("click", clear);
}

/** The drawing as MNIST's digits are: the ink's box scaled into 20 × 20, centred in 28 × 28 by its centre of mass. */
export function padImage(pixels: Uint8ClampedArray, w: number, h: number): Float32Array {
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (pixels[4 * (y * w + x)]! > 32) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const img = new Float32Array(MNIST_PIXELS);
  if (x1 < 0) return img;
  const side = Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const small = new Float32Array(20 * 20);
  for (let v = 0; v < 20; v++) for (let u = 0; u < 20; u++) {
    // the mean of the block of source pixels behind (u, v)
    let sum = 0, n = 0;
    for (let y = Math.floor(y0 + (v * side) / 20); y < Math.floor(y0 + ((v + 1) * side) / 20); y++) for (let x = Math.floor(x0 + (u * side) / 20); x < Math.floor(x0 + ((u + 1) * side) / 20); x++) {
      sum += x < w && y < h ? pixels[4 * (y * w + x)]! / 255 : 0;
      n++;
    }
    small[v * 20 + u] = n ? sum / n : 0;
  }
  let mx = 0, my = 0, mass = 0;
  for (let v = 0; v < 20; v++) for (let u = 0; u < 20; u++) {
    mass += small[v * 20 + u]!; mx += u * small[v * 20 + u]!; my += v * small[v * 20 + u]!;
  }
  const dx = Math.round(14 - (mass ? mx / mass : 9.5)), dy = Math.round(14 - (mass ? my / mass : 9.5));
  for (let v = 0; v < 20; v++) for (let u = 0; u < 20; u++) {
    const x = u + dx, y = v + dy;
    if (x >= 0 && x < 28 && y >= 0 && y < 28) img[y * 28 + x] = small[v * 20 + u]!;
  }
  return img;
}

async function predictPad(pad: HTMLCanvasElement, ctx: CanvasRenderingContext2D, input: string, shape: readonly number[], output: string): Promise<void> {
  const image = padImage(ctx.getImageData(0, 0, pad.width, pad.height).data, pad.width, pad.height);
  // the graph's batch is static: the drawing is row 0, the other rows zeros
  const x = new Float32Array(shape.reduce((a, b) => a * b, 1));
  x.set(image);
  const outs = await trainer.predictAsync({ [input]: x });
  const logits = outs[output]!;
  const classes = logits.length / (shape[0] ?? 1);
  let max = -Infinity;
  for (let k = 0; k < classes; k++) max = Math.max(max, logits[k]!);
  const exps = Array.from({ length: classes }, (_, k) => Math.exp(logits[k]! - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const best = argmax(logits, 0, classes);
  const list = $("probs");
  list.replaceChildren();
  exps.forEach((e, k) => {
    const li = document.createElement("li");
    if (k === best) li.className = "best";
    const label = document.createElement("span");
    label.textContent = `${k}: ${((100 * e) / sum).toFixed(1)}%`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${((160 * e) / sum).toFixed(0)}px`;
    li.append(label, bar);
    list.append(li);
  });
}

// ---- buttons ----
$("start").addEventListener("click", () => train());
$("pause").addEventListener("click", () => {
  running = false;
  setStatus("paused");
});
$("reset").addEventListener("click", () => {
  running = false;
  setStatus("loading");
  void fresh().then(() => setStatus("ready"), fail);
});
$("download").addEventListener("click", () => {
  void trainer.checkpointBytes().then((bytes) => downloadBytes(bytes, `${trainer.manifest.name}-step${trainer.stepCount}.safetensors`), fail);
});
const dbKey = (): string => `${trainer.manifest.name}:${trainer.manifest.digest ?? trainer.manifest.graphHash ?? ""}`;
$("save-db").addEventListener("click", () => {
  void trainer.checkpointBytes().then((bytes) => storeCheckpoint(dbKey(), bytes)).then(() => text("saved", `kept at step ${trainer.stepCount}`), fail);
});
$("resume-db").addEventListener("click", () => {
  void loadCheckpoint(dbKey()).then((bytes) => {
    if (!bytes) return text("saved", "no checkpoint kept for this bundle");
    running = false;
    trainer.restoreBytes(bytes, `IndexedDB ${dbKey()}`);
    run = new TrainingRun(trainer, data, stepsWanted === undefined ? {} : { steps: stepsWanted });
    state.step = run.step;
    state.losses = [];
    text("saved", `resumed at step ${trainer.stepCount}`);
    setStatus(run.done ? "done" : "paused");
    showStats();
    drawPlots();
  }, fail);
});

void start().catch(fail);
