// A small command-line flag parser shared by the generated trainer and the
// gradc CLI: `--name value`, `--name=value`, boolean switches, short aliases.

/** How a flag's value is read. */
export type FlagKind = "int" | "number" | "string" | "boolean";

/** One flag: its kind and a line of help. */
export interface FlagDef {
  readonly kind: FlagKind;
  readonly help: string;
  /** Shown after the name in help, e.g. `N` or `DIR`. */
  readonly value?: string;
  /** A one-letter alias, e.g. `o` for `-o`. */
  readonly short?: string;
}

export type FlagDefs = Readonly<Record<string, FlagDef>>;
export type FlagValues = Record<string, string | number | boolean | undefined>;

/** A usage error: the CLI prints its message alone, without a stack. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses `argv` against `defs`; everything not a flag is positional. `command` names the tool in errors. */
export function parseFlags(argv: readonly string[], defs: FlagDefs, command: string): { flags: FlagValues; positional: string[]; positionalAt: number[] } {
  const flags: FlagValues = {};
  const positional: string[] = [];
  /** Where each positional argument stands in argv. */
  const positionalAt: number[] = [];
  const byShort = new Map(Object.entries(defs).flatMap(([name, d]) => (d.short ? [[d.short, name] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      positionalAt.push(...argv.slice(i + 1).map((_, k) => i + 1 + k));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      positional.push(arg);
      positionalAt.push(i);
      continue;
    }
    const eq = arg.indexOf("=");
    const raw = arg.startsWith("--") ? arg.slice(2, eq < 0 ? undefined : eq) : arg.slice(1, eq < 0 ? undefined : eq);
    const name = arg.startsWith("--") ? raw : byShort.get(raw);
    const def = name === undefined ? undefined : defs[name];
    if (name === undefined || !def) {
      const known = Object.keys(defs).map((n) => `--${n}`).join(", ");
      throw new UsageError(`unknown option ${arg.slice(0, eq < 0 ? undefined : eq)} for ${command} (options: ${known || "none"})`);
    }
    if (def.kind === "boolean") {
      if (eq >= 0) throw new UsageError(`option --${name} of ${command} takes no value`);
      flags[name] = true;
      continue;
    }
    let text: string | undefined;
    if (eq >= 0) text = arg.slice(eq + 1);
    else if (i + 1 < argv.length) text = argv[++i];
    if (text === undefined) throw new UsageError(`option --${name} of ${command} needs a value${def.value ? ` (${def.value})` : ""}`);
    flags[name] = convert(name, def.kind, text, command);
  }
  return { flags, positional, positionalAt };
}

function convert(name: string, kind: Exclude<FlagKind, "boolean">, text: string, command: string): string | number {
  if (kind === "string") return text;
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || (kind === "int" && !(Number.isInteger(v) && v >= 0))) {
    throw new UsageError(`option --${name} of ${command} needs ${kind === "int" ? "a whole number ≥ 0" : "a number"} (got "${text}")`);
  }
  return v;
}

/** The options part of a help text: one aligned line per flag. */
export function flagsHelp(defs: FlagDefs): string {
  const rows = Object.entries(defs).map(([name, d]) => {
    const left = `${d.short ? `-${d.short}, ` : ""}--${name}${d.value ? ` ${d.value}` : ""}`;
    return [left, d.help] as const;
  });
  const width = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, h]) => `  ${l.padEnd(width)}  ${h}`).join("\n");
}

/** Reads a typed flag value (undefined when absent). */
export function flagNumber(flags: FlagValues, name: string): number | undefined {
  const v = flags[name];
  return typeof v === "number" ? v : undefined;
}

/** Reads a string flag value (undefined when absent). */
export function flagString(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === "string" ? v : undefined;
}
