/**
 * The commander-free path (cli/fast_path.ts) against commander itself: on generated command lines (plain
 * ones, and ones with help flags, `--`, unknown or misplaced flags, missing or dash-led values, extra words),
 * whatever `parseFast` accepts, commander accepts with the same `optsWithGlobals()`; and the plain forms the
 * fast path exists for are accepted (so the comparison is not vacuous).
 */
import type { Command, CommanderError } from "commander";
import { assert, assertEquals } from "../tests/assert.ts";
import { buildProgram } from "./main.ts";
import { FAST_COMMANDS } from "./deposits.ts";
import { addFlags, type FlagSpec, parseFast } from "./fast_path.ts";

type Outcome = { ok: true; opts: Record<string, unknown> } | { ok: false; code: string };

/** Commander's verdict on `argv`: the leaf's `optsWithGlobals()` if it would run `path`, else the error code. */
async function commanderParse(argv: string[], path: readonly string[]): Promise<Outcome> {
  const program = await buildProgram({ load: path[0] });
  const quiet = (c: Command) => {
    c.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} });
    c.commands.forEach(quiet);
  };
  quiet(program);
  let leaf: Command = program;
  for (const w of path) leaf = leaf.commands.find((c) => c.name() === w)!;
  let opts: Record<string, unknown> | undefined;
  leaf.action((...params: unknown[]) => {
    opts = (params[params.length - 1] as Command).optsWithGlobals();
  });
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    return { ok: false, code: (err as CommanderError).code ?? String(err) };
  }
  return opts ? { ok: true, opts } : { ok: false, code: "another command ran" };
}

/** Deterministic xorshift, so a failure repeats. */
function prng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const GLOBAL_PIECES = [
  ["--network", "regtest"],
  ["--network=signet"],
  ["--loopdir", "/tmp/x"],
  ["--loopdir=/tmp/y z"],
  ["--db", "file:/tmp/a.db"],
  ["--rpcserver", "localhost:10009"],
  ["--lnddir", "/l"],
  ["--tlscertpath", "/l/tls.cert"],
  ["--macaroonpath=/m"],
  ["--json"],
];
const LIST_PIECES = [
  ["--all"],
  ["--offline"],
  ["--state", "Deposited"],
  ["--state=Replaced"],
  ["--outpoint", `${"ab".repeat(32)}:0`],
  ["--outpoint=x:1"],
];
const ODD_PIECES = [
  ["--"],
  ["-h"],
  ["--help"],
  ["-V"],
  ["--version"],
  ["help"],
  ["extra"],
  ["--bogus"],
  ["--json=true"],
  ["--offline=yes"],
  ["--state"],
  ["--state", "--all"],
  ["--outpoint", "--offline"],
  ["--network"],
  ["--network", "-x"],
  ["--state="],
  [""],
  ["-"],
  ["-ab"],
  ["--no-json"],
  ["deposits"],
  ["list"],
  ["summary"],
  ["--offline"], // a command's flag before its word, when inserted there
  ["--outpoint", "a:0"],
];

/** A command line for `path`: global pieces anywhere, own pieces after the words, now and then an odd one. */
function generate(rand: () => number, path: readonly string[], own: string[][], odd: boolean): string[] {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const argv: string[] = [];
  const some = (xs: string[][], max: number) => {
    for (let n = Math.floor(rand() * (max + 1)); n > 0; n--) argv.push(...pick(xs));
  };
  for (const w of path) {
    some(GLOBAL_PIECES, 2);
    argv.push(w);
  }
  some([...GLOBAL_PIECES, ...own, ...own], 4);
  if (odd) {
    const at = Math.floor(rand() * (argv.length + 1));
    argv.splice(at, 0, ...pick(ODD_PIECES));
  }
  return argv;
}

Deno.test("parseFast accepts only what commander accepts, with the same options (generated command lines)", async () => {
  const rand = prng(0x5eed);
  let accepted = 0;
  let declined = 0;
  for (const f of FAST_COMMANDS) {
    const own = f.path[1] === "list" ? LIST_PIECES : [];
    for (let i = 0; i < 300; i++) {
      const argv = generate(rand, f.path, own, i % 2 === 1);
      const fast = parseFast(argv, f.path, f.options);
      if (fast === undefined) {
        declined++;
        continue;
      }
      accepted++;
      assertEquals(await commanderParse(argv, f.path), { ok: true, opts: fast }, JSON.stringify(argv));
    }
  }
  assert(accepted > 200 && declined > 100, `accepted ${accepted}, declined ${declined}`);
});

Deno.test("parseFast takes the plain command lines and leaves help, errors and oddities to commander", async () => {
  const [list, summary] = FAST_COMMANDS;
  const op = `${"cd".repeat(32)}:1`;
  const plain: [string[], Record<string, unknown>][] = [
    [["deposits", "list"], { outpoint: [] }],
    [["--network", "regtest", "deposits", "list", "--offline"], {
      network: "regtest",
      offline: true,
      outpoint: [],
    }],
    [["deposits", "--json", "list", "--outpoint", op, "--outpoint=x:2", "--loopdir=/d"], {
      json: true,
      outpoint: [op, "x:2"],
      loopdir: "/d",
    }],
    [["deposits", "list", "--state", "Expired", "--network", "a", "--network=b"], {
      state: "Expired",
      network: "b",
      outpoint: [],
    }],
  ];
  for (const [argv, opts] of plain) {
    assertEquals(parseFast(argv, list.path, list.options), opts, argv.join(" "));
    assertEquals(await commanderParse(argv, list.path), { ok: true, opts }, argv.join(" "));
  }
  assertEquals(parseFast(["deposits", "summary", "--json"], summary.path, summary.options), { json: true });
  for (
    const argv of [
      ["deposits", "list", "--help"],
      ["deposits", "list", "-h"],
      ["help", "deposits", "list"],
      ["deposits", "list", "extra"],
      ["deposits", "list", "--", "--all"],
      ["deposits", "list", "--bogus"],
      ["deposits", "list", "--state"],
      ["deposits", "list", "--state", "--all"],
      ["deposits", "list", "--offline=1"],
      ["deposits", "--offline", "list"],
      ["--offline", "deposits", "list"],
      ["deposits", "list", "--network"],
      ["deposits"],
      ["deposits", "summary", "--all"],
      ["-V", "deposits", "list"],
    ]
  ) {
    assertEquals(parseFast(argv, list.path, list.options), undefined, argv.join(" "));
  }
});

Deno.test("a command with a flag the fast path cannot read (short alias, optional value, negation) always goes to commander", () => {
  for (const flags of ["-a, --all", "--level [n]", "--no-color", "--files <f...>"]) {
    const spec: FlagSpec[] = [{ flags, description: "x" }];
    assertEquals(parseFast(["c"], ["c"], spec), undefined, flags);
  }
  assertEquals(
    parseFast(["c"], ["c"], [{ flags: "--json", description: "x" }]),
    undefined,
    "a global's name",
  );
  assertEquals(
    parseFast(["c", "--sweep-conf-target", "6"], ["c"], [{
      flags: "--sweep-conf-target <n>",
      description: "",
    }]),
    {
      sweepConfTarget: "6",
    },
  );
});

Deno.test("addFlags registers the flags in order, a repeatable one collecting into []", async () => {
  const { Command } = await import("commander");
  const cmd = addFlags(new Command("x").exitOverride(), [
    { flags: "--a", description: "A" },
    { flags: "--b <v>", description: "B", repeatable: true },
  ]);
  assertEquals(cmd.options.map((o) => [o.flags, o.description]), [["--a", "A"], ["--b <v>", "B"]]);
  cmd.parse(["--b", "1", "--b", "2"], { from: "user" });
  assertEquals(cmd.opts(), { b: ["1", "2"] });
});
