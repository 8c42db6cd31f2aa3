// Finds the user's file:line that created a node, from the JS stack.
import { fileURLToPath } from "node:url";
import path from "node:path";
import type { SourceLoc } from "./types.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** gradc's own sources: frames inside these are not the user's. */
const INTERNAL = [path.resolve(here, ".."), path.resolve(here, "../../index.ts"), path.resolve(here, "../../runtime")];

const FRAME = /\(?((?:file:\/\/)?[^()\s]+?):(\d+):(\d+)\)?\s*$/;

/** The first stack frame outside gradc's compiler: the user's model line. */
export function callerLocation(): SourceLoc | undefined {
  // layers call layers: the user's frame can sit deeper than V8's default 10
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  let stack: string | undefined;
  try {
    stack = new Error().stack;
  } finally {
    Error.stackTraceLimit = limit;
  }
  if (!stack) return undefined;
  for (const line of stack.split("\n").slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    let file = m[1]!;
    if (file.startsWith("file://")) file = fileURLToPath(file);
    if (file.startsWith("node:") || file.includes("/node_modules/") || !path.isAbsolute(file)) continue;
    if (INTERNAL.some((p) => file === p || file.startsWith(p + path.sep))) continue;
    return { file: path.relative(process.cwd(), file) || file, line: Number(m[2]), column: Number(m[3]) };
  }
  return undefined;
}
