import { RawTx } from "@scure/btc-signer";
import { assert, assertEquals } from "../../tests/assert.ts";
import { ExitCode, LoopkitError, tempFailure } from "../errors.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import { type Db, openDb } from "../db/db.ts";
import { txidOf } from "./sweep.ts";
import type { Utxo } from "../../lnd/types.ts";
import { standInAddress, tempDepositsDb, txidN, WalletStandIn } from "./_testing.ts";
import { depositHistory, insertDeposit, listDeposits, transitionDeposit } from "./store.ts";
import { FILTER_CHECK_KEY, FILTER_RECHECK_BLOCKS, syncDeposits } from "./sync.ts";

const txid = txidN;
const OUR = standInAddress().pkScript;
const OTHER = Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(0x99));

/**
 * A database with one static address and a wallet stand-in. Unless `filterChecked` is false, the
 * imported-account filter counts as checked at the stand-in's height, so tests of the filtered path see
 * no daily full-wallet check.
 */
async function setup(opts: { csvExpiry?: number; filterChecked?: boolean } = {}) {
  const t = await tempDepositsDb(opts);
  const lnd = new WalletStandIn();
  if (opts.filterChecked !== false) await setFilterCheck(t.db, `ok:${lnd.height}`);
  return { ...t, lnd, [Symbol.asyncDispose]: t[Symbol.asyncDispose] };
}

async function setFilterCheck(db: Db, value: string) {
  await db.client.execute({
    sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    args: [FILTER_CHECK_KEY, value],
  });
}

async function filterCheck(db: Db): Promise<string | null> {
  const rs = await db.client.execute({
    sql: "SELECT value FROM meta WHERE key = ?",
    args: [FILTER_CHECK_KEY],
  });
  return rs.rows.length ? String(rs.rows[0].value) : null;
}

const utxo = (n: number, confirmations: number, pkScript = OUR): Utxo => ({
  txid: txid(n),
  vout: 1,
  amountSat: 50_000n,
  pkScript,
  confirmations,
  address: "",
});

Deno.test("syncDeposits() stores a 0-conf deposit, backfills its height, and a re-run changes nothing", async () => {
  await using t = await setup();
  t.lnd.utxos = [utxo(1, 0)];
  const first = await syncDeposits(t);
  assertEquals(first.changes.map((c) => [c.change, c.confirmationHeight]), [["created", 0]]);
  t.lnd.height = 103;
  t.lnd.utxos = [utxo(1, 3)];
  const second = await syncDeposits(t);
  assertEquals(second.changes.map((c) => [c.change, c.confirmationHeight]), [["confirmed", 101]]);
  const third = await syncDeposits(t);
  assertEquals(third.changes, []);
  const [d] = await listDeposits(t.db.client);
  assertEquals(d.confirmationHeight, 101);
  assertEquals((await depositHistory(t.db.client, d.depositId)).map((h) => h.state), [
    "Deposited",
    "Deposited",
  ]);
  assertEquals(t.lnd.nextAddrCalls, 0); // no wallet address until the deposit is swept
});

Deno.test("syncDeposits() persists Replaced with a history row and revives the same record", async () => {
  await using t = await setup();
  t.lnd.utxos = [utxo(1, 0)];
  await syncDeposits(t);
  t.lnd.utxos = [];
  assertEquals((await syncDeposits(t)).changes.map((c) => c.change), ["replaced"]);
  const [gone] = await listDeposits(t.db.client);
  assertEquals(gone.state, "Replaced");
  t.lnd.utxos = [utxo(1, 0)];
  assertEquals((await syncDeposits(t)).changes.map((c) => c.change), ["revived"]);
  const all = await listDeposits(t.db.client);
  assertEquals(all.length, 1);
  assertEquals(all[0].depositId, gone.depositId);
  assertEquals((await depositHistory(t.db.client, gone.depositId)).map((h) => h.state), [
    "Deposited",
    "Replaced",
    "Deposited",
  ]);
});

Deno.test("syncDeposits() retries when the tip moves during the wallet read", async () => {
  await using t = await setup();
  let calls = 0;
  const base = t.lnd.getInfo.bind(t.lnd);
  t.lnd.getInfo = () => {
    calls++;
    if (calls === 2) t.lnd.height = 101; // a block arrives between the first GetInfo and the second
    return base();
  };
  t.lnd.utxos = [utxo(1, 1)];
  const r = await syncDeposits(t);
  assertEquals(r.tipHeight, 101);
  assertEquals(calls, 4);
});

Deno.test("syncDeposits() resets a persisted height when a reorg puts the output back in the mempool, then re-derives it", async () => {
  await using t = await setup();
  t.lnd.utxos = [utxo(1, 2)];
  await syncDeposits(t);
  assertEquals((await listDeposits(t.db.client))[0].confirmationHeight, 99);
  t.lnd.utxos = [utxo(1, 0)];
  const reorg = await syncDeposits(t);
  assertEquals(reorg.changes.map((c) => [c.change, c.confirmationHeight]), [["unconfirmed_again", 0]]);
  t.lnd.height = 105;
  t.lnd.utxos = [utxo(1, 1)];
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  assertEquals(d.confirmationHeight, 105);
  assertEquals((await depositHistory(t.db.client, d.depositId)).length, 3); // created, reset, confirmed again
});

// ---- expiry and the timeout sweep (spec §4.7, §4.8)

const E = 10;

/** A deposit confirmed at height 101 (tip 110, 10 confirmations) on an address with CSV 10. */
async function expirySetup() {
  const t = await setup({ csvExpiry: E });
  const script = t.address.pkScript;
  const at = (tip: number, extra: Utxo[] = []) => {
    t.lnd.height = tip;
    t.lnd.utxos = [{ ...utxo(1, tip - 101 + 1, script), amountSat: 100_000n }, ...extra];
  };
  at(101);
  await syncDeposits(t);
  return { ...t, script, at };
}

Deno.test("an expired deposit is swept at tip C + E, not at C + E − 1: signed, stored, then published", async () => {
  await using t = await expirySetup();
  t.at(101 + E - 1);
  const before = await syncDeposits(t);
  assertEquals(before.sweeps, []);
  assertEquals(t.lnd.signCalls.length + t.lnd.published.length, 0);

  t.at(101 + E);
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.action, s.state]), [["published", "WaitForExpirySweep"]]);
  const [d] = await listDeposits(t.db.client);
  assertEquals(d.state, "WaitForExpirySweep");
  assertEquals(t.lnd.published, [d.expirySweepTx!]);
  assertEquals(d.expirySweepTxid, r.sweeps[0].txid);
  assertEquals(txidOf(d.expirySweepTx!), d.expirySweepTxid);
  const raw = RawTx.decode(d.expirySweepTx!);
  assertEquals(raw.inputs[0].sequence, E);
  assertEquals(raw.outputs[0].script, d.timeoutSweepPkScript);
  assertEquals(raw.outputs[0].amount, 100_000n - r.sweeps[0].feeSat!);
  assertEquals((await depositHistory(t.db.client, d.depositId)).map((h) => h.state), [
    "Deposited",
    "PublishExpirySweep",
    "WaitForExpirySweep",
  ]);
});

Deno.test("a stored sweep is republished byte for byte while unconfirmed and never re-signed, whatever the fee does", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  // The sweep spends the deposit: it leaves the wallet view; the sweep output is not relayed yet.
  t.lnd.height = 112;
  t.lnd.utxos = [];
  t.lnd.feeRate = 50_000n;
  for (let i = 0; i < 3; i++) {
    const r = await syncDeposits(t);
    assertEquals(r.sweeps.map((s) => s.action), ["republished"]);
  }
  assertEquals(t.lnd.signCalls.length, 1);
  assertEquals(t.lnd.published.length, 4);
  for (const p of t.lnd.published) assertEquals(p, d.expirySweepTx!);
  assertEquals(t.lnd.confirmationCalls, 3);
});

Deno.test("the deposit becomes Expired once its sweep has 3 confirmations (wallet view), and nothing happens after", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  const sweepOut = (confs: number): Utxo => ({
    txid: d.expirySweepTxid!,
    vout: 0,
    amountSat: 99_000n,
    pkScript: d.timeoutSweepPkScript,
    confirmations: confs,
    address: "",
  });
  t.lnd.utxos = [sweepOut(0)];
  assertEquals((await syncDeposits(t)).sweeps.map((s) => s.action), ["republished"]);
  t.lnd.utxos = [sweepOut(2)];
  assertEquals((await syncDeposits(t)).sweeps.map((s) => [s.action, s.confirmations]), [["waiting", 2]]);
  t.lnd.utxos = [sweepOut(3)];
  assertEquals((await syncDeposits(t)).sweeps.map((s) => [s.action, s.state]), [["confirmed", "Expired"]]);
  const published = t.lnd.published.length;
  assertEquals((await syncDeposits(t)).sweeps, []);
  assertEquals(t.lnd.published.length, published);
  assertEquals(t.lnd.confirmationCalls, 0);
  assertEquals((await depositHistory(t.db.client, d.depositId)).map((h) => h.state).slice(-2), [
    "WaitForExpirySweep",
    "Expired",
  ]);
});

Deno.test("a sweep whose output already left the wallet is confirmed through lnd's confirmation check", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  t.lnd.utxos = [];
  t.lnd.height = 130;
  t.lnd.confirmations.set(d.expirySweepTxid!, {
    blockHeight: 112,
    blockHash: "00".repeat(32),
    txIndex: 1,
    rawTx: d.expirySweepTx!,
  });
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.action, s.confirmations]), [["confirmed", 19]]);
  assertEquals((await listDeposits(t.db.client))[0].state, "Expired");
});

Deno.test("a failed publish keeps the stored sweep (exit-4 report) and the next sync republishes the same bytes", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  t.lnd.publishError = "txn-mempool-conflict";
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.action, s.state, s.error?.code]), [[
    "failed",
    "WaitForExpirySweep",
    "lnd_rpc",
  ]]);
  t.lnd.publishError = "";
  t.lnd.utxos = [];
  assertEquals((await syncDeposits(t)).sweeps.map((s) => s.action), ["republished"]);
  assertEquals(t.lnd.signCalls.length, 1);
  assertEquals(t.lnd.published[0], t.lnd.published[1]);
  // "Already have it" answers count as success.
  t.lnd.publishError = "rejected: already have transaction abc";
  assertEquals((await syncDeposits(t)).sweeps.map((s) => s.action), ["republished"]);
});

Deno.test("a sweep fee above 20% of the value stores nothing; the sweep goes out when fees come down", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  t.lnd.feeRate = 100_000n; // 51 700 sat for 517 WU on a 100 000 sat deposit
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.action, s.state, s.error?.code]), [[
    "failed",
    "Deposited",
    "sweep_fee_too_high",
  ]]);
  assertEquals((await listDeposits(t.db.client))[0].expirySweepTx, null);
  assertEquals(t.lnd.signCalls.length, 0);
  t.lnd.feeRate = 1_000n;
  assertEquals((await syncDeposits(t)).sweeps.map((s) => s.action), ["published"]);
});

Deno.test("a sync that loses the race to store its sweep publishes the winner's stored bytes, never its own", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  const other = await openDb({ url: `file:${t.dir}/loopkit.db`, network: "regtest" });
  let winner: Awaited<ReturnType<typeof syncDeposits>> | undefined;
  try {
    // While this sync waits for its signature, another process signs, stores and publishes its own sweep.
    t.lnd.duringSign = async () => {
      winner = await syncDeposits({ db: other, lnd: t.lnd });
    };
    const loser = await syncDeposits(t);
    assertEquals(winner?.sweeps.map((s) => s.action), ["published"]);
    assertEquals(loser.sweeps.map((s) => [s.action, s.txid]), [["published", winner?.sweeps[0].txid]]);
  } finally {
    other.close();
  }
  const [d] = await listDeposits(t.db.client);
  assertEquals(t.lnd.signCalls.length, 2);
  assertEquals(t.lnd.published.length, 2);
  for (const p of t.lnd.published) assertEquals(p, d.expirySweepTx!);
  assertEquals((await depositHistory(t.db.client, d.depositId)).map((h) => h.state), [
    "Deposited",
    "PublishExpirySweep",
    "WaitForExpirySweep",
  ]);
});

Deno.test("expiry follows the table: LoopingIn is swept, Withdrawing is not, unconfirmed never is", async () => {
  await using t = await setup({ csvExpiry: E });
  const script = t.address.pkScript;
  t.lnd.height = 101;
  t.lnd.utxos = [1, 2, 3].map((n) => ({ ...utxo(n, 1, script), amountSat: 100_000n }));
  t.lnd.utxos.push({ ...utxo(4, 0, script), amountSat: 100_000n });
  await syncDeposits(t);
  const ids = (await listDeposits(t.db.client)).map((d) => d.depositId);
  await t.db.write(async (tx) => {
    await transitionDeposit(
      tx,
      { depositId: ids[1], from: "Deposited", events: ["OnLoopInInitiated"] },
      new Date(),
    );
    await transitionDeposit(
      tx,
      { depositId: ids[2], from: "Deposited", events: ["OnWithdrawInitiated"] },
      new Date(),
    );
  });
  t.lnd.height = 1_000;
  t.lnd.utxos = t.lnd.utxos.map((u) => u.confirmations ? { ...u, confirmations: 900 } : u);
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.outpoint, s.action]), [
    [`${txid(1)}:1`, "published"],
    [`${txid(2)}:1`, "published"],
  ]);
  assertEquals((await listDeposits(t.db.client)).map((d) => d.state), [
    "WaitForExpirySweep",
    "WaitForExpirySweep",
    "Withdrawing",
    "Deposited",
  ]);
});

Deno.test("a deposit back in Deposited with a stored sweep reuses that sweep instead of signing a second one", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  await t.db.write((tx) =>
    transitionDeposit(
      tx,
      { depositId: d.depositId, from: "WaitForExpirySweep", events: ["OnError"] },
      new Date(),
    )
  );
  t.at(101 + E + 1);
  t.lnd.feeRate = 7_000n;
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.action, s.txid]), [["published", d.expirySweepTxid!]]);
  assertEquals(t.lnd.signCalls.length, 1);
  assertEquals(t.lnd.published.at(-1), d.expirySweepTx!);
  // And the store refuses to attach different bytes to a deposit that has a sweep.
  const other = Uint8Array.from(d.expirySweepTx!);
  other[other.length - 5] ^= 1;
  const changed = await t.db.write((tx) =>
    transitionDeposit(tx, {
      depositId: d.depositId,
      from: "WaitForExpirySweep",
      events: [],
      expirySweep: { txid: d.expirySweepTxid!, tx: other },
    }, new Date())
  );
  assertEquals(changed, null);
});

// ---- the account-filtered wallet read (bench/README.md: 100 000 wallet UTXOs)

/** A wallet where lnd files the static-address outputs in its `imported` account, as ImportTapscript does. */
async function importedSetup(opts: { csvExpiry?: number } = {}) {
  const t = await setup(opts);
  t.lnd.importedPkScripts = [t.address.pkScript];
  const own = (n: number, confirmations: number): Utxo => ({
    ...utxo(n, confirmations, Uint8Array.of(0x00, 0x14, ...new Uint8Array(20).fill(n))),
    vout: 0,
  });
  return { ...t, own };
}

Deno.test("steady state: one ListUnspent of the imported account, no full read, deposits created and kept", async () => {
  await using t = await importedSetup();
  t.lnd.utxos = [t.own(50, 3), utxo(1, 0, t.address.pkScript), t.own(51, 0), utxo(2, 2, t.address.pkScript)];
  const first = await syncDeposits(t);
  assertEquals(first.changes.map((c) => [c.outpoint, c.change]), [
    [`${txid(1)}:1`, "created"],
    [`${txid(2)}:1`, "created"],
  ]);
  assertEquals(first.walletDeposits, 2);
  assertEquals(t.lnd.listUnspentAccounts, ["imported"]);
  const second = await syncDeposits(t);
  assertEquals(second.changes, []);
  assertEquals(t.lnd.listUnspentAccounts, ["imported", "imported"]);
});

Deno.test("a deposit missing from the imported account is not marked Replaced or not wallet-visible: the full read finds it", async () => {
  await using t = await importedSetup();
  t.lnd.utxos = [utxo(1, 0, t.address.pkScript), utxo(2, 3, t.address.pkScript)];
  await syncDeposits(t);
  t.lnd.listUnspentAccounts = [];
  // lnd stops filing them under "imported" (or the account is named otherwise: lnd then lists nothing).
  t.lnd.importedPkScripts = [];
  const r = await syncDeposits(t);
  assertEquals(r.changes, []);
  assertEquals(r.walletDeposits, 2);
  assertEquals(t.lnd.listUnspentAccounts, ["imported", ""]);
  const stored = await listDeposits(t.db.client);
  assertEquals(stored.map((d) => [d.state, d.walletVisible]), [["Deposited", true], ["Deposited", true]]);
});

Deno.test("a deposit gone from the whole wallet is marked only after a full read confirms it", async () => {
  await using t = await importedSetup();
  t.lnd.utxos = [utxo(1, 0, t.address.pkScript), utxo(2, 3, t.address.pkScript), t.own(50, 1)];
  await syncDeposits(t);
  t.lnd.listUnspentAccounts = [];
  t.lnd.utxos = [t.own(50, 1)];
  const r = await syncDeposits(t);
  assertEquals(r.changes.map((c) => [c.outpoint, c.change]), [
    [`${txid(1)}:1`, "replaced"],
    [`${txid(2)}:1`, "vanished"],
  ]);
  assertEquals(t.lnd.listUnspentAccounts, ["imported", ""]);
  // Once marked, the steady state is the small read again.
  t.lnd.listUnspentAccounts = [];
  assertEquals((await syncDeposits(t)).changes, []);
  assertEquals(t.lnd.listUnspentAccounts, ["imported"]);
});

Deno.test("an lnd that refuses the account filter gets the full read; an unreachable lnd is not retried (exit 75)", async () => {
  await using t = await importedSetup();
  t.lnd.utxos = [t.own(50, 1), utxo(1, 2, t.address.pkScript)];
  t.lnd.accountFilterError = 'account "imported" not found';
  const r = await syncDeposits(t);
  assertEquals(r.changes.map((c) => c.change), ["created"]);
  assertEquals(t.lnd.listUnspentAccounts, ["imported", ""]);

  t.lnd.accountFilterError = "";
  t.lnd.listUnspentAccounts = [];
  const base = t.lnd.listUnspent.bind(t.lnd);
  t.lnd.listUnspent = (_min, _max, opts) => {
    t.lnd.listUnspentAccounts.push(opts?.account ?? "");
    return Promise.reject(
      tempFailure("Cannot reach lnd at localhost:1 (--rpcserver): refused", "lnd_unreachable"),
    );
  };
  const err = await syncDeposits(t).then(() => null, (e) => e);
  assert(err instanceof LoopkitError);
  assertEquals([err.code, err.exitCode], ["lnd_unreachable", ExitCode.TempFail]);
  assertEquals(t.lnd.listUnspentAccounts, ["imported"]);
  // Another lnd error that does not name the account is not taken for a refused filter either.
  t.lnd.listUnspent = (min, max, opts) =>
    opts?.account
      ? Promise.reject(new LndError("WalletKit.ListUnspent", "unknown", "wallet not synced"))
      : base(min, max, opts);
  const other = await syncDeposits(t).then(() => null, (e) => e);
  assert(other instanceof LndError);
  assertEquals(other.details, "wallet not synced");
});

Deno.test("a row another sync stored meanwhile is not marked Replaced from the filtered view", async () => {
  await using t = await importedSetup();
  t.lnd.utxos = [utxo(1, 0, t.address.pkScript)];
  // Right after this sync's wallet read, another sync stores deposit 2 (which this sync's filtered view does
  // not hold).
  const info = t.lnd.getInfo.bind(t.lnd);
  let calls = 0;
  t.lnd.getInfo = async () => {
    if (++calls === 2) { // the GetInfo right after the wallet read
      await t.db.write((tx) =>
        insertDeposit(tx, {
          txid: txid(2),
          vout: 1,
          amountSat: 50_000n,
          confirmationHeight: 0,
          pkScript: t.address.pkScript,
          depositId: new Uint8Array(32).fill(2),
          timeoutSweepPkScript: new Uint8Array(34).fill(1),
        }, new Date())
      );
    }
    return await info();
  };
  const r = await syncDeposits(t);
  assertEquals(r.changes.map((c) => [c.outpoint, c.change]), [[`${txid(1)}:1`, "created"]]);
  assertEquals(
    (await listDeposits(t.db.client)).map((d) => [d.txid, d.state]).sort(),
    [[txid(1), "Deposited"], [txid(2), "Deposited"]],
  );
  assertEquals(t.lnd.listUnspentAccounts, ["imported"]);
});

Deno.test("a pending expiry sweep adds one full read to find its output (default account); none once it is Expired", async () => {
  await using t = await importedSetup({ csvExpiry: E });
  const deposit = (tip: number): Utxo => ({
    ...utxo(1, tip - 101 + 1, t.address.pkScript),
    amountSat: 100_000n,
  });
  t.lnd.height = 101;
  t.lnd.utxos = [deposit(101), t.own(50, 5)];
  await syncDeposits(t);
  t.lnd.height = 101 + E - 1;
  t.lnd.utxos = [deposit(101 + E - 1), t.own(50, 5)];
  await syncDeposits(t);
  assertEquals(t.lnd.listUnspentAccounts, ["imported", "imported"]);

  t.lnd.height = 101 + E;
  t.lnd.utxos = [deposit(101 + E), t.own(50, 5)];
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => s.action), ["published"]); // nothing stored before: no full read
  assertEquals(t.lnd.listUnspentAccounts.slice(2), ["imported"]);
  const [d] = await listDeposits(t.db.client);
  const sweepOut: Utxo = {
    txid: d.expirySweepTxid!,
    vout: 0,
    amountSat: 99_000n,
    pkScript: d.timeoutSweepPkScript,
    confirmations: 3,
    address: "",
  };
  t.lnd.height = 101 + E + 3;
  t.lnd.utxos = [t.own(50, 8), sweepOut]; // the deposit is spent; the sweep output is lnd's own
  t.lnd.listUnspentAccounts = [];
  const done = await syncDeposits(t);
  assertEquals(done.sweeps.map((s) => [s.action, s.state, s.confirmations]), [["confirmed", "Expired", 3]]);
  assertEquals(done.changes, []); // a deposit in WaitForExpirySweep is not reconciled as vanished
  assertEquals(t.lnd.listUnspentAccounts, ["imported", ""]);
  assertEquals(t.lnd.confirmationCalls, 0); // found in the wallet view, not through the notifier
  t.lnd.listUnspentAccounts = [];
  assertEquals((await syncDeposits(t)).sweeps, []);
  assertEquals(t.lnd.listUnspentAccounts, ["imported"]);
});

Deno.test("the first sync checks the imported-account filter against the whole wallet and records it", async () => {
  await using t = await setup({ filterChecked: false });
  t.lnd.importedPkScripts = [OUR];
  t.lnd.utxos = [utxo(1, 2), utxo(2, 1, OTHER)];
  await syncDeposits(t);
  assertEquals(t.lnd.listUnspentAccounts, ["imported", ""]);
  assertEquals(await filterCheck(t.db), `ok:${t.lnd.height}`);
  t.lnd.listUnspentAccounts = [];
  await syncDeposits(t);
  assertEquals(t.lnd.listUnspentAccounts, ["imported"]);
  t.lnd.height += FILTER_RECHECK_BLOCKS;
  t.lnd.listUnspentAccounts = [];
  await syncDeposits(t);
  assertEquals(t.lnd.listUnspentAccounts, ["imported", ""]);
  assertEquals(await filterCheck(t.db), `ok:${t.lnd.height}`);
});

Deno.test("an lnd that files our outputs outside the imported account switches the filter off for good", async () => {
  await using t = await setup({ filterChecked: false });
  t.lnd.importedPkScripts = [OTHER]; // our script is not where lnd v0.21.3 would put it
  t.lnd.utxos = [utxo(1, 2)];
  const r = await syncDeposits(t);
  assertEquals(r.changes.map((c) => c.change), ["created"]);
  assertEquals(await filterCheck(t.db), "off");
  t.lnd.listUnspentAccounts = [];
  t.lnd.utxos = [utxo(1, 2), utxo(3, 0)];
  const next = await syncDeposits(t);
  assertEquals(t.lnd.listUnspentAccounts, [""]);
  assertEquals(next.changes.map((c) => c.change), ["created"]);
});

Deno.test("a deposit that reaches the mempool between the two reads does not switch the filter off", async () => {
  await using t = await setup({ filterChecked: false });
  t.lnd.importedPkScripts = [];
  t.lnd.utxos = [utxo(1, 0)]; // unconfirmed: may have arrived after the filtered read
  await syncDeposits(t);
  assertEquals(await filterCheck(t.db), `ok:${t.lnd.height}`);
});

Deno.test("a row another sync stored after this sync's full-wallet read is not marked Replaced either", async () => {
  await using t = await setup();
  await setFilterCheck(t.db, "off"); // every read is the whole wallet
  t.lnd.utxos = [utxo(1, 0)];
  const info = t.lnd.getInfo.bind(t.lnd);
  let calls = 0;
  t.lnd.getInfo = async () => {
    if (++calls === 2) { // the GetInfo right after the wallet read // deposit 2 reached the wallet after this sync's read; a faster sync stored it
      await t.db.write((tx) =>
        insertDeposit(tx, {
          txid: txid(2),
          vout: 1,
          amountSat: 50_000n,
          confirmationHeight: 0,
          pkScript: OUR,
          depositId: new Uint8Array(32).fill(2),
          timeoutSweepPkScript: new Uint8Array(34).fill(1),
        }, new Date())
      );
    }
    return await info();
  };
  const r = await syncDeposits(t);
  assertEquals(t.lnd.listUnspentAccounts, [""]);
  assertEquals(r.changes.map((c) => [c.outpoint, c.change]), [[`${txid(1)}:1`, "created"]]);
  assertEquals(
    (await listDeposits(t.db.client)).map((d) => [d.txid, d.state]).sort(),
    [[txid(1), "Deposited"], [txid(2), "Deposited"]],
  );
});

// ---- deposits spent by something else, and unlisted deposits at expiry (fsm.md "Spent elsewhere")

/** A spend event of lnd's spend notifier: `txid` mined at `height`. */
const spentAt = (n: number, height: number) => ({
  spendingTxid: txid(n),
  spendingHeight: height,
  spendingInputIndex: 0,
});

Deno.test("a confirmed deposit gone from the wallet and spent by another transaction becomes SpentElsewhere at 3 confirmations, txid and height in its history", async () => {
  await using t = await expirySetup();
  t.at(105); // confirmed at 101, not expired
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  const op = `${d.txid}:${d.vout}`;
  // Spent by a transaction loopkit did not make (loopd, another data directory), mined at 106.
  t.lnd.height = 106;
  t.lnd.utxos = [];
  t.lnd.spends.set(op, spentAt(500, 106));
  const first = await syncDeposits(t);
  assertEquals(first.changes.map((c) => c.change), ["vanished"]);
  assertEquals(first.spends.map((s) => [s.action, s.state, s.spendingTxid, s.confirmations]), [
    ["pending", "Deposited", txid(500), 1],
  ]);
  assertEquals(t.lnd.spendCalls, [{ outpoint: op, heightHint: 101 }]);
  assertEquals((await listDeposits(t.db.client))[0].state, "Deposited");

  t.lnd.height = 108; // 3 confirmations
  const second = await syncDeposits(t);
  assertEquals(second.spends.map((s) => [s.action, s.state, s.spendingHeight, s.confirmations]), [
    ["recorded", "SpentElsewhere", 106, 3],
  ]);
  const [after] = await listDeposits(t.db.client);
  assertEquals([after.state, after.spentBy], ["SpentElsewhere", { txid: txid(500), height: 106 }]);
  const history = await depositHistory(t.db.client, d.depositId);
  assertEquals(history.at(-1)?.state, "SpentElsewhere");
  assertEquals(history.at(-1)?.spentBy, { txid: txid(500), height: 106 });
  assertEquals(history.slice(0, -1).every((h) => h.spentBy === undefined), true);
  // Final: no more checks, no sweep at expiry, nothing signed.
  const calls = t.lnd.spendCalls.length;
  t.lnd.height = 200;
  const later = await syncDeposits(t);
  assertEquals([later.sweeps, later.spends, later.changes], [[], [], []]);
  assertEquals(t.lnd.spendCalls.length, calls);
  assertEquals(t.lnd.signCalls.length, 0);
});

Deno.test("a stored sweep whose input another transaction spent is recorded SpentElsewhere and no longer published: no failed sweep", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  const op = `${d.txid}:${d.vout}`;
  // Another transaction spent the deposit and was mined at 112; ours can never confirm: lnd refuses it.
  t.lnd.utxos = [];
  t.lnd.publishError = "bad-txns-inputs-missingorspent";
  t.lnd.spends.set(op, spentAt(600, 112));
  const published = t.lnd.published.length;
  t.lnd.height = 113; // 2 confirmations: reported, nothing written, not republished
  const early = await syncDeposits(t);
  assertEquals(early.sweeps.map((s) => [s.action, s.state, s.error]), [
    ["spent_elsewhere", "WaitForExpirySweep", undefined],
  ]);
  assertEquals(early.spends.map((s) => [s.action, s.confirmations]), [["pending", 2]]);
  assertEquals(t.lnd.published.length, published);
  t.lnd.height = 114;
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.action, s.state, s.txid, s.error]), [
    ["spent_elsewhere", "SpentElsewhere", d.expirySweepTxid!, undefined],
  ]);
  assertEquals(r.spends.map((s) => [s.action, s.spendingTxid, s.spendingHeight]), [
    ["recorded", txid(600), 112],
  ]);
  assertEquals(t.lnd.published.length, published);
  const [after] = await listDeposits(t.db.client);
  assertEquals([after.state, after.expirySweepTxid], ["SpentElsewhere", d.expirySweepTxid]);
  assertEquals((await depositHistory(t.db.client, d.depositId)).map((h) => h.state).slice(-2), [
    "WaitForExpirySweep",
    "SpentElsewhere",
  ]);
  assertEquals((await syncDeposits(t)).sweeps, []);
});

Deno.test("a stored sweep that lnd's spend notifier reports as the spender is followed to Expired", async () => {
  await using t = await expirySetup();
  t.at(101 + E);
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  t.lnd.utxos = []; // its output already spent onwards, the confirmation check does not answer
  t.lnd.height = 120;
  t.lnd.spends.set(`${d.txid}:${d.vout}`, {
    spendingTxid: d.expirySweepTxid!,
    spendingHeight: 112,
    spendingInputIndex: 0,
  });
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.action, s.state, s.confirmations]), [["confirmed", "Expired", 9]]);
  assertEquals(r.spends, []);
});

/** A confirmed deposit stored as `recover deposit` stores one lnd's wallet does not list. */
async function unlistedSetup() {
  const t = await setup({ csvExpiry: E });
  t.lnd.height = 101;
  const [id, sweepScript] = [
    new Uint8Array(32).fill(4),
    Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(7)),
  ];
  await t.db.write(async (tx) => {
    await insertDeposit(tx, {
      depositId: id,
      txid: txid(9),
      vout: 2,
      amountSat: 80_000n,
      confirmationHeight: 101,
      pkScript: t.address.pkScript,
      timeoutSweepPkScript: sweepScript,
    }, new Date());
    await tx.execute({ sql: "UPDATE deposits SET wallet_visible = 0 WHERE deposit_id = ?", args: [id] });
  });
  return { ...t, id, sweepScript, op: `${txid(9)}:2` };
}

Deno.test("an expired deposit lnd's wallet does not list (recover deposit) is swept from its stored row after a spend check", async () => {
  await using t = await unlistedSetup();
  t.lnd.height = 101 + E - 1;
  const before = await syncDeposits(t);
  assertEquals([before.sweeps, before.spends], [[], []]);
  assertEquals(t.lnd.spendCalls, [{ outpoint: t.op, heightHint: 101 }]);

  t.lnd.height = 101 + E;
  const r = await syncDeposits(t);
  assertEquals(r.sweeps.map((s) => [s.outpoint, s.action, s.state]), [[
    t.op,
    "published",
    "WaitForExpirySweep",
  ]]);
  assertEquals(t.lnd.spendCalls.length, 2);
  const raw = RawTx.decode(t.lnd.published[0]);
  assertEquals(raw.inputs[0].txid, Uint8Array.from(txid(9).match(/../g)!, (x) => parseInt(x, 16)));
  assertEquals([raw.inputs[0].index, raw.inputs[0].sequence], [2, E]);
  assertEquals(raw.outputs[0].script, t.sweepScript);
  assertEquals(raw.outputs[0].amount, 80_000n - r.sweeps[0].feeSat!);
  assertEquals(t.lnd.signCalls[0].prev, [{ valueSat: 80_000n, pkScript: t.address.pkScript }]);
  const [d] = await listDeposits(t.db.client);
  assertEquals([d.state, d.walletVisible], ["WaitForExpirySweep", false]);
  // The sweep then confirms like any other.
  t.lnd.utxos = [{
    txid: d.expirySweepTxid!,
    vout: 0,
    amountSat: 79_000n,
    pkScript: t.sweepScript,
    confirmations: 3,
    address: "",
  }];
  t.lnd.height += 3;
  assertEquals((await syncDeposits(t)).sweeps.map((s) => [s.action, s.state]), [["confirmed", "Expired"]]);
});

Deno.test("an expired unlisted deposit whose spend check fails is not swept: the failure is reported", async () => {
  await using t = await unlistedSetup();
  t.lnd.height = 101 + E;
  t.lnd.spendError = "connection refused";
  const r = await syncDeposits(t);
  assertEquals(r.sweeps, []);
  assertEquals(r.spends.map((s) => [s.outpoint, s.action, s.error?.code]), [[
    t.op,
    "check_failed",
    "lnd_rpc",
  ]]);
  assertEquals(t.lnd.signCalls.length + t.lnd.published.length, 0);
  // An unlisted deposit spent elsewhere before expiry is recorded, never swept.
  t.lnd.spendError = "";
  t.lnd.spends.set(t.op, spentAt(700, 105));
  const again = await syncDeposits(t);
  assertEquals(again.spends.map((s) => [s.action, s.state]), [["recorded", "SpentElsewhere"]]);
  assertEquals(again.sweeps, []);
});

Deno.test("LoopingIn and SweepHtlcTimeout deposits outside the wallet get no spend check and no change (the loop-in's business)", async () => {
  await using t = await unlistedSetup();
  const other = new Uint8Array(32).fill(5);
  await t.db.write(async (tx) => {
    await transitionDeposit(
      tx,
      { depositId: t.id, from: "Deposited", events: ["OnLoopInInitiated"] },
      new Date(),
    );
    await insertDeposit(tx, {
      depositId: other,
      txid: txid(10),
      vout: 0,
      amountSat: 70_000n,
      confirmationHeight: 101,
      pkScript: t.address.pkScript,
      timeoutSweepPkScript: t.sweepScript,
    }, new Date());
    await tx.execute({ sql: "UPDATE deposits SET wallet_visible = 0 WHERE deposit_id = ?", args: [other] });
    await transitionDeposit(
      tx,
      { depositId: other, from: "Deposited", events: ["OnSweepingHtlcTimeout"] },
      new Date(),
    );
  });
  t.lnd.height = 101 + E + 50;
  t.lnd.spends.set(t.op, spentAt(800, 105));
  t.lnd.spends.set(`${txid(10)}:0`, spentAt(801, 105));
  const r = await syncDeposits(t);
  assertEquals([r.sweeps, r.spends, r.changes], [[], [], []]);
  assertEquals(t.lnd.spendCalls, []);
  assertEquals((await listDeposits(t.db.client)).map((d) => d.state), ["LoopingIn", "SweepHtlcTimeout"]);
});

Deno.test("a new deposit takes no wallet address; its expiry sweep takes one, stored before anything is signed", async () => {
  await using t = await expirySetup();
  assertEquals(t.lnd.nextAddrCalls, 0);
  const [before] = await listDeposits(t.db.client);
  assertEquals(before.timeoutSweepPkScript, new Uint8Array(0));
  t.at(101 + E);
  t.lnd.feeRate = 100_000n; // the first attempt is refused (fee): the address is kept for the next one
  assertEquals((await syncDeposits(t)).sweeps.map((s) => s.error?.code), ["sweep_fee_too_high"]);
  const [kept] = await listDeposits(t.db.client);
  assertEquals([t.lnd.nextAddrCalls, kept.timeoutSweepPkScript.length], [1, 34]);
  t.lnd.feeRate = 2_500n;
  await syncDeposits(t);
  const [d] = await listDeposits(t.db.client);
  assertEquals(t.lnd.nextAddrCalls, 1);
  assertEquals(d.timeoutSweepPkScript, kept.timeoutSweepPkScript);
  assertEquals(RawTx.decode(d.expirySweepTx!).outputs[0].script, kept.timeoutSweepPkScript);
});
