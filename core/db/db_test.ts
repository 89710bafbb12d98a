import { assertEquals, assertRejects } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import { openDb } from "./db.ts";
import { MIGRATIONS } from "./migrations.ts";
import { getLegacyStaticAddress, insertStaticAddress, listStaticAddresses } from "./static_addresses.ts";

async function withTempDb(fn: (url: string, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-db-" });
  try {
    await fn(`file:${dir}/loopkit.db`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const addr = (seed: number) => ({
  clientPubkey: new Uint8Array(33).fill(seed),
  serverPubkey: new Uint8Array(33).fill(seed + 1),
  expiry: 14400,
  clientKeyFamily: 42060,
  clientKeyIndex: 0,
  pkScript: new Uint8Array(34).fill(seed + 2),
  protocolVersion: 0,
  initiationHeight: 100,
});

Deno.test("openDb() migrates a new file to the latest version and is idempotent on reopen", async () => {
  await withTempDb(async (url) => {
    const db = await openDb({ url, network: "regtest" });
    assertEquals(db.schemaVersion, MIGRATIONS[MIGRATIONS.length - 1].version);
    db.close();
    const again = await openDb({ url, network: "regtest" });
    const rs = await again.client.execute("SELECT COUNT(*) AS n FROM schema_migrations");
    assertEquals(Number(rs.rows[0].n), MIGRATIONS.length);
    again.close();
  });
});

Deno.test("openDb() refuses a database of another network with exit 2", async () => {
  await withTempDb(async (url) => {
    (await openDb({ url, network: "regtest" })).close();
    const err = await assertRejects(() => openDb({ url, network: "mainnet" }), LoopkitError, "regtest");
    assertEquals(err.exitCode, 2);
    assertEquals(err.code, "db_network_mismatch");
  });
});

Deno.test("openDb() refuses a schema newer than it knows", async () => {
  await withTempDb(async (url) => {
    (await openDb({ url, network: "regtest" })).close();
    const err = await assertRejects(
      () => openDb({ url, network: "regtest", migrations: [] }),
      LoopkitError,
      "newer",
    );
    assertEquals(err.code, "db_too_new");
  });
});

Deno.test("a failing migration leaves the database at its previous version", async () => {
  await withTempDb(async (url) => {
    (await openDb({ url, network: "regtest" })).close();
    const broken = [...MIGRATIONS, {
      version: 99,
      name: "broken",
      statements: ["CREATE TABLE t_ok (x INTEGER)", "THIS IS NOT SQL"],
    }];
    await assertRejects(() => openDb({ url, network: "regtest", migrations: broken }), LoopkitError);
    const db = await openDb({ url, network: "regtest" });
    const t = await db.client.execute("SELECT name FROM sqlite_master WHERE name = 't_ok'");
    assertEquals(t.rows.length, 0);
    db.close();
  });
});

Deno.test("static addresses: legacy is the lowest id and pkScript is unique", async () => {
  await withTempDb(async (url) => {
    const db = await openDb({ url, network: "regtest" });
    try {
      assertEquals(await getLegacyStaticAddress(db), null);
      await db.write((tx) => insertStaticAddress(tx, addr(1)));
      await db.write((tx) => insertStaticAddress(tx, addr(5)));
      const legacy = await getLegacyStaticAddress(db);
      assertEquals(legacy?.clientPubkey, addr(1).clientPubkey);
      assertEquals(legacy?.pkScript, addr(1).pkScript);
      await assertRejects(() => db.write((tx) => insertStaticAddress(tx, addr(1))));
      assertEquals((await listStaticAddresses(db)).length, 2);
    } finally {
      db.close();
    }
  });
});

Deno.test("openDb() reports an unreachable libSQL server as a temporary failure (exit 75)", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const err = await assertRejects(
    () => openDb({ url: `http://127.0.0.1:${port}`, network: "regtest" }),
    LoopkitError,
  );
  assertEquals(err.code, "db_unreachable");
  assertEquals(err.exitCode, 75);
});

Deno.test("openDb() of an up-to-date database takes no write lock: it opens while another connection holds one", async () => {
  await withTempDb(async (url) => {
    (await openDb({ url, network: "regtest" })).close();
    const holder = await openDb({ url, network: "regtest" });
    const tx = await holder.client.transaction("write"); // BEGIN IMMEDIATE: the RESERVED lock
    try {
      await tx.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')");
      for (const readOnly of [false, true]) {
        const t0 = Date.now();
        const db = await openDb({ url, network: "regtest", busyTimeoutMs: 300, readOnly });
        assertEquals(db.schemaVersion, MIGRATIONS[MIGRATIONS.length - 1].version);
        assertEquals(await listStaticAddresses(db), []);
        db.close();
        assertEquals(Date.now() - t0 < 300, true, `readOnly ${readOnly} waited for the lock`);
      }
    } finally {
      await tx.rollback();
      tx.close();
      holder.close();
    }
  });
});

Deno.test("openDb({ readOnly }) writes nothing: an empty file stays empty (schema 0); an older schema is db_schema_outdated", async () => {
  await withTempDb(async (url, dir) => {
    await Deno.writeFile(`${dir}/loopkit.db`, new Uint8Array());
    const empty = await openDb({ url, network: "regtest", readOnly: true });
    assertEquals(empty.schemaVersion, 0);
    await assertRejects(() => empty.write(() => Promise.resolve()), Error, "read-only");
    empty.close();
    assertEquals((await Deno.stat(`${dir}/loopkit.db`)).size, 0);
    (await openDb({ url, network: "regtest", migrations: MIGRATIONS.slice(0, 1) })).close();
    const err = await assertRejects(() => openDb({ url, network: "regtest", readOnly: true }), LoopkitError);
    assertEquals(err.code, "db_schema_outdated");
    assertEquals(err.exitCode, 2);
    const v1 = await openDb({ url, network: "regtest", migrations: MIGRATIONS.slice(0, 1), readOnly: true });
    assertEquals(v1.schemaVersion, 1);
    v1.close();
    const upgraded = await openDb({ url, network: "regtest" });
    assertEquals(upgraded.schemaVersion, MIGRATIONS[MIGRATIONS.length - 1].version);
    upgraded.close();
  });
});
