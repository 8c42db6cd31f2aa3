// The trainer's progress bar (cli-progress, on stderr), loaded lazily so a
// bundle copied away from node_modules still trains, only without a bar.

/** A running progress bar. `log` prints a line (to stdout) above it. */
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
 *
 * Training runs synchronously, so the bar cannot redraw on a timer: it
 * redraws from `update` (throttled by cli-progress) and after each `log`.
 */
export async function startProgress(total: number, enabled: boolean, print: (line: string) => void): Promise<Progress | undefined> {
  if (!enabled || total <= 0) return undefined;
  const cli = await importCliProgress();
  if (!cli) return undefined;
  const stream = process.stderr;
  const bar = new cli.SingleBar(
    {
      format: " {bar} {percentage}% | step {value}/{total} | loss {loss} | {duration_formatted} (eta {eta_formatted})",
      stream,
      hideCursor: true,
      synchronousUpdate: true,
      etaBuffer: 50,
    },
    cli.Presets.shades_classic,
  );
  bar.start(total, 0, { loss: "-" });
  return {
    update: (step, loss) => bar.update(step, { loss: loss.toPrecision(4) }),
    log: (line) => {
      // clear the bar's line, print the log line, and draw the bar again below it;
      // the bar restores the cursor it saved when it stops, so save the new line's position
      stream.write("\r\x1b[2K");
      print(line);
      stream.write("\x1b7");
      bar.render();
    },
    stop: () => bar.stop(),
  };
}
