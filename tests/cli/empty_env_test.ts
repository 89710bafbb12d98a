/**
 * Empty state, environment variables and help format (issue item 16).
 */
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { runCli } from "./_harness.ts";
import { buildProgram } from "../../cli/main.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-empty-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("empty state: with no database, deposits list, deposits summary and address show all exit 1 no_static_address", async () => {
  await withDir(async (dir) => {
    for (const args of [["deposits", "list", "--offline"], ["deposits", "summary"], ["address", "show"]]) {
      const r = await runCli(["--network", "regtest", "--loopdir", dir, "--json", ...args]);
      assertEquals(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assertEquals(JSON.parse(r.stderr).error.code, "no_static_address", args.join(" "));
    }
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e.name);
    assertEquals(entries, []);
  });
});

Deno.test("LOOPKIT_JSON and LOOPKIT_DEBUG take boolean words only: banana is exit 2 naming the variable", async () => {
  await withDir(async (dir) => {
    const base = ["--network", "regtest", "--loopdir", dir, "deposits", "list", "--offline"];
    for (const name of ["LOOPKIT_JSON", "LOOPKIT_DEBUG"]) {
      const r = await runCli(base, { [name]: "banana" });
      assertEquals(r.code, 2, `${name}: ${r.stderr}`);
      assertStringIncludes(r.stderr, name);
      assertStringIncludes(r.stderr, "banana");
    }
    const on = await runCli(base, { LOOPKIT_JSON: "ON" });
    assertEquals(JSON.parse(on.stderr).error.code, "no_static_address");
    const off = await runCli(base, { LOOPKIT_JSON: "off" });
    assertStringIncludes(off.stderr, "loopkit: No static address");
  });
});

Deno.test("LOOPKIT_COPY_TO works as backup write's --copy-to (':'-separated), and the flag wins over it", async () => {
  await withDir(async (dir) => {
    const base = ["--network", "regtest", "--loopdir", dir, "backup", "write"];
    const env = await runCli(base, { LOOPKIT_COPY_TO: `${dir}:${dir}/missing` });
    assertEquals(env.code, 2, env.stderr); // the copy directories are checked first; before, the variable was ignored
    assertStringIncludes(env.stderr, `--copy-to "${dir}/missing"`);
    const flag = await runCli([...base, "--copy-to", dir], { LOOPKIT_COPY_TO: `${dir}/missing` });
    assertEquals(flag.code, 0, flag.stderr); // no token: a no-op
  });
});

Deno.test("help: every default reads '(default: X)', never '(default X)', quoted strings or []", async () => {
  const program = await buildProgram({ load: "all" });
  const texts: string[] = [];
  const walk = (c: typeof program) => {
    texts.push(c.helpInformation());
    for (const s of c.commands) walk(s);
  };
  walk(program);
  const all = texts.join("\n").replace(/\n\s+/g, " ");
  assert(!/\(default [^:]/.test(all), all.match(/.{40}\(default [^:].{20}/)?.[0]);
  assert(!/\(default: "/.test(all), all.match(/.{40}\(default: ".{20}/)?.[0]);
  assert(!/\(default: \[\]\)/.test(all));
  assertStringIncludes(all, "(default: 20)");
  assertStringIncludes(all, "(default: mainnet)");
});
