#!/usr/bin/env node
// The gradc command: registers tsx so that TypeScript sources and model files load, then runs the CLI.
import { register } from "tsx/esm/api";

register();
const { run } = await import(new URL("../compiler/cli.ts", import.meta.url).href);
process.exitCode = await run(process.argv.slice(2));
