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
  assertEquals(t.lnd.nextAddrCalls, 1);
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
  // While this sync fetches the sweep destination of deposit 1, another sync stores deposit 2 (which this
  // sync's filtered view does not hold).
  const next = t.lnd.nextSweepPkScript.bind(t.lnd);
  let raced = false;
  t.lnd.nextSweepPkScript = async () => {
    if (!raced) {
      raced = true;
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
    return await next();
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
  const next = t.lnd.nextSweepPkScript.bind(t.lnd);
  let raced = false;
  t.lnd.nextSweepPkScript = async () => {
    if (!raced) {
      raced = true; // deposit 2 reached the wallet after this sync's read; a faster sync stored it
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
    return await next();
  };
  const r = await syncDeposits(t);
  assertEquals(t.lnd.listUnspentAccounts, [""]);
  assertEquals(r.changes.map((c) => [c.outpoint, c.change]), [[`${txid(1)}:1`, "created"]]);
  assertEquals(
    (await listDeposits(t.db.client)).map((d) => [d.txid, d.state]).sort(),
    [[txid(1), "Deposited"], [txid(2), "Deposited"]],
  );
});
