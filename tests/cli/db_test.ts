/**
 * The CLI and the database file: read-only commands take no lock (item 8), `--db` URLs (item 9), nothing
 * created before the checks pass (item 10).
 */
import { assertEquals, assertStringIncludes } from "../assert.ts";
import { openDb } from "../../core/db/db.ts";
import { runCli } from "./_harness.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-clidb-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("deposits list --offline and address show do not wait behind another process's read transaction", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/regtest`);
    const url = `file:${dir}/regtest/loopkit.db`;
    const holder = await openDb({ url, network: "regtest" });
    const tx = await holder.client.transaction("read");
    try {
      await tx.execute("SELECT COUNT(*) FROM deposits");
      const base = ["--network", "regtest", "--loopdir", dir];
      const t0 = Date.now();
      const list = await runCli([...base, "--json", "deposits", "list", "--offline"]);
      assertEquals(list.code, 1, list.stderr); // the empty state (no address), not 75 after 10 s
      assertStringIncludes(list.stderr, "no_static_address");
      const show = await runCli([...base, "--json", "address", "show"]);
      assertEquals(show.code, 1, show.stderr);
      assertStringIncludes(show.stderr, "no_static_address");
      // Before: each waited the 10 s busy timeout for a migration's write lock and exited 75.
      assertEquals(Date.now() - t0 < 8_000, true, `took ${Date.now() - t0} ms`);
    } finally {
      await tx.rollback();
      tx.close();
      holder.close();
    }
  });
});

Deno.test("--db file:…?mode=ro is refused (exit 2 naming --db) by reads and writes, and no file named after the query appears", async () => {
  await withDir(async (dir) => {
    const url = `file:${dir}/loopkit.db`;
    (await openDb({ url, network: "regtest" })).close();
    for (const args of [["deposits", "list", "--offline"], ["address", "show"], ["deposits", "sync"]]) {
      const r = await runCli(["--network", "regtest", "--loopdir", dir, "--db", `${url}?mode=ro`, ...args]);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertStringIncludes(r.stderr, "--db");
      assertStringIncludes(r.stderr, "?mode=ro");
    }
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, ["loopkit.db"]);
  });
});

Deno.test("deposits sync without a static address is a no-op before lnd: exit 0, nothing created, no lnd contacted", async () => {
  await withDir(async (dir) => {
    // lnd's files do not exist: contacting lnd would fail with exit 2.
    const lnd = [
      "--rpcserver",
      "127.0.0.1:1",
      "--tlscertpath",
      `${dir}/none.cert`,
      "--macaroonpath",
      `${dir}/none`,
    ];
    const text = await runCli(["--network", "regtest", "--loopdir", dir, ...lnd, "deposits", "sync"]);
    assertEquals(text.code, 0, text.stderr);
    assertStringIncludes(text.stdout, "no static address");
    const json = await runCli([
      "--network",
      "testnet",
      "--loopdir",
      dir,
      ...lnd,
      "--json",
      "deposits",
      "sync",
    ]);
    assertEquals(json.code, 0, json.stderr);
    assertEquals(json.json?.reason, "no_static_address");
    assertEquals(json.json?.tip_height, null);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, []); // before: <loopdir>/regtest/loopkit.db and <loopdir>/testnet/loopkit.db
  });
});

Deno.test("deposits sync with an empty database (no address) also stays away from lnd and writes nothing", async () => {
  await withDir(async (dir) => {
    const url = `file:${dir}/loopkit.db`;
    (await openDb({ url, network: "regtest" })).close();
    const before = await Deno.readFile(`${dir}/loopkit.db`);
    const r = await runCli([
      "--network",
      "regtest",
      "--db",
      url,
      "--tlscertpath",
      `${dir}/none`,
      "deposits",
      "sync",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await Deno.readFile(`${dir}/loopkit.db`), before);
  });
});

Deno.test("--db file:<a directory> is exit 2 saying it is a directory (before: ConnectionFailed(…: 14))", async () => {
  await withDir(async (dir) => {
    for (const args of [["deposits", "list", "--offline"], ["deposits", "sync"], ["address", "show"]]) {
      const r = await runCli(["--network", "regtest", "--db", `file:${dir}`, "--json", ...args]);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertStringIncludes(r.stderr, "is a directory, not a database file");
      assertStringIncludes(r.stderr, "--db");
    }
  });
});
