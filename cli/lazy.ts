/**
 * `import()` that Deno does not pre-load. When a module loads, Deno fetches and parses the whole graph of
 * every `import("…")` written with a literal specifier in it (so they are ready), which for loopkit's
 * command files means gRPC, protobuf and libSQL before `--help` prints anything (~200 ms). A specifier
 * passed through this function is resolved only when the call runs.
 *
 * `deno compile` cannot see these imports: the compile task `--include`s their targets (deno.json).
 *
 * @module
 */

/**
 * Imports `specifier` now, and not before.
 * @param specifier an absolute URL (`new URL("./x.ts", import.meta.url)`) or a bare specifier of deno.json's
 *   `imports` (e.g. `"commander"`)
 * @returns the module namespace (typed by the caller: `lazyImport<typeof import("./x.ts")>(…)`)
 */
export function lazyImport<T>(specifier: string | URL): Promise<T> {
  const s = String(specifier);
  return import(s);
}
