import { assert, assertEquals } from "../../tests/assert.ts";
import { withTempDir } from "../../tests/fs.ts";
import { type Db, openDb } from "../db/db.ts";
import { insertStaticAddress } from "../db/static_addresses.ts";
import { insertDeposit, listDeposits } from "../deposits/store.ts";
import { parseOutpoint } from "../staticaddr/outpoint.ts";
import { isFinalState, LoopInSwapStore } from "./store.ts";
import { syncExitCode, syncLoopIns } from "./sync.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hex } from "@scure/base";
import { RawTx } from "@scure/btc-signer";
import { standInPrivateKey } from "../deposits/_testing.ts";
import { txidOfRaw } from "./htlc_tx.ts";
import { importSwapRecord } from "./swap_record_restore.ts";
import type { LoopInSwapRecord } from "./swap_record.ts";
import { pub, SAMPLE_ADDRESS, sampleSwapRecord } from "./_swap_record_testing.ts";
import { FakeSyncLnd, hexOf } from "./_sync_testing.ts";

const NOW = new Date("2026-12-02T16:00:00.000Z");

/** A fresh database holding the sample's static address (as `recover` restores it). */
async function withDb(fn: (db: Db) => Promise<void>, withAddress = true): Promise<void> {
  await withTempDir(async (dir) => {
    const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
    try {
      if (withAddress) {
        await db.write((tx) =>
          insertStaticAddress(tx, {
            clientPubkey: pub(1),
            serverPubkey: pub(2),
            expiry: 14_400,
            clientKeyFamily: 42060,
            clientKeyIndex: 0,
            pkScript: SAMPLE_ADDRESS.pkScript,
            protocolVersion: 0,
            initiationHeight: 700,
          })
        );
      }
      await fn(db);
    } finally {
      db.close();
    }
  });
}

const importIt = (db: Db, r: LoopInSwapRecord, path = "/backups/rec.enc") =>
  db.write((tx) => importSwapRecord(tx, r, path, NOW));

Deno.test("importSwapRecord: the swap armed in UnlockDeposits with every HTLC parameter; missing deposits created LoopingIn", async () => {
  await withDb(async (db) => {
    const r = sampleSwapRecord();
    const got = await importIt(db, r);
    assertEquals(got.action, "imported");
    assertEquals([got.depositsCreated, got.depositsLinked], [2, 0]);
    const s = (await new LoopInSwapStore(db).getSwap(r.swapHash))!;
    assertEquals(s.state, "UnlockDeposits");
    assertEquals(s.armedAt, NOW);
    assertEquals(s.owner, null);
    assertEquals(s.preimage, r.preimage);
    assertEquals(s.htlcKey.keyLocator, { family: r.htlcKey.family, index: r.htlcKey.index });
    assertEquals(s.htlcKey.rawKeyBytes, r.htlcKey.pubkey);
    assertEquals(s.htlcServerPubkey, r.htlcServerPubkey);
    assertEquals(s.htlcExpiry, r.htlcExpiry);
    assertEquals(s.htlcTxids, r.htlcTxids);
    assertEquals(s.htlcTxs, r.htlcTxs);
    assertEquals(s.feeRates, r.feeRates);
    assertEquals(s.htlcTimeoutSweepPkScript, r.timeoutSweepPkScript);
    assertEquals(s.swapInvoice, r.swapInvoice);
    assertEquals([s.swapAmountSat, s.totalDepositSat, s.changeSat], [
      r.swapAmountSat,
      r.totalDepositSat,
      r.changeSat,
    ]);
    assertEquals(s.deposits.map((d) => [d.outpoint, d.amountSat, d.state, d.released]), [
      [r.deposits[0].outpoint, 300_000n, "LoopingIn", false],
      [r.deposits[1].outpoint, 200_000n, "LoopingIn", false],
    ]);
    const rows = await listDeposits(db.client);
    assertEquals(rows.map((d) => d.swapHash), [hexOf(r.swapHash), hexOf(r.swapHash)]);
    assertEquals(rows.map((d) => d.confirmationHeight).sort(), [0, 800]);
    const history = await new LoopInSwapStore(db).history(r.swapHash);
    assert(history.at(-1)!.reason.includes("/backups/rec.enc"), history.at(-1)!.reason);
  });
});

Deno.test("importSwapRecord is idempotent: a second import finds the swap and writes nothing", async () => {
  await withDb(async (db) => {
    const r = sampleSwapRecord();
    await importIt(db, r);
    const count = async () =>
      (await db.client.execute(
        "SELECT (SELECT count(*) FROM loopin_swaps) + (SELECT count(*) FROM deposits) * 100 + " +
          "(SELECT count(*) FROM loopin_swap_updates) * 10000 AS n",
      )).rows[0].n;
    const before = await count();
    assertEquals((await importIt(db, r)).action, "existing");
    assertEquals(await count(), before);
  });
});

Deno.test("importSwapRecord links stored deposits (Deposited → LoopingIn) and creates only the missing one", async () => {
  await withDb(async (db) => {
    const r = sampleSwapRecord();
    const o = parseOutpoint(r.deposits[1].outpoint);
    await db.write((tx) =>
      insertDeposit(tx, {
        depositId: new Uint8Array(32).fill(5),
        txid: o.txid,
        vout: o.vout,
        amountSat: 200_000n,
        confirmationHeight: 810,
        pkScript: SAMPLE_ADDRESS.pkScript,
        timeoutSweepPkScript: new Uint8Array(34).fill(9),
      }, NOW)
    );
    const got = await importIt(db, r);
    assertEquals([got.action, got.depositsCreated, got.depositsLinked], ["imported", 1, 1]);
    const s = (await new LoopInSwapStore(db).getSwap(r.swapHash))!;
    assertEquals(s.deposits[1].depositId, new Uint8Array(32).fill(5));
    assertEquals(s.deposits[1].confirmationHeight, 810, "the stored row is kept, not overwritten");
    assertEquals(s.deposits.map((d) => d.state), ["LoopingIn", "LoopingIn"]);
    assertEquals((await listDeposits(db.client)).length, 2);
  });
});

Deno.test("importSwapRecord skips (writes nothing) when the address is unknown", async () => {
  await withDb(async (db) => {
    const r = sampleSwapRecord();
    const got = await importIt(db, r);
    assertEquals(got.action, "skipped");
    assert(got.reason!.includes("static address"), got.reason);
    assertEquals((await db.client.execute("SELECT count(*) AS n FROM loopin_swaps")).rows[0].n, 0n);
  }, false);
});

Deno.test("importSwapRecord: a deposit another live swap holds is linked as released and left to that swap (both watched)", async () => {
  await withDb(async (db) => {
    const a = sampleSwapRecord({ seed: 1 });
    await importIt(db, a);
    // Another record over the same deposits (same seed ⇒ same funding txids), another preimage.
    const b = sampleSwapRecord({ seed: 1, preimage: new Uint8Array(32).fill(3) });
    const got = await importIt(db, b);
    assertEquals([got.action, got.depositsLinked, got.depositsHeldElsewhere], ["imported", 2, 2]);
    const store = new LoopInSwapStore(db);
    const sa = (await store.getSwap(a.swapHash))!;
    const sb = (await store.getSwap(b.swapHash))!;
    assertEquals(sa.deposits.map((d) => [d.state, d.released]), [["LoopingIn", false], ["LoopingIn", false]]);
    assertEquals(sb.deposits.map((d) => [d.state, d.released]), [["LoopingIn", true], ["LoopingIn", true]]);
    assertEquals(sb.state, "UnlockDeposits");
    assertEquals((await store.listSwaps({ watchedOnly: true })).length, 2);
    assertEquals((await listDeposits(db.client)).map((d) => d.swapHash), [
      hexOf(a.swapHash),
      hexOf(a.swapHash),
    ]);
  });
});

/** One `loopin sync` over the imported swap. */
async function syncOnce(db: Db, lnd: FakeSyncLnd) {
  return await syncLoopIns({
    db,
    network: "regtest",
    lnd,
    server: () => Promise.reject(new Error("swap server unreachable (test)")),
    now: () => NOW,
    ownerAlive: () => false,
  }, { listenMs: 0 });
}

Deno.test("after the import, loopin sync finds a confirmed HTLC variant by txid first: SweepHtlcTimeout, nothing released", async () => {
  await withDb(async (db) => {
    const r = sampleSwapRecord();
    await importIt(db, r);
    const lnd = new FakeSyncLnd();
    lnd.tip = 1_000; // below htlc_expiry 1 900: no sweep yet
    lnd.invoices.set(hexOf(r.swapHash), "OPEN");
    lnd.confirmations.set(r.htlcTxids.high, 990);
    await syncOnce(db, lnd);
    const s = (await new LoopInSwapStore(db).getSwap(r.swapHash))!;
    assertEquals(s.state, "SweepHtlcTimeout");
    assertEquals(s.confirmedHtlc?.variant, "high");
    assertEquals(s.confirmedHtlc?.txid, r.htlcTxids.high);
    assertEquals(s.deposits.map((d) => d.state), ["SweepHtlcTimeout", "SweepHtlcTimeout"]);
    assertEquals(lnd.invoices.get(hexOf(r.swapHash)), "CANCELED");
  });
});

Deno.test("after the import, loopin sync with no HTLC on chain cancels the invoice and releases the deposits (still watched)", async () => {
  await withDb(async (db) => {
    const r = sampleSwapRecord();
    await importIt(db, r);
    const lnd = new FakeSyncLnd();
    lnd.tip = 1_000;
    lnd.invoices.set(hexOf(r.swapHash), "OPEN");
    // The release needs a definite chain fact: lnd's wallet lists every deposit unspent.
    lnd.utxos.push(...r.deposits.map((d) => ({
      ...parseOutpoint(d.outpoint),
      amountSat: d.valueSat,
      pkScript: d.pkScript,
      confirmations: 10,
      address: "",
    })));
    await syncOnce(db, lnd);
    const s = (await new LoopInSwapStore(db).getSwap(r.swapHash))!;
    assertEquals(s.state, "Failed");
    assert(s.armedAt !== null && s.watchEndedAt === null, "armed and watched: a later HTLC is still swept");
    assertEquals(s.deposits.map((d) => d.state), ["Deposited", "Deposited"]);
    assert(lnd.calls.includes("registerConfirmation"), "the HTLC variants were looked for first");
    assert(lnd.calls.indexOf("registerConfirmation") < lnd.calls.indexOf("cancelInvoice"));
  });
});

Deno.test("after the import, a SETTLED invoice makes the swap Succeeded (deposits LoopedIn)", async () => {
  await withDb(async (db) => {
    const r = sampleSwapRecord();
    await importIt(db, r);
    const lnd = new FakeSyncLnd();
    lnd.tip = 1_000;
    lnd.invoices.set(hexOf(r.swapHash), "SETTLED");
    await syncOnce(db, lnd);
    const s = (await new LoopInSwapStore(db).getSwap(r.swapHash))!;
    assertEquals(s.state, "Succeeded");
    assertEquals(s.deposits.map((d) => d.state), ["LoopedIn", "LoopedIn"]);
  });
});

// Was a bug: two recovery records over the same deposits (an older swap that failed and released them, then a newer one
// that took them; the server holds HTLC signatures of both) are imported in file-name (= swap hash) order, and the
// second is skipped ("held by loop-in …"). The skipped swap is never watched: when the server publishes its HTLC,
// the imported swap sees its deposits spent by a transaction that is none of its own variants, releases them and
// ends its watch, and nobody sweeps the skipped swap's HTLC output after its CLTV (the swap amount stays there).
Deno.test("recover: two records over the same deposits are both imported and watched; the HTLC of either is swept (the second is not skipped)", async () => {
  await withDb(async (db) => {
    const older = sampleSwapRecord({ seed: 1 });
    const newer = sampleSwapRecord({ seed: 1, preimage: new Uint8Array(32).fill(3) });
    assert(older.htlcTxids.standard !== newer.htlcTxids.standard);
    // recover's order: by file name, i.e. by swap hash.
    const records = [older, newer].sort((a, b) => hexOf(a.swapHash) < hexOf(b.swapHash) ? -1 : 1);
    const actions = [];
    for (const r of records) actions.push((await importIt(db, r, `/d/${hexOf(r.swapHash)}.enc`)).action);
    const second = records[1];
    // The server publishes the HTLC of the record imported second; it confirms at 990.
    const lnd = new FakeSyncLnd();
    lnd.tip = 1_000;
    lnd.invoices.set(hexOf(older.swapHash), "CANCELED");
    lnd.invoices.set(hexOf(newer.swapHash), "OPEN");
    lnd.confirmations.set(second.htlcTxids.standard, 990);
    for (const [i, d] of second.deposits.entries()) {
      lnd.spends.set(d.outpoint, {
        spendingTxid: second.htlcTxids.standard,
        spendingHeight: 990,
        spendingInputIndex: i,
      });
    }
    await syncOnce(db, lnd);
    const s = await new LoopInSwapStore(db).getSwap(second.swapHash);
    assertEquals([actions, s?.state, s?.confirmedHtlc?.txid], [
      ["imported", "imported"],
      "SweepHtlcTimeout",
      second.htlcTxids.standard,
    ]);
  });
});

// BUG: a restored swap that had in fact succeeded — the server paid the invoice and took the HTLC through the
// success path (the preimage is in its witness) — meets a new lnd that no longer knows the invoice (NOT_FOUND).
// sync reads NOT_FOUND as "canceled", goes to SweepHtlcTimeout, signs a timeout sweep of the spent HTLC output,
// accepts lnd's "output already spent" as a publish (sync.ts publishSweep), and from then on every run stops in
// earlierSweepConfirmed with loopin_htlc_spent_elsewhere (exit 1): the swap never reaches a final state and the
// operator's alarm fires on every run. No funds are lost (the server paid); the record of what happened is wrong.
Deno.test({
  name:
    "after the import, an HTLC the server already took through the success path ends the swap instead of failing every run",
  ignore: true,
}, async () => {
  await withDb(async (db) => {
    const key = {
      keyLocator: { family: 42060, index: 5 },
      rawKeyBytes: secp256k1.getPublicKey(standInPrivateKey(42060, 5), true),
    };
    const r = sampleSwapRecord({ htlcKey: key });
    await importIt(db, r);
    const lnd = new FakeSyncLnd(); // a new lnd: the invoice is unknown
    lnd.tip = 1_950; // past htlc_expiry 1 900
    lnd.confirmations.set(r.htlcTxids.standard, 990);
    const htlcValue = RawTx.decode(r.htlcTxs.standard).outputs[0].amount;
    const success = RawTx.encode({
      version: 2,
      segwitFlag: true,
      inputs: [{
        txid: hex.decode(r.htlcTxids.standard),
        index: 0,
        finalScriptSig: new Uint8Array(),
        sequence: 0,
      }],
      outputs: [{
        amount: htlcValue - 1_000n,
        script: Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(0x44)),
      }],
      witnesses: [[new Uint8Array(72).fill(0x30), r.preimage, new Uint8Array(96)]],
      lockTime: 0,
    });
    const successTxid = txidOfRaw(success);
    lnd.spends.set(`${r.htlcTxids.standard}:0`, {
      spendingTxid: successTxid,
      spendingHeight: 1_000,
      spendingInputIndex: 0,
    });
    lnd.confirmations.set(successTxid, 1_000);
    lnd.rawTxs.set(successTxid, success);
    let res;
    for (const tip of [1_950, 1_951, 1_960]) {
      lnd.tip = tip;
      res = await syncOnce(db, lnd);
    }
    const s = (await new LoopInSwapStore(db).getSwap(r.swapHash))!;
    assertEquals([res!.swaps[0]?.error?.code, syncExitCode(res!) === 1, isFinalState(s.state)], [
      undefined,
      false,
      true,
    ]);
  });
});
