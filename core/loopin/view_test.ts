import { assert, assertEquals, assertRejects } from "../../tests/assert.ts";
import { LoopkitError } from "../errors.ts";
import { listLoopIns, loopInViewJson, RECENT_MS, showLoopIn } from "./view.ts";
import { LoopInSwapStore } from "./store.ts";
import { newSwap, tempLoopInDb } from "./_store_testing.ts";
import { armedSwap, hexOf } from "./_sync_testing.ts";

const T0 = new Date("2026-01-02T00:00:00Z");

Deno.test("list: pending and watched swaps always, final ones only while recent; --all every one", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n, 2_000_000n, 3_000_000n] });
  const store = new LoopInSwapStore(t.db, { now: () => T0 });
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1); // pending
  const b = newSwap([t.outpoints[1]], 2_000_000n, 2); // never armed, Failed
  const c = newSwap([t.outpoints[2]], 3_000_000n, 3); // armed, Failed: watched
  for (const s of [a, b, c]) await store.createSwap(s);
  await store.transition(b.swapHash, "InitHtlcTx", ["OnError", "OnError"], { releaseDeposits: true });
  await store.transition(c.swapHash, "InitHtlcTx", "OnHtlcInitiated");
  await store.markArmed(c.swapHash);
  await store.transition(c.swapHash, "SignHtlcTx", ["OnHtlcTxSigned", "OnSwapTimedOut"], {
    releaseDeposits: true,
  });
  const hashes = (l: { swap: { swapHashHex: string } }[]) => l.map((v) => v.swap.swapHashHex);
  assertEquals(hashes(await listLoopIns(t.db, { now: T0 })).length, 3);
  const later = new Date(T0.getTime() + RECENT_MS + 1);
  const recent = await listLoopIns(t.db, { now: later });
  assertEquals(hashes(recent), [hexOf(a.swapHash), hexOf(c.swapHash)]);
  assertEquals(recent.map((v) => [v.pending, v.watched]), [[true, false], [false, true]]);
  assertEquals(hashes(await listLoopIns(t.db, { all: true, now: later })).length, 3);
});

Deno.test("show: history, deposits, HTLC txids, deadline and what it waits for; JSON without the preimage", async () => {
  const f = await armedSwap({ now: () => T0 });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "accepted");
  await f.store.update(f.hash, { paymentDeadlineStartedAt: T0, paymentDeadlineSource: "risk_accepted" });
  const v = await showLoopIn(f.t.db, hexOf(f.hash), { now: new Date(T0.getTime() + 20_000) });
  assertEquals(v.paymentDeadline, new Date(T0.getTime() + 60_000));
  assert(v.waitingFor.includes("40 s left"), v.waitingFor);
  assertEquals(v.history.map((h) => h.state).slice(0, 3), ["InitHtlcTx", "SignHtlcTx", "SignHtlcTx"]);
  const j = loopInViewJson(v);
  assertEquals(j.htlc_txids, f.txids);
  assertEquals(j.deposits.map((d) => [d.outpoint, d.value_sat, d.state]), [
    [f.t.outpoints[0], "1000000", "LoopingIn"],
    [f.t.outpoints[1], "2000000", "LoopingIn"],
  ]);
  assertEquals([j.state_rpc, j.change_sat, j.risk_decision], [
    "MONITOR_INVOICE_HTLC_TX",
    "500000",
    "accepted",
  ]);
  assert(!JSON.stringify(j).includes(hexOf(f.rec.preimage)), "the preimage never leaves the database");
  const err = await assertRejects(() => showLoopIn(f.t.db, "00".repeat(32)), LoopkitError);
  assertEquals([err.code, err.exitCode], ["loopin_not_found", 1]);
  const bad = await assertRejects(() => showLoopIn(f.t.db, "xyz"), LoopkitError);
  assertEquals([bad.code, bad.exitCode], ["invalid_swap_hash", 2]);
});
