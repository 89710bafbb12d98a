/**
 * CLI usage contract without lnd: exit codes of the README's table, `--json` errors, and read-only commands
 * that leave the file system alone.
 */
import { assertEquals, assertStringIncludes } from "../assert.ts";
import { runCli } from "./_harness.ts";
import { makeContext } from "../../cli/context.ts";

Deno.test("no arguments prints help on stderr and exits 2", async () => {
  const r = await runCli([]);
  assertEquals(r.code, 2);
  assertEquals(r.stdout, "");
  assertStringIncludes(r.stderr, "Usage: loopkit");
});

Deno.test("--json usage errors are one JSON object on stderr with exit 2", async () => {
  for (const args of [["--json", "--bogus"], ["--json", "deposits", "list", "extra"], ["--json", "nope"]]) {
    const r = await runCli(args);
    assertEquals(r.code, 2, args.join(" "));
    assertEquals(r.stdout, "");
    const e = JSON.parse(r.stderr);
    assertEquals(e.error.code, "usage");
    assertEquals(e.error.exit_code, 2);
  }
});

Deno.test("an unknown --network and a bad --outpoint are exit 2 naming the flag", async () => {
  const net = await runCli(["--network", "bitcoin", "deposits", "list"]);
  assertEquals(net.code, 2);
  assertStringIncludes(net.stderr, "--network");
  const op = await runCli([
    "--network",
    "regtest",
    "--loopdir",
    "/nonexistent",
    "deposits",
    "list",
    "--outpoint",
    "x",
  ]);
  assertEquals(op.code, 2);
  assertStringIncludes(op.stderr, "--outpoint");
});

Deno.test("read-only commands do not create a data directory or database", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-usage-" });
  try {
    const base = ["--network", "regtest", "--loopdir", `${dir}/typo`];
    assertEquals((await runCli([...base, "deposits", "list", "--offline"])).code, 1);
    assertEquals((await runCli([...base, "address", "show"])).code, 1);
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e.name);
    assertEquals(entries, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a --loopdir that is a file is exit 2 naming it", async () => {
  const file = await Deno.makeTempFile({ prefix: "loopkit-usage-" });
  try {
    const r = await runCli(["--network", "regtest", "--loopdir", file, "--json", "deposits", "sync"]);
    assertEquals(r.code, 2, r.stderr);
    assertStringIncludes(r.stderr, file);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("a new database file is private (0600)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-usage-" });
  try {
    // The commands that create the database do so after lnd's checks; the context creates it the same way.
    const ctx = makeContext({ network: "regtest", loopdir: dir });
    await ctx.db();
    await ctx.close();
    assertEquals((await Deno.stat(`${dir}/regtest/loopkit.db`)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(`${dir}/regtest`)).mode! & 0o777, 0o700);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
