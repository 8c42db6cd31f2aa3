// A thin binding to the system's MPI (Open MPI's libmpi) through koffi, for
// data-parallel training: rank and size of MPI_COMM_WORLD, in-place
// all-reduce of float arrays, broadcast, abort. Loaded only on request
// (`--mpi`): koffi and libmpi are optional, and their absence is an error
// that says what to install.
import { createRequire } from "node:module";
import { join } from "node:path";

/** The arrays the collectives move: float blocks of an arena, or small int/float64 scratch. */
export type CollectiveArray = Float32Array | Float64Array | Int32Array;

/**
 * The processes of one training job. Every call is collective: each rank
 * must make it, in the same order, with arrays of the same length.
 */
export interface Communicator {
  /** This process's index, 0 … size − 1. */
  readonly rank: number;
  readonly size: number;
  /** Replaces `data` with its elementwise sum over the ranks, on every rank. */
  allReduceSum(data: CollectiveArray): void;
  /** Replaces `data` with its elementwise maximum over the ranks, on every rank. */
  allReduceMax(data: CollectiveArray): void;
  /** Copies `root`'s `data` into every other rank's `data`. */
  broadcast(data: CollectiveArray, root: number): void;
  /** Ends every process of the job with exit status `code` (MPI_Abort). */
  abort(code: number): never;
  /** Ends MPI in this process (MPI_Finalize); the communicator is unusable afterwards. */
  finalize(): void;
}

/** The Debian/Ubuntu packages that provide Open MPI's launcher and library. */
export const MPI_PACKAGES = "openmpi-bin libopenmpi-dev";
/** The library loaded unless GRADC_MPI_LIBRARY names another (a path to Open MPI's libmpi.so). */
export const DEFAULT_MPI_LIBRARY = "libmpi.so.40";

const INSTALL_HINT = `install Open MPI (Debian/Ubuntu: apt-get install ${MPI_PACKAGES}) and launch with mpirun -np N`;

/** The koffi module: only what this file calls. */
interface Koffi {
  load(path: string): KoffiLibrary;
}
interface KoffiLibrary {
  func(name: string, result: string, args: readonly string[]): (...args: unknown[]) => number;
  symbol(name: string, type: string): unknown;
}

/** Finds koffi from this module's folder first, then from the working folder (for bundles outside the project). */
function requireKoffi(): Koffi {
  const bases = [import.meta.url, join(process.cwd(), "package.json")];
  for (const base of bases) {
    try {
      return createRequire(base)("koffi") as Koffi;
    } catch {
      // try the next base
    }
  }
  throw new Error(`--mpi needs the "koffi" package, an optional dependency of gradc (npm install koffi; looked from ${bases.join(" and ")}); also ${INSTALL_HINT}`);
}

// Open MPI's MPI_IN_PLACE: the address 1 as the send buffer
const MPI_IN_PLACE = 1;

/** Open MPI's predefined handles are the addresses of exported globals. */
const HANDLES = {
  world: "ompi_mpi_comm_world",
  float: "ompi_mpi_float",
  double: "ompi_mpi_double",
  int: "ompi_mpi_int",
  sum: "ompi_mpi_op_sum",
  max: "ompi_mpi_op_max",
} as const;

let world: Communicator | undefined;

/**
 * Initializes MPI (once per process) and returns MPI_COMM_WORLD. Throws an
 * error naming what to install when koffi or libmpi cannot be loaded.
 */
export function mpiWorld(library = process.env["GRADC_MPI_LIBRARY"] || DEFAULT_MPI_LIBRARY): Communicator {
  if (world) return world;
  const koffi = requireKoffi();
  let lib: KoffiLibrary;
  try {
    lib = koffi.load(library);
  } catch (e) {
    throw new Error(`--mpi: cannot load the MPI library ${library} (${(e as Error).message.split("\n")[0]}); ${INSTALL_HINT}`);
  }
  const handle = (name: string): unknown => {
    try {
      return lib.symbol(name, "char");
    } catch {
      throw new Error(`--mpi: ${library} does not export ${name}; gradc's binding needs Open MPI (not MPICH or Intel MPI): ${INSTALL_HINT}`);
    }
  };
  const h = Object.fromEntries(Object.entries(HANDLES).map(([k, name]) => [k, handle(name)])) as Record<keyof typeof HANDLES, unknown>;
  const fn = (name: string, args: readonly string[]) => lib.func(name, "int", args);
  const init = fn("MPI_Init", ["void *", "void *"]);
  const commRank = fn("MPI_Comm_rank", ["void *", "_Out_ int *"]);
  const commSize = fn("MPI_Comm_size", ["void *", "_Out_ int *"]);
  const allReduce = fn("MPI_Allreduce", ["intptr_t", "void *", "int", "void *", "void *", "void *"]);
  const bcast = fn("MPI_Bcast", ["void *", "int", "void *", "int", "void *"]);
  const mpiAbort = fn("MPI_Abort", ["void *", "int"]);
  const mpiFinalize = fn("MPI_Finalize", []);

  const check = (what: string, code: number): void => {
    // the default error handler aborts the job first; this is for handlers that return
    if (code !== 0) throw new Error(`MPI: ${what} failed with error code ${code}`);
  };
  check("MPI_Init", init(null, null));
  const out = [0];
  check("MPI_Comm_rank", commRank(h.world, out));
  const rank = out[0]!;
  check("MPI_Comm_size", commSize(h.world, out));
  const size = out[0]!;
  const typeOf = (a: CollectiveArray): unknown => (a instanceof Float32Array ? h.float : a instanceof Float64Array ? h.double : h.int);
  // MPI counts are C ints: larger arrays go in pieces
  const CHUNK = 1 << 30;
  const pieces = (a: CollectiveArray, f: (part: CollectiveArray) => void): void => {
    for (let at = 0; at < a.length; at += CHUNK) f(a.subarray(at, Math.min(a.length, at + CHUNK)));
  };
  const reduce = (op: unknown, name: string) => (data: CollectiveArray) =>
    pieces(data, (part) => check(`MPI_Allreduce (${name}, ${part.length} elements)`, allReduce(MPI_IN_PLACE, part, part.length, typeOf(part), op, h.world)));
  let finalized = false;
  world = {
    rank,
    size,
    allReduceSum: reduce(h.sum, "sum"),
    allReduceMax: reduce(h.max, "max"),
    broadcast: (data, root) => pieces(data, (part) => check(`MPI_Bcast (${part.length} elements from rank ${root})`, bcast(part, part.length, typeOf(part), root, h.world))),
    abort: (code) => {
      mpiAbort(h.world, code);
      // MPI_Abort does not return on Open MPI; this is for one that does
      process.exit(code);
    },
    finalize: () => {
      if (finalized) return;
      finalized = true;
      check("MPI_Finalize", mpiFinalize());
    },
  };
  return world;
}
