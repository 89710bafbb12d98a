import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import { openDb } from "../db/db.ts";
import { listDeposits } from "../deposits/store.ts";
import { depositPath, LoopInSwapStore } from "./store.ts";
import { newSwap, tempLoopInDb } from "./_store_testing.ts";
import type { LoopInStore } from "./initiate.ts";
import { bytesToHex } from "@noble/hashes/utils.js";

// The store must satisfy the interface initiate.ts codes against (a compile-time check).
const _fits = (s: LoopInSwapStore): LoopInStore => s;

const depositStates = async (db: Parameters<typeof listDeposits>[0]) =>
  (await listDeposits(db)).map((d) => d.state);

Deno.test("createSwap stores the swap, its deposits in snapshot order and locks them LoopingIn", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n, 2_000_000n] });
  const store = new LoopInSwapStore(t.db, { now: () => new Date("2026-01-02T00:00:01Z") });
  // Snapshot order is the caller's (HTLC input order), not the deposits' insertion order.
  const order = [t.outpoints[1], t.outpoints[0]];
  const rec = newSwap(order, 3_000_000n);
  await store.createSwap(rec);
  const s = await store.getSwap(rec.swapHash);
  assert(s);
  assertEquals(s.state, "InitHtlcTx");
  assertEquals(s.deposits.map((d) => d.outpoint), order);
  assertEquals(s.deposits.map((d) => d.state), ["LoopingIn", "LoopingIn"]);
  assertEquals(s.deposits.map((d) => d.released), [false, false]);
  assertEquals(s.changeSat, 0n);
  assertEquals(s.preimage, rec.preimage);
  assertEquals(s.htlcKey, rec.htlcKey);
  assertEquals(s.owner?.pid, 1);
  assertEquals(s.armedAt, null);
  assertEquals(await store.depositOutpoints(rec.swapHash), order);
  assertEquals(await depositStates(t.db.client), ["LoopingIn", "LoopingIn"]);
  const h = await store.history(rec.swapHash);
  assertEquals(h.map((u) => [u.state, u.event]), [["InitHtlcTx", "OnInitHtlc"]]);
  // deposits.swap_hash is set (Loop's MapDepositToSwap).
  assertEquals((await listDeposits(t.db.client)).map((d) => d.swapHash), [
    bytesToHex(rec.swapHash),
    bytesToHex(rec.swapHash),
  ]);
});

Deno.test("createSwap refuses a deposit that is not Deposited or held by a live swap; nothing written", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n, 2_000_000n] });
  const store = new LoopInSwapStore(t.db);
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  await store.createSwap(a);
  const b = newSwap([t.outpoints[1], t.outpoints[0]], 3_000_000n, 2);
  const err = await assertRejects(() => store.createSwap(b), LoopkitError);
  assertEquals(err.code, "deposit_not_available");
  assert(err.message.includes(t.outpoints[0]), err.message);
  assertEquals(await store.getSwap(b.swapHash), null);
  assertEquals(await depositStates(t.db.client), ["LoopingIn", "Deposited"]);
  // An unknown outpoint and a wrong total are refused too.
  const c = newSwap([`${"ab".repeat(32)}:0`], 1n, 3);
  assertEquals((await assertRejects(() => store.createSwap(c), LoopkitError)).code, "deposit_not_available");
  const d = newSwap([t.outpoints[1]], 2_000_001n, 4);
  assertEquals((await assertRejects(() => store.createSwap(d), LoopkitError)).code, "deposit_not_available");
  assertEquals(await depositStates(t.db.client), ["LoopingIn", "Deposited"]);
  assertEquals((await store.listSwaps()).length, 1);
});

Deno.test("two concurrent createSwap for the same deposit in two processes: exactly one wins", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n] });
  const store = new LoopInSwapStore(t.db);
  const child = new URL("./_store_race_child.ts", import.meta.url).pathname;
  for (let round = 0; round < 3; round++) {
    const startAt = Date.now() + 1500;
    const seeds = [10 + 2 * round, 11 + 2 * round];
    const outs = await Promise.all(seeds.map((seed) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", child, t.url, String(startAt), String(seed), t.outpoints[0]],
        stdout: "piped",
        stderr: "inherit",
      }).output()
    ));
    const results = outs.map((o) => JSON.parse(new TextDecoder().decode(o.stdout).trim()));
    assertEquals(results.filter((r) => r.ok).length, 1, JSON.stringify(results));
    // The loser is refused (or told to retry while the winner holds the lock); it wrote nothing.
    const loser = results.find((r) => !r.ok);
    assert(["deposit_not_available", "db_busy"].includes(loser.code), JSON.stringify(results));
    const live = await t.db.client.execute(
      "SELECT count(*) AS n FROM loopin_swap_deposits WHERE released = 0",
    );
    assertEquals(Number(live.rows[0].n), 1);
    assertEquals((await store.listSwaps()).length, round + 1);
    // Release the winner so the next round races again.
    const winner = (await store.listSwaps({ pendingOnly: true }))[0];
    await store.transition(winner.swapHash, "InitHtlcTx", "OnError", { reason: "test" });
    await store.transition(winner.swapHash, "UnlockDeposits", "OnError", { releaseDeposits: true });
    assertEquals(await depositStates(t.db.client), ["Deposited"]);
  }
});

Deno.test("the live-deposit index refuses a second live swap even when the deposit state check is bypassed", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n] });
  const store = new LoopInSwapStore(t.db);
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  await store.createSwap(a);
  // Force the deposit back to Deposited behind the store's back: the index still refuses.
  await t.db.client.execute("UPDATE deposits SET state = 'Deposited'");
  const b = newSwap([t.outpoints[0]], 1_000_000n, 2);
  const err = await assertRejects(() => store.createSwap(b), LoopkitError);
  assertEquals(err.code, "deposit_not_available");
  await assertRejects(() =>
    t.db.client.execute({
      sql: `INSERT INTO loopin_swap_deposits (swap_hash, position, deposit_id, tx_hash, out_index, amount)
            SELECT ?, 0, deposit_id, tx_hash, out_index, amount FROM deposits`,
      args: [a.swapHash],
    })
  );
});

Deno.test("transition: release gives deposits back in the same transaction; a released deposit can join a new swap", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n] });
  const store = new LoopInSwapStore(t.db);
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  await store.createSwap(a);
  assertEquals(
    await store.transition(a.swapHash, "InitHtlcTx", "OnError", { reason: "server said no" }),
    "UnlockDeposits",
  );
  assertEquals(await depositStates(t.db.client), ["LoopingIn"]);
  const failed = await store.transition(a.swapHash, "UnlockDeposits", "OnError", {
    releaseDeposits: true,
    set: { invoiceCanceledAt: new Date("2026-01-03T00:00:00Z") },
  });
  assertEquals(failed, "Failed");
  const s = (await store.getSwap(a.swapHash))!;
  assertEquals(s.deposits.map((d) => [d.state, d.released]), [["Deposited", true]]);
  assert(s.depositsReleasedAt);
  assertEquals(s.invoiceCanceledAt, new Date("2026-01-03T00:00:00Z"));
  assertEquals(s.lastError, "server said no");
  const b = newSwap([t.outpoints[0]], 1_000_000n, 2);
  await store.createSwap(b);
  assertEquals(await depositStates(t.db.client), ["LoopingIn"]);
  // Swap a's release no longer touches the deposit now held by b.
  await store.transition(a.swapHash, "Failed", "OnSweepHtlcTimeout", {
    depositEvent: "OnSweepingHtlcTimeout",
  });
  assertEquals(await depositStates(t.db.client), ["SweepHtlcTimeout"]);
});

Deno.test("an HTLC of an earlier swap confirmed for a deposit a later swap looped in: the earlier swap still goes to SweepHtlcTimeout (the deposit row stays LoopedIn)", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n] });
  const store = new LoopInSwapStore(t.db);
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  await store.createSwap(a);
  await store.transition(a.swapHash, "InitHtlcTx", "OnHtlcInitiated");
  await store.transition(a.swapHash, "SignHtlcTx", "OnHtlcTxSigned");
  // a's deadline: the cancel was acknowledged, the deposit released; then b loops it in and succeeds.
  await store.transition(a.swapHash, "MonitorInvoiceAndHtlcTx", "OnError", { releaseDeposits: true });
  assertEquals((await store.getSwap(a.swapHash))!.state, "UnlockDeposits");
  await store.transition(a.swapHash, "UnlockDeposits", "OnError", { releaseDeposits: true });
  const b = newSwap([t.outpoints[0]], 1_000_000n, 2);
  await store.createSwap(b);
  await store.transition(b.swapHash, "InitHtlcTx", "OnHtlcInitiated");
  await store.transition(b.swapHash, "SignHtlcTx", "OnHtlcTxSigned");
  await store.transition(b.swapHash, "MonitorInvoiceAndHtlcTx", "OnPaymentReceived", {
    depositEvent: "OnLoopedIn",
  });
  assertEquals(await depositStates(t.db.client), ["LoopedIn"]);
  // The server publishes a's HTLC (it still holds a's signatures): a must reach its timeout sweep.
  assertEquals(
    await store.transition(a.swapHash, "Failed", "OnSweepHtlcTimeout", {
      depositEvent: "OnSweepingHtlcTimeout",
    }),
    "SweepHtlcTimeout",
  );
  assertEquals(await depositStates(t.db.client), ["LoopedIn"]);
});

Deno.test("transition from a state the swap is not in changes nothing (exit 75); a rejected event changes nothing", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n] });
  const store = new LoopInSwapStore(t.db);
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  await store.createSwap(a);
  const err = await assertRejects(
    () => store.transition(a.swapHash, "SignHtlcTx", "OnError", { releaseDeposits: true }),
    LoopkitError,
  );
  assertEquals([err.code, err.exitCode], ["loopin_state_changed", 75]);
  const rejected = await assertRejects(
    () => store.transition(a.swapHash, "InitHtlcTx", "OnPaymentReceived"),
    LoopkitError,
  );
  assertEquals(rejected.code, "loopin_event_rejected");
  assertEquals((await store.getSwap(a.swapHash))!.state, "InitHtlcTx");
  assertEquals(await depositStates(t.db.client), ["LoopingIn"]);
  assertEquals((await store.history(a.swapHash)).length, 1);
});

Deno.test("a deposit that cannot take the deposit event rolls back the swap change too (review §1.9)", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n, 2_000_000n] });
  const store = new LoopInSwapStore(t.db);
  const a = newSwap(t.outpoints, 3_000_000n, 1);
  await store.createSwap(a);
  await store.transition(a.swapHash, "InitHtlcTx", "OnHtlcInitiated");
  await store.transition(a.swapHash, "SignHtlcTx", "OnHtlcTxSigned");
  // The second deposit was swept away by its expiry: it cannot become LoopedIn.
  await t.db.client.execute({
    sql: "UPDATE deposits SET state = 'Expired' WHERE out_index = 0 AND amount = 2000000",
  });
  const err = await assertRejects(
    () =>
      store.transition(a.swapHash, "MonitorInvoiceAndHtlcTx", "OnPaymentReceived", {
        depositEvent: "OnLoopedIn",
      }),
    LoopkitError,
  );
  assertEquals(err.code, "loopin_deposit_state");
  assertEquals((await store.getSwap(a.swapHash))!.state, "MonitorInvoiceAndHtlcTx");
  assertEquals(await depositStates(t.db.client), ["LoopingIn", "Expired"]);
});

Deno.test("markArmed is its own committed transaction and keeps the first time", async () => {
  let now = new Date("2026-01-02T00:00:00Z");
  await using t = await tempLoopInDb({ amounts: [1_000_000n] });
  const store = new LoopInSwapStore(t.db, { now: () => now });
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  await store.createSwap(a);
  await store.transition(a.swapHash, "InitHtlcTx", "OnHtlcInitiated");
  await store.markArmed(a.swapHash);
  now = new Date("2026-01-02T00:05:00Z");
  await store.markArmed(a.swapHash);
  // Visible from another connection at once (committed).
  const other = await openDb({ url: t.url, network: "regtest" });
  try {
    const s = await new LoopInSwapStore(other).getSwap(a.swapHash);
    assertEquals(s?.armedAt, new Date("2026-01-02T00:00:00Z"));
  } finally {
    other.close();
  }
  assertEquals((await store.history(a.swapHash)).filter((h) => h.reason.startsWith("armed")).length, 1);
  await assertRejects(() => store.markArmed(new Uint8Array(32)), LoopkitError);
});

Deno.test("markArmed refuses a swap that is not in SignHtlcTx (another process unwound it): nothing written", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n, 2_000_000n] });
  const store = new LoopInSwapStore(t.db, { now: () => new Date("2026-01-02T00:00:00Z") });
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  const b = newSwap([t.outpoints[1]], 2_000_000n, 2);
  await store.createSwap(a);
  await store.createSwap(b);
  // a: still InitHtlcTx (no server parameters). b: a `loopin sync` unwound it (owner gone) to Failed.
  await store.transition(b.swapHash, "InitHtlcTx", ["OnHtlcInitiated", "OnRecover", "OnError"], {
    releaseDeposits: true,
  });
  for (const [s, state] of [[a, "InitHtlcTx"], [b, "Failed"]] as const) {
    const before = await store.history(s.swapHash);
    const err = await assertRejects(() => store.markArmed(s.swapHash), LoopkitError);
    assertEquals([err.code, err.exitCode], ["loopin_state_changed", 75]);
    const after = await store.getSwap(s.swapHash);
    assertEquals([after?.state, after?.armedAt], [state, null]);
    assertEquals((await store.history(s.swapHash)).length, before.length);
  }
});

Deno.test("recordRiskDecision: first time kept, rejection replaces acceptance, acceptance never replaces rejection", async () => {
  let now = new Date("2026-01-02T00:00:00Z");
  await using t = await tempLoopInDb({ amounts: [1_000_000n] });
  const store = new LoopInSwapStore(t.db, { now: () => now });
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  await assertRejects(() => store.recordRiskDecision(a.swapHash, "accepted"), LoopkitError, "not found");
  await store.createSwap(a);
  assertEquals(await store.recordRiskDecision(a.swapHash, "accepted"), {
    decision: "accepted",
    at: now,
    changed: true,
  });
  const first = now;
  now = new Date("2026-01-02T00:10:00Z");
  // The server re-sends on every subscription: the first time stays (the deadline is not extended).
  assertEquals(await store.recordRiskDecision(a.swapHash, "accepted"), {
    decision: "accepted",
    at: first,
    changed: false,
  });
  assertEquals((await store.recordRiskDecision(a.swapHash, "rejected")).changed, true);
  assertEquals((await store.recordRiskDecision(a.swapHash, "accepted")).decision, "rejected");
  const s = (await store.getSwap(a.swapHash))!;
  assertEquals([s.riskDecision, s.riskDecisionAt], ["rejected", now]);
});

Deno.test("listSwaps: pending, watched (armed, watch not ended) and active", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n, 2_000_000n, 3_000_000n] });
  const store = new LoopInSwapStore(t.db);
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  const b = newSwap([t.outpoints[1]], 2_000_000n, 2);
  const c = newSwap([t.outpoints[2]], 3_000_000n, 3);
  for (const s of [a, b, c]) await store.createSwap(s);
  // a: armed, then Failed (still watched); b: never armed, Failed; c: pending.
  await store.transition(a.swapHash, "InitHtlcTx", "OnHtlcInitiated");
  await store.markArmed(a.swapHash);
  await store.transition(a.swapHash, "SignHtlcTx", "OnHtlcTxSigned");
  await store.transition(a.swapHash, "MonitorInvoiceAndHtlcTx", "OnSwapTimedOut", { releaseDeposits: true });
  await store.transition(b.swapHash, "InitHtlcTx", "OnError");
  await store.transition(b.swapHash, "UnlockDeposits", "OnError", { releaseDeposits: true });
  const hex = (l: { swapHashHex: string }[]) => l.map((s) => s.swapHashHex);
  assertEquals(hex(await store.listSwaps({ pendingOnly: true })), [bytesToHex(c.swapHash)]);
  assertEquals(hex(await store.listSwaps({ watchedOnly: true })), [bytesToHex(a.swapHash)]);
  assertEquals(
    hex(await store.listSwaps({ activeOnly: true })).sort(),
    [a, c].map((s) => bytesToHex(s.swapHash)).sort(),
  );
  assertEquals((await store.listSwaps()).length, 3);
  assertEquals((await store.listSwaps({ activeOnly: true }))[0].deposits.length, 1);
  await store.update(a.swapHash, {
    watchEnded: { at: new Date(), reason: "spent elsewhere", txid: "11".repeat(32) },
  }, {
    reason: "watch ended",
  });
  assertEquals(hex(await store.listSwaps({ watchedOnly: true })), []);
  assertEquals((await store.getSwap(a.swapHash))!.watchEndTxid, "11".repeat(32));
});

Deno.test("depositPath: releases touch only LoopingIn; an HTLC on chain takes a deposit from any live state", () => {
  assertEquals(depositPath("LoopingIn", "OnError"), ["OnError"]);
  assertEquals(depositPath("Deposited", "OnError"), []);
  assertEquals(depositPath("WaitForExpirySweep", "OnError"), []);
  assertEquals(depositPath("LoopingIn", "OnLoopedIn"), ["OnLoopedIn"]);
  assertEquals(depositPath("LoopedIn", "OnLoopedIn"), []);
  assertEquals(depositPath("Deposited", "OnLoopedIn"), null);
  assertEquals(depositPath("Deposited", "OnSweepingHtlcTimeout"), ["OnSweepingHtlcTimeout"]);
  assertEquals(depositPath("Replaced", "OnSweepingHtlcTimeout"), ["OnRevived", "OnSweepingHtlcTimeout"]);
  assertEquals(depositPath("PublishExpirySweep", "OnSweepingHtlcTimeout"), [
    "OnError",
    "OnSweepingHtlcTimeout",
  ]);
  assertEquals(depositPath("SweepHtlcTimeout", "OnSweepingHtlcTimeout"), []);
  assertEquals(depositPath("Expired", "OnSweepingHtlcTimeout"), null);
  assertEquals(depositPath("SweepHtlcTimeout", "OnHtlcTimeoutSwept"), ["OnHtlcTimeoutSwept"]);
  assertEquals(depositPath("HtlcTimeoutSwept", "OnHtlcTimeoutSwept"), []);
});

Deno.test("kill -9 inside the createSwap transaction leaves nothing half-written (subprocess)", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n, 2_000_000n] });
  t.db.close();
  const script = new URL("./_store_kill_child.ts", import.meta.url);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script.pathname, t.url, ...t.outpoints],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("inside")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  assert(out.includes("inside"), `child said: ${out}`);
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel().catch(() => {});
  const db = await openDb({ url: t.url, network: "regtest" });
  try {
    const store = new LoopInSwapStore(db);
    assertEquals(await store.listSwaps(), []);
    assertEquals((await listDeposits(db.client)).map((d) => [d.state, d.swapHash]), [
      ["Deposited", null],
      ["Deposited", null],
    ]);
    const n = await db.client.execute("SELECT count(*) AS n FROM loopin_swap_updates");
    assertEquals(Number(n.rows[0].n), 0);
    const dh = await db.client.execute(
      "SELECT count(*) AS n FROM deposit_updates WHERE update_state = 'LoopingIn'",
    );
    assertEquals(Number(dh.rows[0].n), 0);
    // And the deposits are usable: a new swap takes them.
    await store.createSwap(newSwap(t.outpoints, 3_000_000n, 9));
  } finally {
    db.close();
  }
});
