/**
 * Fast start (issue "Running it for years", item 3): `loopkit --help` loads no npm package at all (no
 * commander, gRPC, protobuf or libSQL), an offline command loads no gRPC, and the lazily loaded command files
 * stay in step with the help table and with `deno compile`. Times are in bench/startup.ts, not here.
 */
import { assert, assertEquals } from "../assert.ts";
import { CLI_RUN_ARGS, runCli, V8_FLAGS } from "./_harness.ts";
import { COMMANDS } from "../../cli/commands.ts";
import { rootHelp } from "../../cli/help.ts";
import { buildProgram } from "../../cli/main.ts";

const ROOT = new URL("../../", import.meta.url);

interface InfoDep {
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDep[];
}

/**
 * What Deno loads at start-up for `file`: the closure over static code imports (type-only and dynamic
 * imports excluded), as repository paths plus `npm:`/`node:` specifiers, from `deno info --json`.
 */
async function startupClosure(file: string): Promise<string[]> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL(file, ROOT).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(o.success, new TextDecoder().decode(o.stderr));
  const g = JSON.parse(new TextDecoder().decode(o.stdout)) as { roots: string[]; modules: InfoModule[] };
  const mods = new Map(g.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [...g.roots];
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of mods.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) stack.push(d.code.specifier);
    }
  }
  return [...seen].map((s) => s.startsWith(ROOT.href) ? s.slice(ROOT.href.length) : s).sort();
}

const GRPC = (s: string) =>
  /^npm:\/?@grpc\/|^npm:\/?protobufjs|^npm:\/?lightning|^lnd\/(rpc|grpc_client|connect)\.ts$/.test(s);
const LIBSQL = (s: string) => /^npm:\/?@?libsql/.test(s);

Deno.test("cli/main.ts loads no npm package and no node: built-in at start-up", async () => {
  const c = await startupClosure("cli/main.ts");
  assertEquals(c.filter((s) => s.startsWith("npm:") || s.startsWith("node:")), []);
});

Deno.test("no command file, nor the context, loads gRPC or libSQL at start-up (lnd and the database are imported on first use)", async () => {
  for (const f of ["cli/context.ts", ...COMMANDS.map((c) => `cli/${c.name}.ts`)]) {
    const c = await startupClosure(f);
    assertEquals(c.filter(GRPC), [], f);
    assertEquals(c.filter(LIBSQL), [], f);
  }
});

Deno.test("loopkit --help runs with npm disabled (nothing but loopkit's own help code loads) and prints the root help", async () => {
  const o = await new Deno.Command(Deno.execPath(), {
    args: [...CLI_RUN_ARGS.slice(0, 2), "--no-npm", ...CLI_RUN_ARGS.slice(2), "--help"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(o.code, 0, new TextDecoder().decode(o.stderr));
  assertEquals(new TextDecoder().decode(o.stdout), rootHelp(COMMANDS));
});

Deno.test("commander's root help is the same text, and every command's summary is its registered description", async () => {
  const program = await buildProgram({ load: "all" });
  assertEquals(program.helpInformation(), rootHelp(COMMANDS));
  for (const c of COMMANDS) {
    const cmd = program.commands.find((x) => x.name() === c.name);
    assertEquals(cmd?.description(), c.summary, c.name);
  }
  const help = await runCli(["deposits", "--help"]);
  assertEquals(help.code, 0);
  assert(help.stdout.startsWith("Usage: loopkit deposits"), help.stdout);
});

Deno.test("every lazily imported module is --include'd by deno.json's compile task", async () => {
  const task: string = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks.compile;
  const included = new Set([...task.matchAll(/--include (\S+)/g)].map((m) => m[1]));
  const missing: string[] = [];
  for await (const e of Deno.readDir(new URL("cli/", ROOT))) {
    if (!e.name.endsWith(".ts")) continue;
    const text = (await Deno.readTextFile(new URL(`cli/${e.name}`, ROOT)))
      .split("\n").filter((l) => !/^\s*(\*|\/\/)/.test(l)).join("\n"); // code, not its docs
    const targets = /lazyImport<[^(]*>\(\s*new URL\("([^"]+)", import\.meta\.url\)|fromFile\("([^"]+)"/g;
    for (const m of text.matchAll(targets)) {
      const path = new URL(m[1] ?? m[2], new URL(`cli/${e.name}`, ROOT)).href.slice(ROOT.href.length);
      if (!included.has(path)) missing.push(`${path} (cli/${e.name})`);
    }
  }
  assertEquals(missing, []);
});

Deno.test("deposits list --offline and deposits summary on an empty data directory load neither commander nor libSQL (cli/fast_path.ts); an unusual command line still goes to commander", async () => {
  // An import map in which importing commander or the libSQL driver throws: a command that loads either fails.
  const imports = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).imports;
  const dir = await Deno.makeTempDir({ prefix: "loopkit-fastpath-" });
  try {
    const map = `${dir}/import_map.json`;
    await Deno.writeTextFile(
      map,
      JSON.stringify({
        imports: {
          ...imports,
          "commander": 'data:text/javascript,throw new Error("commander loaded")',
          "@libsql/client": 'data:text/javascript,throw new Error("libSQL loaded")',
        },
      }),
    );
    const run = async (...args: string[]) => {
      const o = await new Deno.Command(Deno.execPath(), {
        args: [...CLI_RUN_ARGS.slice(0, 2), "--import-map", map, ...CLI_RUN_ARGS.slice(2), ...args],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: o.code, stderr: new TextDecoder().decode(o.stderr) };
    };
    const base = ["--network", "regtest", "--loopdir", `${dir}/empty`];
    for (const cmd of [["deposits", "list", "--offline"], ["--json", "deposits", "summary"]]) {
      const r = await run(...base, ...cmd);
      assertEquals(r.code, 1, r.stderr); // the empty state: no static address (README "Usage")
      assert(r.stderr.includes("No static address"), r.stderr);
      assert(!r.stderr.includes("loaded"), r.stderr);
    }
    const odd = await run(...base, "deposits", "list", "--offline", "--bogus");
    assert(odd.stderr.includes("commander loaded"), odd.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the CLI tests and benches run loopkit with the V8 flags it ships with: deno task loopkit and deno task compile (embedded in the binary)", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).tasks;
  for (const [name, prefix] of [["loopkit", "deno run "], ["compile", "deno compile "]]) {
    const words: string[] = tasks[name].split(/\s+/);
    assertEquals(words.slice(0, 3).join(" "), `${prefix}${V8_FLAGS}`, name);
  }
  assertEquals(CLI_RUN_ARGS.slice(0, 3), ["run", "--quiet", V8_FLAGS]);
  // Deno refuses a flag V8 does not know: the flags run.
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", V8_FLAGS, "console.log(1)"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(
    [o.code, new TextDecoder().decode(o.stdout).trim()],
    [0, "1"],
    new TextDecoder().decode(o.stderr),
  );
});
