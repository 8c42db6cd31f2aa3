// `gradc inspect <dir> --grad NAME --shader` (or `--kernel NAME --shader`) on
// a gpu bundle: the shaders gpu.js generated for those kernels (WGSL on
// WebGPU). gpu.js writes a shader when a kernel first runs, so this loads the
// bundle on the gpu device and runs each kernel once on its initial values.
import { UsageError } from "../../runtime/flags.js";
import { load } from "../../runtime/load.js";
import type { GpuDevice } from "../../runtime/gpuDevice.js";
import { gpuAdapterName } from "../../runtime/gpuAdapter.js";
import { readBundle } from "./bundleData.js";
import { gradSlice } from "./slice.js";

/** What --shader prints for `--grad grad` or `--kernel kernel`. */
export async function shaderText(dir: string, req: { readonly grad?: string; readonly kernel?: string }): Promise<string> {
  const view = readBundle(dir);
  if (view.manifest.backend !== "gpu") {
    throw new UsageError(`--shader prints the shaders of a gpu bundle's kernels; ${dir} holds ${JSON.stringify(view.manifest.backend)} kernels (compile with --backend gpu)`);
  }
  let names: string[];
  if (req.kernel !== undefined) {
    if (!view.manifest.kernels.some((k) => k.name === req.kernel)) throw new UsageError(`no kernel named ${JSON.stringify(req.kernel)} in ${dir}`);
    names = [req.kernel];
  } else if (req.grad !== undefined) {
    names = gradSlice(view, req.grad).backward.map((k) => k.name);
  } else {
    throw new UsageError("--shader needs --grad NAME or --kernel NAME");
  }
  const trainer = await load(dir);
  try {
    const device = trainer.device as GpuDevice;
    const out = [`// ${req.kernel !== undefined ? `kernel ${req.kernel}` : `dLoss/d${req.grad}: ${names.length} backward kernels`}: the WGSL gpu.js generated for each function (adapter: ${await gpuAdapterName()})`];
    for (const name of names) {
      for (const s of await device.shaders(name)) out.push(`// ${name}: ${s.fn}\n${s.source.trimEnd()}`);
    }
    return out.join("\n\n");
  } finally {
    await trainer.close();
  }
}
