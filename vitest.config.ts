import { defineConfig } from "vitest/config";

// Timeouts are sized for a loaded 2-core machine (another CPU-heavy process
// beside the suite): hooks that compile and train get the same room as tests.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    pool: "forks",
  },
});
