// Lint for the TypeScript sources (part of `npm test`), kept to what tsc does
// not check: no unused code, no floating promises, type-only imports marked
// as such. The type-aware rules read tsconfig.json through the project service.
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    // installed and generated code, bundles and results written by runs and benchmarks
    ignores: ["node_modules/**", "build/**", "coverage/**", ".bench-out/**", "bench/results/**", "**/*.js", "**/*.mjs", "**/*.cjs"],
  },
  {
    files: ["**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: {
      reportUnusedDisableDirectives: "error",
    },
    rules: {
      // unused code: variables, imports, params after the last used one, private members, labels, expressions
      "@typescript-eslint/no-unused-vars": ["error", { args: "after-used", argsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true }],
      "no-unused-private-class-members": "error",
      "no-unused-labels": "error",
      "@typescript-eslint/no-unused-expressions": "error",
      // a promise is awaited, returned, or explicitly dropped with `void`
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      // `import type` for what is only a type: it is erased, and says so
      "@typescript-eslint/consistent-type-imports": ["error", { prefer: "type-imports", fixStyle: "separate-type-imports", disallowTypeAnnotations: false }],
      "@typescript-eslint/no-import-type-side-effects": "error",
    },
  },
);
