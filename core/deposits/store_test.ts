import { assertEquals, assertRejects } from "../../tests/assert.ts";
import { openDb } from "../db/db.ts";
import { MIGRATIONS } from "../db/migrations.ts";
import { insertStaticAddress } from "../db/static_addresses.ts";
import { LoopkitError } from "../errors.ts";
import { standInAddress, txidN } from "./_testing.ts";
import {
  depositHistory,
  getDeposit,
  insertDeposit,
  insertDeposits,
  listDepositHeads,
  listDeposits,
  transitionDeposit,
} from "./store.ts";

Deno.test("a version-1 database keeps its deposits when the later migrations add the sweep and spend columns (and the loop-in tables)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-store-" });
  try {
    const url = `file:${dir}/loopkit.db`;
    const v1 = await openDb({ url, network: "regtest", migrations: MIGRATIONS.slice(0, 1) });
    const a = standInAddress();
    await v1.write(async (tx) => {
      await insertStaticAddress(tx, a);
      await tx.execute({
        sql: `INSERT INTO deposits (deposit_id, tx_hash, out_index, amount, confirmation_height, pkscript,
                timeout_sweep_pk_script, state, wallet_visible) VALUES (?, ?, 0, 5000, 7, ?, ?, 'Deposited', 1)`,
        args: [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2), a.pkScript, new Uint8Array(34)],
      });
    });
    v1.close();
    const db = await openDb({ url, network: "regtest", migrations: MIGRATIONS });
    try {
      assertEquals(db.schemaVersion, MIGRATIONS[MIGRATIONS.length - 1].version);
      const [d] = await listDeposits(db.client);
      assertEquals([d.amountSat, d.confirmationHeight, d.expirySweepTx, d.expirySweepTxid, d.spentBy], [
        5000n,
        7,
        null,
        null,
        null,
      ]);
      assertEquals(await depositHistory(db.client, d.depositId), []);
      // A stored sweep without its txid is refused by the schema.
      await assertRejects(() => db.client.execute("UPDATE deposits SET expiry_sweep_tx = x'00'"));
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("transitionDeposit() writes one history row per real state change, none for a self-loop, and nothing when the row moved", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-store-" });
  const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  try {
    const a = standInAddress();
    const depositId = new Uint8Array(32).fill(9);
    const now = new Date("2026-01-02T03:04:05Z");
    await db.write(async (tx) => {
      await insertStaticAddress(tx, a);
      await insertDeposit(tx, {
        depositId,
        txid: txidN(5),
        vout: 1,
        amountSat: 1000n,
        confirmationHeight: 3,
        pkScript: a.pkScript,
        timeoutSweepPkScript: new Uint8Array(34),
      }, now);
    });
    const t = (
      from: Parameters<typeof transitionDeposit>[1]["from"],
      events: Parameters<typeof transitionDeposit>[1]["events"],
    ) => db.write((tx) => transitionDeposit(tx, { depositId, from, events }, now));
    assertEquals(await t("Deposited", ["OnRecover"]), "Deposited");
    assertEquals(await t("Deposited", ["OnLoopInInitiated", "OnLoopInInitiated"]), "LoopingIn");
    assertEquals(await t("Deposited", ["OnWithdrawInitiated"]), null); // it is LoopingIn now
    const rejected = await assertRejects(() => t("LoopingIn", ["OnWithdrawn"]), LoopkitError);
    assertEquals(rejected.code, "deposit_event_rejected");
    assertEquals((await depositHistory(db.client, depositId)).map((h) => h.state), [
      "Deposited",
      "LoopingIn",
    ]);
    assertEquals((await getDeposit(db.client, depositId))?.state, "LoopingIn");
    assertEquals(await getDeposit(db.client, new Uint8Array(32)), null);
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listDepositHeads() reads the same scan fields as listDeposits(), sweep txid and byte order included", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-store-" });
  const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  try {
    const a = standInAddress();
    const now = new Date();
    await db.write(async (tx) => {
      await insertStaticAddress(tx, a);
      for (let i = 1; i <= 3; i++) {
        await insertDeposit(tx, {
          depositId: crypto.getRandomValues(new Uint8Array(32)),
          txid: "f0" + txidN(i).slice(2),
          vout: 4_000_000_000 + i,
          amountSat: 2_100_000_000_000_000n - BigInt(i),
          confirmationHeight: i === 2 ? 0 : 800_000 + i,
          pkScript: a.pkScript,
          timeoutSweepPkScript: new Uint8Array(34).fill(i),
        }, now);
      }
    });
    const [first] = await listDeposits(db.client);
    await db.write((tx) =>
      transitionDeposit(tx, {
        depositId: first.depositId,
        from: "Deposited",
        events: ["OnExpiry", "OnExpiryPublished"],
        expirySweep: { txid: "ab" + txidN(77).slice(2), tx: new Uint8Array([1, 2, 3]) },
      }, now)
    );
    await db.client.execute("UPDATE deposits SET wallet_visible = 0 WHERE out_index = 4000000003");
    const full = await listDeposits(db.client);
    const heads = await listDepositHeads(db.client);
    assertEquals(
      heads,
      full.map((d) => ({
        depositId: d.depositId,
        txid: d.txid,
        vout: d.vout,
        amountSat: d.amountSat,
        state: d.state,
        confirmationHeight: d.confirmationHeight,
        walletVisible: d.walletVisible,
        pkScript: d.pkScript,
        expirySweepTxid: d.expirySweepTxid,
      })),
    );
    assertEquals(heads[0].expirySweepTxid, "ab" + txidN(77).slice(2));
    assertEquals(heads[0].txid, "f0" + txidN(1).slice(2));
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("insertDeposits() stores what insertDeposit() stores, row for row and history included, across its 100-row statements, skipping outpoints already stored", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-store-" });
  const one = await openDb({ url: `file:${dir}/one.db`, network: "regtest" });
  const many = await openDb({ url: `file:${dir}/many.db`, network: "regtest" });
  try {
    const a = standInAddress();
    const now = new Date("2026-03-04T05:06:07Z");
    const rows = Array.from({ length: 250 }, (_, i) => ({
      depositId: crypto.getRandomValues(new Uint8Array(32)),
      txid: txidN(i + 1),
      vout: i % 3,
      amountSat: 10_000n + BigInt(i),
      confirmationHeight: i % 7 ? 800_000 + i : 0,
      pkScript: a.pkScript,
      timeoutSweepPkScript: new Uint8Array(34).fill(i % 256),
    }));
    // Outpoints 5 and 170 are stored already (under other deposit ids): left alone, no second history row.
    const before = [5, 170].map((i) => ({
      ...rows[i],
      depositId: new Uint8Array(32).fill(i),
      amountSat: 1n,
    }));
    const expected = rows.map((r, i) => (i === 5 || i === 170 ? before[i === 5 ? 0 : 1] : r));
    await one.write(async (tx) => {
      await insertStaticAddress(tx, a);
      for (const r of before) await insertDeposit(tx, r, now);
      for (const r of rows) await insertDeposit(tx, r, now);
    });
    const created = await many.write(async (tx) => {
      await insertStaticAddress(tx, a);
      for (const r of before) await insertDeposit(tx, r, now);
      return await insertDeposits(tx, rows, now);
    });
    assertEquals(
      [...created].sort(),
      rows.filter((_, i) => i !== 5 && i !== 170).map((r) => `${r.txid}:${r.vout}`).sort(),
    );
    const stored = await listDeposits(many.client);
    assertEquals(stored, await listDeposits(one.client));
    assertEquals(
      new Set(stored.map((d) => `${d.txid}:${d.vout}:${d.amountSat}`)),
      new Set(expected.map((d) => `${d.txid}:${d.vout}:${d.amountSat}`)),
    );
    const history = async (db: typeof one) =>
      (await db.client.execute(
        "SELECT hex(deposit_id) AS id, update_state, update_timestamp FROM deposit_updates ORDER BY id",
      )).rows.map((r) => `${r.id} ${r.update_state} ${r.update_timestamp}`);
    assertEquals(await history(many), await history(one));
    assertEquals((await history(many)).length, 250);
    assertEquals((await many.write((tx) => insertDeposits(tx, rows, now))).size, 0);
  } finally {
    one.close();
    many.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listDeposits() (one packed cell per row) reads every column as getDeposit() does: sweeps, swap hashes, spends, NULLs; a blob column holding text is db_corrupt", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-store-" });
  const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  try {
    const a = standInAddress();
    const now = new Date("2026-05-06T07:08:09Z");
    const rows = Array.from({ length: 6 }, (_, i) => ({
      depositId: crypto.getRandomValues(new Uint8Array(32)),
      txid: "e1" + txidN(i + 1).slice(2),
      vout: i === 5 ? 4_294_967_295 : i,
      amountSat: i === 4 ? 2_100_000_000_000_000n : 5_000n + BigInt(i),
      confirmationHeight: i === 1 ? 0 : 900_000 + i,
      pkScript: a.pkScript,
      timeoutSweepPkScript: i === 2 ? new Uint8Array(0) : new Uint8Array(34).fill(i),
    }));
    await db.write(async (tx) => {
      await insertStaticAddress(tx, a);
      for (const r of rows) await insertDeposit(tx, r, now);
    });
    await db.write((tx) =>
      transitionDeposit(tx, {
        depositId: rows[0].depositId,
        from: "Deposited",
        events: ["OnExpiry", "OnExpiryPublished"],
        expirySweep: { txid: "ab" + txidN(77).slice(2), tx: new Uint8Array([1, 2, 3, 0xff]) },
      }, now)
    );
    await db.client.execute({
      sql: "UPDATE deposits SET swap_hash = ?, state = 'LoopingIn' WHERE deposit_id = ?",
      args: [new Uint8Array(32).fill(0xcd), rows[3].depositId],
    });
    await db.client.execute({
      sql: "UPDATE deposits SET spending_txid = ?, spending_height = 901234, state = 'SpentElsewhere', " +
        "wallet_visible = 0 WHERE deposit_id = ?",
      args: [new Uint8Array(32).fill(0x0e), rows[4].depositId],
    });
    const listed = await listDeposits(db.client);
    assertEquals(listed.length, rows.length);
    for (const d of listed) assertEquals(d, await getDeposit(db.client, d.depositId));
    assertEquals(listed.map((d) => [d.txid, d.vout]), rows.map((r) => [r.txid, r.vout]));
    assertEquals([listed[0].expirySweepTx, listed[3].swapHash, listed[4].spentBy], [
      new Uint8Array([1, 2, 3, 0xff]),
      "cd".repeat(32),
      { txid: "0e".repeat(32), height: 901234 },
    ]);
    // A blob column that holds text (a damaged or hand-edited file): refused, as getDeposit refuses it.
    await db.client.execute({
      sql: "UPDATE deposits SET timeout_sweep_pk_script = 'not bytes' WHERE deposit_id = ?",
      args: [rows[5].depositId],
    });
    const err = await assertRejects(() => listDeposits(db.client), LoopkitError);
    assertEquals(err.code, "db_corrupt");
    assertEquals(
      (await assertRejects(() => getDeposit(db.client, rows[5].depositId), LoopkitError)).code,
      "db_corrupt",
    );
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
});
