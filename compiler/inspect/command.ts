// What `gradc inspect <dir>` prints, chosen by its flags: the gradient slice
// as code (--grad), as maths (--math), as IR at a stage (--stage), or one
// kernel (--kernel). The CLI parses flags; this module does the rest.
import { UsageError } from "../../runtime/flags.js";
import { readBundle } from "./bundleData.js";
import { kernelIrText, kernelText, kernelWatText } from "./kernel.js";
import { mathText } from "./math.js";
import { findParam, irSliceText, sliceText, stageGraph, stageNames } from "./slice.js";

/** The flags of `gradc inspect`, parsed. */
export interface InspectRequest {
  /** A param: its gradient slice. */
  readonly grad?: string;
  /** The slice as a chain-rule expression. */
  readonly math?: boolean;
  /** The IR slice at a stage (see stageNames), or the stage --math reads. */
  readonly stage?: string;
  /** One kernel by name. */
  readonly kernel?: string;
  /** With `kernel`: its kernel IR, as the bundle recorded it. */
  readonly kir?: boolean;
  /** With --grad: print the forward kernels' code too. */
  readonly withForward?: boolean;
  /** The WebAssembly text of the bundle's modules (with `kernel`: of that kernel's functions). */
  readonly wat?: boolean;
}

/** The text `gradc inspect <dir> ...` prints for a request. */
export function inspectText(dir: string, req: InspectRequest): string {
  const view = readBundle(dir);
  if (req.wat) {
    if (req.grad !== undefined || req.math || req.stage !== undefined || req.kir) throw new UsageError("--wat prints WebAssembly text; use it alone or with --kernel NAME");
    return kernelWatText(view, req.kernel);
  }
  if (req.kernel !== undefined) {
    if (req.grad !== undefined || req.math || req.stage !== undefined) throw new UsageError("--kernel shows one kernel; use it without --grad, --math or --stage");
    return req.kir ? kernelIrText(view, req.kernel) : kernelText(view, req.kernel);
  }
  if (req.kir) throw new UsageError("--kir prints one kernel's IR; name it with --kernel NAME");
  const params = view.manifest.params.map((p) => p.name).join(", ") || "(none)";
  if (req.grad === undefined) throw new UsageError(`gradc inspect needs --grad NAME; the params are ${params} (or --kernel NAME for one kernel)`);
  findParam(view, req.grad);
  if (req.math) {
    if (req.stage === "forward") throw new UsageError("--math reads the backward graph; --stage forward has none (use input, a pass name or backward)");
    return mathText(stageGraph(view, req.stage ?? "backward").graph, req.grad);
  }
  if (req.stage !== undefined) {
    if (!stageNames(view).includes(req.stage) && req.stage !== "grad" && req.stage !== "optimized") {
      throw new UsageError(`--stage must be one of ${stageNames(view).join(", ")} (got "${req.stage}")`);
    }
    return irSliceText(stageGraph(view, req.stage), req.grad);
  }
  return sliceText(view, req.grad, { withForward: req.withForward === true });
}
