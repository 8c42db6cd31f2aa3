// Headless Chromium for the browser tests: Debian's chromium through
// playwright-core, with a fresh profile. Fails, never skips, when chromium is
// missing.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";

export const CHROMIUM = "/usr/bin/chromium";

/** A started browser and how to end it (closes it and removes its profile). */
export interface Chromium {
  readonly browser: BrowserContext;
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh profile and a 1280 × 900 viewport; `flags` go after the usual ones. */
export async function launchChromium(flags: readonly string[] = []): Promise<Chromium> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium); .ci/run does`);
  const profile = mkdtempSync(path.join(tmpdir(), "gradc-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ["--no-sandbox", "--disable-quic", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", ...flags],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Chromium for one test file: started before its tests (a cold start sized
 * for a loaded machine), closed after them, then `after` runs. Returns the
 * browser, which the tests open pages in.
 */
export function chromiumForFile(after?: () => Promise<void> | void): () => BrowserContext {
  let started: Chromium | undefined;
  beforeAll(async () => {
    started = await launchChromium();
  }, 180_000);
  afterAll(async () => {
    await started?.close();
    await after?.();
  });
  return () => {
    if (!started) throw new Error("chromium did not start (see the beforeAll error)");
    return started.browser;
  };
}

/** Records every request a page makes and every complaint it logs (console errors and warnings, uncaught errors), from now on. */
export function watchPage(page: Page): { requests: string[]; problems: string[] } {
  const requests: string[] = [];
  const problems: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(e.message));
  return { requests, problems };
}
