// The trainer's progress bar (cli-progress, on stderr), loaded lazily so a
// bundle copied away from node_modules still trains, only without a bar.

/** A running progress bar. `log` prints a line above it. */
export interface Progress {
  update(step: number, loss: number): void;
  log(line: string): void;
  stop(): void;
}

type CliProgress = typeof import("cli-progress");

/** Imports cli-progress if it can be found (it is a CommonJS package). */
async function importCliProgress(): Promise<CliProgress | undefined> {
  try {
    const mod = (await import("cli-progress")) as CliProgress & { default?: CliProgress };
    return mod.default ?? mod;
  } catch {
    return undefined;
  }
}

/**
 * Starts a bar over `total` steps showing the latest loss, or returns
 * undefined when `enabled` is false or cli-progress is not installed.
 */
export async function startProgress(total: number, enabled: boolean): Promise<Progress | undefined> {
  if (!enabled || total <= 0) return undefined;
  const cli = await importCliProgress();
  if (!cli) return undefined;
  const multi = new cli.MultiBar(
    {
      format: " {bar} {percentage}% | step {value}/{total} | loss {loss} | {duration_formatted} (eta {eta_formatted})",
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      etaBuffer: 50,
    },
    cli.Presets.shades_classic,
  );
  const bar = multi.create(total, 0, { loss: "-" });
  return {
    update: (step, loss) => bar.update(step, { loss: loss.toPrecision(4) }),
    log: (line) => multi.log(`${line}\n`),
    stop: () => multi.stop(),
  };
}
