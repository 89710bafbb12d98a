/**
 * `loopkit status` acceptance on a real regtest network (btcd + lnd alice and bob, the local swap server):
 * all well ⇒ exit 0; the backup file removed ⇒ exit 1 naming it; a deposit near expiry ⇒ exit 1 with the
 * blocks left; lnd stopped ⇒ exit 75 (could not tell), and `--offline` still reports the database.
 *
 * Ignored without the regtest binaries unless CI=true (then missing binaries fail).
 */
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { regtestTest } from "./suite.ts";

/** CSV expiry the local swap server hands out. */
const CSV = 40;
/** `--warn-expiry-blocks` of the test: deposits within 10 blocks of expiry need attention. */
const WARN = "10";

type Json = Record<string, unknown>;

regtestTest("regtest: loopkit status exit codes (0, 1 backup gone, 1 near expiry, 75 lnd stopped)", {
  expiry: CSV,
}, async ({ net, cli, newAddress, tempDir }, t) => {
  const created = await newAddress();
  assertEquals(created.code, 0, created.stderr);
  const address = created.json?.address as string;
  const backupPath = (created.json?.backup as Json)?.path as string;
  assert(backupPath, created.stdout);
  const offsite = await tempDir("loopkit-offsite-");
  const written = await cli("backup", "write", "--copy-to", offsite);
  assertEquals(written.code, 0, written.stderr);
  const txid = await net.sendToAddress(address, 250_000n);
  await net.mine(1);
  const height = (await net.blockHeightOfTx(txid))!;
  assertEquals((await cli("deposits", "sync")).code, 0);
  const status = (...args: string[]) => cli("status", "--warn-expiry-blocks", WARN, ...args);

  await t.step("all well: exit 0, every concern OK, JSON with the figures", async () => {
    const r = await status("--copy-to", offsite);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    for (const line of r.stdout.trim().split("\n")) assert(line.startsWith("OK"), line);
    const j = await status("--json", "--copy-to", offsite);
    assertEquals(j.code, 0, j.stdout + j.stderr);
    const s = j.json!;
    assertEquals([s.status, s.exit_code], ["ok", 0]);
    assertEquals((s.lnd as Json).block_height, await net.bestHeight());
    assertEquals((s.static_address as Json).address, address);
    assertEquals((s.backup as Json).status, "ok");
    assertEquals((s.backup as Json).path, backupPath);
    assertEquals((s.copies as Json[]).map((c) => c.status), ["ok"]);
    const nearest = (s.deposits as Json).nearest_expiry as Json;
    assertEquals(nearest.blocks_until_expiry, String(height + CSV - (await net.bestHeight())));
    assertEquals(nearest.expiry_height, String(height + CSV));
  });

  await t.step("the backup file removed: exit 1 naming it", async () => {
    const aside = `${backupPath}.aside`;
    await Deno.rename(backupPath, aside);
    try {
      const r = await status();
      assertEquals(r.code, 1, r.stdout + r.stderr);
      const line = r.stdout.split("\n").find((l) => l.includes("backup:"))!;
      assert(line.startsWith("ATTENTION"), r.stdout);
      assertStringIncludes(line, backupPath);
      assertEquals((await status("--json")).json?.backup, {
        status: "missing",
        path: backupPath,
        token_id: ((await status("--json")).json?.backup as Json).token_id,
        token_created_at: ((await status("--json")).json?.backup as Json).token_created_at,
        verify: null,
        message: null,
      });
    } finally {
      await Deno.rename(aside, backupPath);
    }
    assertEquals((await status()).code, 0);
  });

  await t.step("a deposit near expiry: exit 1 with the blocks left", async () => {
    await net.mine(height + CSV - 6 - (await net.bestHeight())); // 6 blocks left
    const r = await status();
    assertEquals(r.code, 1, r.stdout + r.stderr);
    const line = r.stdout.split("\n").find((l) => l.includes("expiry:"))!;
    assert(line.startsWith("ATTENTION"), r.stdout);
    assertStringIncludes(line, "expires in 6 blocks");
    assertStringIncludes(line, `${txid}:`);
    const j = (await status("--json")).json!;
    assertEquals(((j.deposits as Json).nearest_expiry as Json).blocks_until_expiry, "6");
    assertEquals((j.deposits as Json).near_expiry, 1);
    // A smaller threshold: all well again.
    assertEquals((await cli("status", "--warn-expiry-blocks", "5")).code, 0);
  });

  await t.step("lnd stopped: exit 75; --offline reports the database, exit 0", async () => {
    await net.alice.stop();
    const r = await cli("status", "--warn-expiry-blocks", "5");
    assertEquals(r.code, 75, r.stdout + r.stderr);
    const line = r.stdout.split("\n").find((l) => l.includes("lnd:"))!;
    assert(line.startsWith("UNKNOWN"), r.stdout);
    const j = await cli("--json", "status", "--warn-expiry-blocks", "5");
    assertEquals([j.code, j.json?.status, (j.json?.lnd as Json).reachable], [75, "unknown", false]);
    const off = await cli("--json", "status", "--offline");
    assertEquals(off.code, 0, off.stdout + off.stderr);
    assertEquals((off.json?.deposits as Json).total, 1);
    assertEquals((off.json?.backup as Json).status, "not_verified");
  });
});
