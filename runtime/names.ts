// Names from a user's graph are data: keys that may be "__proto__", text that
// may hold terminal escapes or start a spreadsheet formula. These helpers keep
// them data wherever they are stored, printed or logged.

/** An object's own property, or undefined (never one inherited from Object.prototype). */
export function ownValue<T>(obj: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** Sets an own, enumerable property, even one named "__proto__". */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A plain object with these entries as own properties, whatever their names. */
export function objectOf<T>(entries: Iterable<readonly [string, T]>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of entries) setOwn(out, k, v);
  return out;
}

const unicodeEscape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * Text safe to print on a terminal: control characters (ESC, CR, BEL, the C1
 * range, bidi overrides) are shown as \u escapes instead of acting.
 */
export function terminalText(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, unicodeEscape);
}

/**
 * Output for a terminal: as terminalText, but line feeds stay line feeds.
 * Everything gradc prints goes through it, so a name that reached a message
 * without terminalText still cannot move the cursor, recolour or rewrite a line.
 */
export function screenText(text: string): string {
  return text.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, unicodeEscape);
}

/** A name in double quotes, as JSON writes it, safe to print on a terminal (see terminalText). */
export function quoted(name: string): string {
  return terminalText(JSON.stringify(name));
}

/** A value read from a file, as JSON, safe to print on a terminal and cut to `max` characters. */
export function shown(value: unknown, max = 80): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return terminalText(text.length > max ? `${text.slice(0, max)}…` : text);
}

/**
 * One CSV cell from a name: quoted when it holds a comma, quote or line
 * break, and prefixed with ' when a spreadsheet would read it as a formula
 * (=, +, -, @, tab, CR). Numbers written by the trainer never go through here.
 */
export function csvCell(text: string): string {
  // a leading ' is doubled-up too, so fromCsvCell can tell which one it added
  const safe = /^'*[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The name a csvCell held, once the CSV parser has unquoted it. */
export function fromCsvCell(cell: string): string {
  return /^'+[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
}
