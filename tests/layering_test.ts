/**
 * The dependency rules of the layout (README "Layout"; the loop-in issue's "the house"): every file depends
 * only downward. Read from the import statements of the source files themselves.
 */
import { assertEquals } from "./assert.ts";

const ROOT = new URL("../", import.meta.url);

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await tsFiles(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

/** Relative import targets of `file` (static and dynamic), resolved to repository paths. */
async function importsOf(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(new URL(file, ROOT));
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"/gms),
    ...text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
  ].map((m) => m[1]);
  return specs.filter((s) => s.startsWith(".")).map((s) =>
    new URL(s, new URL(file, ROOT)).pathname.slice(ROOT.pathname.length)
  );
}

async function violations(dir: string, bad: (target: string, file: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (const f of await tsFiles(dir)) {
    for (const t of await importsOf(f)) if (bad(t, f)) out.push(`${f} → ${t}`);
  }
  return out;
}

Deno.test("core imports from lnd/ only the interface (types.ts) and its error kinds (lnd_error.ts), never the gRPC client", async () => {
  const allowed = new Set(["lnd/types.ts", "lnd/lnd_error.ts"]);
  assertEquals(await violations("core", (t) => t.startsWith("lnd/") && !allowed.has(t)), []);
});

Deno.test("lnd/lnd_error.ts depends on core/errors.ts only (core may import it without gRPC)", async () => {
  assertEquals(await importsOf("lnd/lnd_error.ts"), ["core/errors.ts"]);
});

Deno.test("cli: no file imports main.ts, and no subcommand file imports another subcommand file", async () => {
  const commands = new Set<string>();
  for (const f of await tsFiles("cli")) {
    if (/export function register[A-Z]\w*\(/.test(await Deno.readTextFile(new URL(f, ROOT)))) commands.add(f);
  }
  assertEquals(commands.has("cli/address.ts") && commands.has("cli/backup.ts"), true);
  assertEquals(
    // A test beside its rule (e.g. cli/fast_path_test.ts checks the fast path against commander's program) may
    // import what it tests; the rule is about the shipped files.
    await violations(
      "cli",
      (t, f) => !f.endsWith("_test.ts") && (t === "cli/main.ts" || (f !== "cli/main.ts" && commands.has(t))),
    ),
    [],
  );
});

Deno.test("core/l402 does not import core/backup (the shared file helper is in core/fs, below both)", async () => {
  assertEquals(await violations("core/l402", (t) => t.startsWith("core/backup/")), []);
});
