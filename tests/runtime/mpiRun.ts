// Launching test jobs under mpirun: bounded by a timeout (the whole job is
// killed when it passes), with the ranks' pids found under mpirun.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Whether Open MPI's mpirun is on the PATH. */
export function hasMpirun(): boolean {
  return spawnSync("mpirun", ["--version"], { stdio: "ignore" }).status === 0;
}

/** How a job ended: exit code (null when killed), stdout and stderr together, and whether the timeout ended it. */
export interface MpiRun {
  readonly code: number | null;
  readonly output: string;
  readonly timedOut: boolean;
}

/**
 * Runs `node ARGS` on `np` ranks of one machine (`--oversubscribe`, and
 * `--allow-run-as-root` only as root). A waiting rank yields its core, so
 * ranks on a busy machine do not take each other's. The promise carries mpirun's pid.
 */
export function mpirun(np: number, args: readonly string[], options: { timeoutMs?: number } = {}): Promise<MpiRun> & { pid: number } {
  const root = process.getuid?.() === 0 ? ["--allow-run-as-root"] : [];
  const child = spawn("mpirun", [...root, "--oversubscribe", "--mca", "mpi_yield_when_idle", "1", "-np", String(np), process.execPath, ...args], { cwd: process.cwd(), detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // mpirun ends its ranks on SIGTERM; the group kill is for a launcher that does not
    child.kill("SIGTERM");
    setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }, 5000).unref();
  }, options.timeoutMs ?? 100_000);
  const done = new Promise<MpiRun>((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
  return Object.assign(done, { pid: child.pid! });
}

/** The pids of the ranks mpirun `pid` started on this machine, by rank (read from /proc). */
export function rankPids(pid: number): Map<number, number> {
  const ranks = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // field 4 of stat is the parent pid; the command name in field 2 may hold spaces
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== pid) continue;
      const env = readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      const rank = env.find((e) => e.startsWith("OMPI_COMM_WORLD_RANK="));
      if (rank) ranks.set(Number(rank.split("=")[1]), Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return ranks;
}

