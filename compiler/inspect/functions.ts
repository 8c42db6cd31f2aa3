// The top-level functions of an emitted module (step.ts, forward.ts), each
// with its JSDoc: how inspection tools pull one kernel's code out of a file.
import ts from "typescript";

/** The top-level function declarations of a source file, by name, each with its JSDoc. */
export function functionSources(source: string, file = "step.ts"): Map<string, string> {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out = new Map<string, string>();
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name) {
      // getStart with JSDoc included starts at the comment above the function
      out.set(st.name.text, source.slice(st.getStart(sf, true), st.end));
    }
  }
  return out;
}
