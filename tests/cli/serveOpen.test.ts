// `gradc serve --open` as a user runs it: the command starts the desktop's
// opener (xdg-open here) with the page's URL, the URL serves the training
// page, SIGINT stops the server; with no opener on PATH, or one that finds no
// browser, it says to open the URL by hand and keeps serving. The openers are
// stand-in scripts on PATH.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { exampleBundle, removeBundles } from "../compiler/inspect/bundles.js";
import { waitFor } from "../helpers.js";

const repo = path.resolve(import.meta.dirname, "../..");
const bin = path.join(repo, "bin", "gradc.mjs");
const scratch = mkdtempSync(path.join(tmpdir(), "gradc-open-"));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
  removeBundles();
});

/** `gradc serve DIR --port 0 --open` with PATH = `pathDirs` only; its output as it comes. */
function serveOpen(dir: string, pathDirs: readonly string[]): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  let out = "";
  let err = "";
  const child = spawn(process.execPath, [bin, "serve", dir, "--port", "0", "--open"], {
    cwd: repo,
    env: { ...process.env, PATH: pathDirs.join(path.delimiter) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** A folder holding an `xdg-open` script with body `body`. */
function opener(name: string, body: string): string {
  const dir = path.join(scratch, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "xdg-open"), `#!/bin/sh\n${body}\n`);
  chmodSync(path.join(dir, "xdg-open"), 0o755);
  return dir;
}

describe("gradc serve --open", () => {
  it("starts the desktop's opener with the page's URL, and the URL serves the training page", async () => {
    const { dir } = await exampleBundle("xor");
    const record = path.join(scratch, "opened.txt");
    const run = serveOpen(dir, [opener("recording", `PATH=/usr/bin:/bin; printf '%s\\n' "$@" > '${record}.tmp' && mv '${record}.tmp' '${record}'`)]);
    await waitFor(() => existsSync(record), 90_000, "the opener's start", () => run.out() + run.err());
    const opened = readFileSync(record, "utf8").trim().split("\n");
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(run.out()).toContain(`at ${opened[0]} `);
    const page = await fetch(opened[0]!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>gradc");
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(0);
    expect(run.err()).toBe("");
  }, 180_000);

  it.each([
    ["no opener on PATH", () => { const d = path.join(scratch, "empty"); mkdirSync(d, { recursive: true }); return d; }, /could not start xdg-open; open (\S+) yourself/],
    ["an opener that finds no browser", () => opener("failing", "echo 'no method available for opening' >&2; exit 3"), /xdg-open could not open a browser \(exit status 3\); open (\S+) yourself/],
  ])("with %s, says to open the URL by hand and keeps serving", async (_, pathDir, message) => {
    const { dir } = await exampleBundle("xor");
    const run = serveOpen(dir, [pathDir()]);
    await waitFor(() => run.err().includes("yourself"), 90_000, "the message about the opener", () => run.out() + run.err());
    const url = message.exec(run.err())?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(run.out()).toContain(`at ${url} `);
    expect((await fetch(url!)).status).toBe(200);
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  }, 180_000);
});
