import { assert, assertEquals } from "../../tests/assert.ts";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { RawTx, Transaction } from "@scure/btc-signer";
import { listDeposits } from "../deposits/store.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import { syncExitCode, type SyncLoopInDeps, syncLoopIns, TIMEOUT_SWEEP_BUMP_BLOCKS } from "./sync.ts";
import { txidOfRaw } from "./htlc_tx.ts";
import { buildHtlcTimeoutSweep, witnessV0Sighash } from "./timeout_sweep.ts";
import { armedSwap, armedSwaps, FakeSyncLnd, FakeSyncServer, hexOf, unavailable } from "./_sync_testing.ts";
import { newSwap, tempLoopInDb } from "./_store_testing.ts";
import { LoopInSwapStore } from "./store.ts";
import type { HtlcVariant, LoopInState } from "./types.ts";
import type { Db } from "../db/db.ts";

const T0 = new Date("2026-01-02T00:00:00Z");

function deps(
  db: Db,
  lnd: FakeSyncLnd,
  server: FakeSyncServer | null,
  clock: { now: Date },
  extra: Partial<SyncLoopInDeps> = {},
): SyncLoopInDeps & { opened: () => number } {
  let opened = 0;
  return {
    db,
    network: "regtest",
    lnd,
    server: () => {
      opened++;
      if (!server) return Promise.reject(new Error("swap server unreachable (test)"));
      return Promise.resolve(server);
    },
    now: () => clock.now,
    ownerAlive: () => false,
    ...extra,
    opened: () => opened,
  };
}

const states = async (db: Db) => (await listDeposits(db.client)).map((d) => d.state);

/** Snapshot of everything a failed run must not change. */
async function snapshot(db: Db) {
  const q = async (sql: string) =>
    (await db.client.execute(sql)).rows.map((r) =>
      JSON.stringify(
        r,
        (_k, v) =>
          typeof v === "bigint" ? v.toString() : v instanceof ArrayBuffer ? hexOf(new Uint8Array(v)) : v,
      )
    );
  return {
    swaps: await q("SELECT * FROM loopin_swaps"),
    deposits: await q("SELECT * FROM deposits"),
    updates: await q("SELECT * FROM loopin_swap_updates"),
    links: await q("SELECT * FROM loopin_swap_deposits"),
  };
}

Deno.test("nothing pending or watched: no lnd call and no swap-server connection", async () => {
  await using t = await tempLoopInDb();
  const lnd = new FakeSyncLnd();
  const d = deps(t.db, lnd, null, { now: T0 });
  const r = await syncLoopIns(d, { listenMs: 30_000 });
  assertEquals(r.swaps, []);
  assertEquals(d.opened(), 0);
  assertEquals(lnd.calls, []);
  assertEquals(syncExitCode(r), 0);
});

Deno.test("settlement wins over a persisted rejection and an elapsed deadline (review §1.6)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "accepted");
  await f.store.recordRiskDecision(f.hash, "rejected");
  clock.now = new Date(T0.getTime() + 3_600_000);
  f.lnd.invoices.set(hexOf(f.hash), "SETTLED");
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "Succeeded");
  assertEquals(await states(f.t.db), ["LoopedIn", "LoopedIn"]);
  assert(!f.lnd.calls.includes("cancelInvoice"), f.lnd.calls.join());
  const h = await f.store.history(f.hash);
  assertEquals(h.slice(-2).map((x) => x.state), ["PaymentReceived", "Succeeded"]);
});

Deno.test("no deadline before risk acceptance (scenario 10): nothing canceled however long it waits", async () => {
  const clock = { now: T0 };
  // Deposits confirmed at 298 and tip 300: the legacy 6-confirmation rule does not hold either.
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  for (const later of [60_000, 3_600_000, 86_400_000]) {
    clock.now = new Date(T0.getTime() + later);
    const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
    assertEquals(r.swaps[0].state, "MonitorInvoiceAndHtlcTx");
    assertEquals(r.swaps[0].error, undefined);
  }
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals(s.paymentDeadlineStartedAt, null);
  assertEquals(await states(f.t.db), ["LoopingIn", "LoopingIn"]);
  assert(!f.lnd.calls.includes("cancelInvoice"));
});

Deno.test("a persisted acceptance arms the deadline with the elapsed time kept (scenarios 11, 14)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "accepted"); // at T0 (store clock)
  // A "restart" 45 s later: the deadline (60 s) counts from the stored decision time, not from now.
  clock.now = new Date(T0.getTime() + 45_000);
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  let s = (await f.store.getSwap(f.hash))!;
  assertEquals(s.paymentDeadlineStartedAt, T0);
  assertEquals(s.paymentDeadlineSource, "risk_accepted");
  assertEquals(await states(f.t.db), ["LoopingIn", "LoopingIn"]);
  // 60 s after the decision (not after the restart): cancel acknowledged, deposits released, still monitoring.
  clock.now = new Date(T0.getTime() + 60_000);
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "MonitorInvoiceAndHtlcTx");
  assertEquals(await states(f.t.db), ["Deposited", "Deposited"]);
  s = (await f.store.getSwap(f.hash))!;
  assert(s.invoiceCanceledAt);
  assertEquals(f.lnd.invoices.get(hexOf(f.hash)), "CANCELED");
  // Still watched: armed, not final.
  assertEquals((await f.store.listSwaps({ watchedOnly: true })).length, 1);
});

Deno.test("legacy rule: the deadline starts once every deposit has 6 confirmations, persisted (scenarios 18, 20)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 100 });
  await using _t = f.t;
  f.lnd.tip = 104; // 5 confirmations
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals((await f.store.getSwap(f.hash))!.paymentDeadlineStartedAt, null);
  f.lnd.tip = 105; // 6 confirmations: start = now
  clock.now = new Date(T0.getTime() + 10_000);
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals([s.paymentDeadlineStartedAt, s.paymentDeadlineSource], [clock.now, "legacy_confirmations"]);
  // Later runs keep the persisted start (Loop would re-arm a full timeout on every restart).
  clock.now = new Date(T0.getTime() + 50_000);
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals((await f.store.getSwap(f.hash))!.paymentDeadlineStartedAt, new Date(T0.getTime() + 10_000));
  assertEquals(await states(f.t.db), ["LoopingIn", "LoopingIn"]);
  clock.now = new Date(T0.getTime() + 70_000);
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(await states(f.t.db), ["Deposited", "Deposited"]);
});

Deno.test("deadline passed with an HTLC variant confirmed: SweepHtlcTimeout, deposits never released (review §1.2)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "accepted");
  f.lnd.confirmations.set(f.txids.extreme, 290); // 11 confirmations at tip 300
  clock.now = new Date(T0.getTime() + 120_000);
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "SweepHtlcTimeout");
  assertEquals(await states(f.t.db), ["SweepHtlcTimeout", "SweepHtlcTimeout"]);
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals(s.confirmedHtlc, { variant: "extreme", txid: f.txids.extreme, height: 290 });
  assert(s.invoiceCanceledAt, "the cancel is acknowledged before SweepHtlcTimeout");
  assertEquals(s.depositsReleasedAt, null);
  // Nothing published before the CLTV (1200).
  assertEquals(f.lnd.published, []);
});

Deno.test("an HTLC variant with only 2 confirmations is not acted on yet", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  f.lnd.confirmations.set(f.txids.standard, 299);
  f.lnd.tip = 1250; // CLTV passed: cancel, and with no 3-conf HTLC the swap fails (still watched)
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(
    r.swaps[0].state,
    "MonitorHtlcTimeoutSweep",
    "at tip 1250 the HTLC at 299 is deep: swept at once",
  );
  // The same facts with the HTLC 2 blocks deep: the deposits are in that HTLC, so nothing is released (it would
  // hand back outputs that are spent); the invoice cancel is acknowledged and the swap waits for the 3rd block.
  const g = await armedSwap({ now: () => clock.now });
  await using _u = g.t;
  g.lnd.tip = 1250;
  g.lnd.confirmations.set(g.txids.standard, 1249);
  const r2 = await syncLoopIns(deps(g.t.db, g.lnd, null, clock), { listenMs: 0 });
  assertEquals([r2.swaps[0].state, r2.swaps[0].error], ["MonitorInvoiceAndHtlcTx", undefined]);
  assert(r2.swaps[0].waitingFor.includes(`2 of 3 confirmations`), r2.swaps[0].waitingFor);
  assertEquals(await states(g.t.db), ["LoopingIn", "LoopingIn"]);
  assertEquals(g.lnd.invoices.get(hexOf(g.hash)), "CANCELED");
  assertEquals((await g.store.getSwap(g.hash))!.depositsReleasedAt, null);
  // One block later it has 3: SweepHtlcTimeout, and past the CLTV the sweep is built at once.
  g.lnd.tip = 1251;
  const r3 = await syncLoopIns(deps(g.t.db, g.lnd, null, clock), { listenMs: 0 });
  assertEquals(r3.swaps[0].state, "MonitorHtlcTimeoutSweep", "past the CLTV the sweep is built at once");
  assertEquals(await states(g.t.db), ["SweepHtlcTimeout", "SweepHtlcTimeout"]);
});

/** The server published `variant`, confirmed at `height`: it spends both deposits of the fixture. */
function spentByHtlc(f: Awaited<ReturnType<typeof armedSwap>>, variant: HtlcVariant, height: number) {
  f.lnd.confirmations.set(f.txids[variant], height);
  for (const [i, op] of f.t.outpoints.entries()) {
    f.lnd.spends.set(op, { spendingTxid: f.txids[variant], spendingHeight: height, spendingInputIndex: i });
  }
}

/** The four release points of an armed swap, each brought about on a fresh fixture. */
const RELEASE_POINTS: {
  name: string;
  setup: (f: Awaited<ReturnType<typeof armedSwap>>, clock: { now: Date }) => Promise<void>;
  released: LoopInState;
  /** State after the run that sees the HTLC (past the CLTV the sweep is built in the same run). */
  swept?: LoopInState;
}[] = [
  {
    name: "payment deadline passed",
    setup: async (f, clock) => {
      await f.store.recordRiskDecision(f.hash, "accepted");
      clock.now = new Date(T0.getTime() + 120_000);
    },
    released: "MonitorInvoiceAndHtlcTx",
  },
  {
    name: "CLTV reached",
    setup: (f) => {
      f.lnd.tip = f.cltv + 1;
      return Promise.resolve();
    },
    released: "Failed",
    swept: "MonitorHtlcTimeoutSweep",
  },
  {
    name: "risk rejected",
    setup: async (f) => {
      await f.store.recordRiskDecision(f.hash, "rejected");
    },
    released: "Failed",
  },
  {
    name: "UnlockDeposits (armed)",
    setup: async (f) => {
      await f.store.transition(f.hash, "MonitorInvoiceAndHtlcTx", "OnError", { reason: "test: unlocking" });
    },
    released: "Failed",
  },
];

for (const point of RELEASE_POINTS) {
  Deno.test(`${point.name}: a slow lnd (HTLC confirmed, answers after the window) releases nothing, exit 75; the next run sweeps`, async () => {
    const clock = { now: T0 };
    const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
    await using _t = f.t;
    await point.setup(f, clock);
    spentByHtlc(f, "high", 290);
    f.lnd.slowChain = true;
    const stateBefore = (await f.store.getSwap(f.hash))!.state;
    const before = await snapshot(f.t.db);
    const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
    assertEquals([r.swaps[0].state, r.swaps[0].error?.code, syncExitCode(r)], [
      stateBefore,
      "loopin_release_ambiguous",
      75,
    ]);
    assert(r.swaps[0].error!.message.includes(f.t.outpoints[0]), r.swaps[0].error!.message);
    const after = await snapshot(f.t.db);
    assertEquals([after.deposits, after.links], [before.deposits, before.links]);
    assertEquals(await states(f.t.db), ["LoopingIn", "LoopingIn"]);
    const s = (await f.store.getSwap(f.hash))!;
    assertEquals([s.state, s.depositsReleasedAt], [stateBefore, null]);
    // lnd answers in time again: the HTLC is recognised, the deposits go to the timeout path, never released.
    f.lnd.slowChain = false;
    const r2 = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
    assertEquals([r2.swaps[0].state, r2.swaps[0].error], [point.swept ?? "SweepHtlcTimeout", undefined]);
    assertEquals(await states(f.t.db), ["SweepHtlcTimeout", "SweepHtlcTimeout"]);
    assertEquals((await f.store.getSwap(f.hash))!.depositsReleasedAt, null);
  });

  Deno.test(`${point.name}: deposits listed unspent by lnd's wallet are released as before, even with a slow lnd`, async () => {
    const clock = { now: T0 };
    const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
    await using _t = f.t;
    await point.setup(f, clock);
    f.lnd.slowChain = true;
    const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
    assertEquals([r.swaps[0].state, r.swaps[0].error], [point.released, undefined]);
    assertEquals(await states(f.t.db), ["Deposited", "Deposited"]);
    assert(f.lnd.calls.includes("listUnspent"));
    assertEquals(f.lnd.invoices.get(hexOf(f.hash)), "CANCELED");
  });
}

Deno.test("deposits listed unspent by an lnd that is not synced to the chain are not released (exit 75)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  f.lnd.synced = false;
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.code], [
    "MonitorInvoiceAndHtlcTx",
    "loopin_release_ambiguous",
  ]);
  assertEquals(await states(f.t.db), ["LoopingIn", "LoopingIn"]);
  f.lnd.synced = true;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["Failed", undefined]);
  assertEquals(await states(f.t.db), ["Deposited", "Deposited"]);
});

Deno.test("an HTLC variant in the mempool (deposits spent, no confirmation yet) keeps the deposits locked at the deadline, exit 75", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "accepted");
  clock.now = new Date(T0.getTime() + 120_000);
  for (const op of f.t.outpoints) f.lnd.mempoolSpent.add(op);
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.exitCode], ["MonitorInvoiceAndHtlcTx", 75]);
  assertEquals(await states(f.t.db), ["LoopingIn", "LoopingIn"]);
  // It confirms: 1 block is a chain fact (held, no error); 3 blocks: SweepHtlcTimeout.
  f.lnd.mempoolSpent.clear();
  spentByHtlc(f, "standard", 300);
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["MonitorInvoiceAndHtlcTx", undefined]);
  assert(r.swaps[0].waitingFor.includes("1 of 3 confirmations"), r.swaps[0].waitingFor);
  assertEquals(await states(f.t.db), ["LoopingIn", "LoopingIn"]);
  f.lnd.tip = 302;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "SweepHtlcTimeout");
  assertEquals((await f.store.getSwap(f.hash))!.depositsReleasedAt, null);
});

Deno.test("a deposit spent in a block by a transaction that is no HTLC variant: released (no variant can confirm), still watched", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  f.lnd.spends.set(f.t.outpoints[1], {
    spendingTxid: "ee".repeat(32),
    spendingHeight: 299,
    spendingInputIndex: 0,
  });
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["Failed", undefined]);
  assertEquals((await f.store.listSwaps({ watchedOnly: true })).length, 1);
  // The same spend not yet answered by lnd: ambiguous.
  const g = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _u = g.t;
  await g.store.recordRiskDecision(g.hash, "rejected");
  g.lnd.mempoolSpent.add(g.t.outpoints[1]);
  const r2 = await syncLoopIns(deps(g.t.db, g.lnd, null, clock), { listenMs: 0 });
  assertEquals([r2.swaps[0].state, r2.swaps[0].error?.code], [
    "MonitorInvoiceAndHtlcTx",
    "loopin_release_ambiguous",
  ]);
  assertEquals(await states(g.t.db), ["LoopingIn", "LoopingIn"]);
});

Deno.test("risk rejection after signing: cancel acknowledged, deposits released, Failed, still watched; a late HTLC is swept (review §1.3)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "Failed");
  assertEquals(await states(f.t.db), ["Deposited", "Deposited"]);
  assertEquals(f.lnd.invoices.get(hexOf(f.hash)), "CANCELED");
  assertEquals((await f.store.listSwaps({ watchedOnly: true })).map((s) => s.swapHashHex), [hexOf(f.hash)]);
  // Months later the server publishes the high-fee variant.
  f.lnd.confirmations.set(f.txids.high, 900);
  f.lnd.tip = 910;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "SweepHtlcTimeout");
  assertEquals(await states(f.t.db), ["SweepHtlcTimeout", "SweepHtlcTimeout"]);
  assertEquals((await f.store.getSwap(f.hash))!.confirmedHtlc?.variant, "high");
});

Deno.test("an unacknowledged cancel keeps the deposits locked and changes nothing (review §1.7, exit 75)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  f.lnd.cancelError = unavailable("Invoices.CancelInvoice");
  const before = await snapshot(f.t.db);
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].error?.exitCode, 75);
  assertEquals(syncExitCode(r), 75);
  assertEquals(await snapshot(f.t.db), before);
  // lnd answers the cancel but the invoice still reads OPEN: not acknowledged either.
  f.lnd.cancelResult = "OPEN";
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].error?.code, "loopin_cancel_unacknowledged");
  assertEquals(await snapshot(f.t.db), before);
  // Next run: acknowledged.
  f.lnd.cancelResult = "CANCELED";
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "Failed");
});

Deno.test("a CancelInvoice error loopkit does not map is read back with LookupInvoice: CANCELED releases, SETTLED succeeds, OPEN waits", async () => {
  for (
    const [lndState, swapState, deposits] of [
      ["CANCELED", "Failed", "Deposited"],
      ["SETTLED", "Succeeded", "LoopedIn"],
      ["OPEN", "MonitorInvoiceAndHtlcTx", "LoopingIn"],
    ] as const
  ) {
    const clock = { now: T0 };
    const f = await armedSwap({ now: () => clock.now });
    await using _t = f.t;
    await f.store.recordRiskDecision(f.hash, "rejected");
    f.lnd.invoices.set(hexOf(f.hash), lndState);
    f.lnd.cancelError = new LndError("Invoices.CancelInvoice", "unknown", "invoice is already cancelled");
    const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
    assertEquals(r.swaps[0].state, swapState, lndState);
    assertEquals(r.swaps[0].error?.exitCode, lndState === "OPEN" ? 75 : undefined, lndState);
    assertEquals(await states(f.t.db), [deposits, deposits], lndState);
    assert(f.lnd.calls.includes("lookupInvoice"), lndState);
  }
});

Deno.test("lnd errors while monitoring change nothing and exit 75; the next run completes (review §1.8)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  const before = await snapshot(f.t.db);
  f.lnd.failNext.add("lookupInvoice");
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].error?.exitCode, r.swaps[0].state], [75, "MonitorInvoiceAndHtlcTx"]);
  assertEquals(await snapshot(f.t.db), before);
  f.lnd.failNext.add("registerConfirmation");
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].error?.exitCode, 75);
  f.lnd.invoices.set(hexOf(f.hash), "SETTLED");
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].error, r.swaps[0].state], [undefined, "Succeeded"]);
});

Deno.test("CLTV reached with no HTLC: cancel, release, Failed and watched (scenario 22)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  f.lnd.tip = 1200; // tip − 1 < CLTV: not yet
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "MonitorInvoiceAndHtlcTx");
  f.lnd.tip = 1201;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "Failed");
  assertEquals(await states(f.t.db), ["Deposited", "Deposited"]);
  assertEquals(f.lnd.invoices.get(hexOf(f.hash)), "CANCELED");
});

Deno.test("timeout sweep: nothing before the CLTV, then the confirmed variant's output is swept, stored before publishing, republished byte-identical until 3 confirmations", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  f.lnd.confirmations.set(f.txids.high, 500);
  f.lnd.tip = 600;
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "SweepHtlcTimeout");
  f.lnd.tip = 1199;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, f.lnd.published.length, f.lnd.signCalls.length], [
    "SweepHtlcTimeout",
    0,
    0,
  ]);
  // At the CLTV; the first publish fails (lnd restarted): the sweep is stored anyway.
  f.lnd.tip = 1200;
  f.lnd.publishError = unavailable("WalletKit.PublishTransaction");
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.exitCode], ["MonitorHtlcTimeoutSweep", 75]);
  const s = (await f.store.getSwap(f.hash))!;
  assert(s.timeoutSweep);
  assertEquals(f.lnd.published.length, 1);
  assertEquals(f.lnd.published[0], s.timeoutSweep.tx);
  // The sweep spends output 0 of the high-fee variant (decision 6), lock time = tip ≥ CLTV, sequence 1.
  const sweep = RawTx.decode(s.timeoutSweep.tx);
  assertEquals(sweep.inputs.length, 1);
  assertEquals(hexOf(sweep.inputs[0].txid), f.txids.high); // RawTx gives txids in display order
  assertEquals([sweep.inputs[0].index, sweep.inputs[0].sequence, sweep.lockTime], [0, 1, 1200]);
  assertEquals(txidOfRaw(s.timeoutSweep.tx), s.timeoutSweep.txid);
  // Signed as SIGN_METHOD_WITNESS_V0, SIGHASH_ALL, with the HTLC key locator; the signature verifies.
  const desc = f.lnd.signCalls[0][0];
  assertEquals([desc.signMethod, desc.sighash, desc.keyDesc.keyLocator], ["SIGN_METHOD_WITNESS_V0", 1, {
    family: 42060,
    index: 5,
  }]);
  const htlcValue = RawTx.decode(f.txs.high).outputs[0].amount;
  const unsigned = RawTx.encode({ ...sweep, segwitFlag: false, witnesses: undefined });
  const digest = witnessV0Sighash(unsigned, 0, f.htlcScript, htlcValue);
  const witness = sweep.witnesses![0];
  const der = witness[0].subarray(0, witness[0].length - 1);
  assert(
    secp256k1.verify(
      secp256k1.Signature.fromBytes(der, "der").toBytes("compact"),
      digest,
      f.rec.htlcKey.rawKeyBytes,
      { prehash: false },
    ),
  );
  // Next runs: republished unchanged (even at another tip and fee estimate), never re-signed.
  f.lnd.publishError = null;
  f.lnd.tip = 1205;
  f.lnd.feeRate = 50_000n;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(f.lnd.published.length, 2);
  assertEquals(f.lnd.published[1], f.lnd.published[0]);
  assertEquals(f.lnd.signCalls.length, 1);
  // 2 confirmations: waiting; 3: swept, deposits too.
  f.lnd.confirmations.set(s.timeoutSweep.txid, 1204);
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "MonitorHtlcTimeoutSweep");
  f.lnd.tip = 1206;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "HtlcTimeoutSwept");
  assertEquals(await states(f.t.db), ["HtlcTimeoutSwept", "HtlcTimeoutSwept"]);
  assertEquals((await f.store.listSwaps({ activeOnly: true })).length, 0);
});

Deno.test("a signing failure at the CLTV stores nothing; the next run signs (lnd restarted mid-sync)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  f.lnd.confirmations.set(f.txids.standard, 500);
  f.lnd.tip = 1201;
  f.lnd.failNext.add("signOutputRaw");
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.exitCode], ["SweepHtlcTimeout", 75]);
  assertEquals((await f.store.getSwap(f.hash))!.timeoutSweep, null);
  assertEquals(f.lnd.published, []);
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "MonitorHtlcTimeoutSweep");
  assertEquals(f.lnd.published.length, 1);
});

Deno.test("the armed watch ends only when a deposit is spent by a transaction that is not an HTLC variant, buried under 6 blocks", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  // An HTLC variant in the mempool / 1 conf spending the deposit is not "elsewhere".
  f.lnd.spends.set(f.t.outpoints[0], {
    spendingTxid: f.txids.standard,
    spendingHeight: 300,
    spendingInputIndex: 0,
  });
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals((await f.store.getSwap(f.hash))!.watchEndedAt, null);
  // An unconfirmed foreign spend is not a chain fact yet.
  const other = "ee".repeat(32);
  f.lnd.spends.set(f.t.outpoints[0], { spendingTxid: other, spendingHeight: 0, spendingInputIndex: 0 });
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals((await f.store.getSwap(f.hash))!.watchEndedAt, null);
  // Confirmed, but not yet buried under 6 blocks (a reorg could bring the deposit back): still watched.
  f.lnd.spends.set(f.t.outpoints[0], { spendingTxid: other, spendingHeight: 301, spendingInputIndex: 0 });
  f.lnd.tip = 301 + 6 - 2;
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals((await f.store.getSwap(f.hash))!.watchEndedAt, null);
  f.lnd.tip = 301 + 6 - 1;
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals(s.watchEndTxid, other);
  assert((await f.store.history(f.hash)).some((h) => h.reason.includes(other)));
  // Not watched any more: a run makes no lnd call at all.
  f.lnd.calls = [];
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps, f.lnd.calls], [[], []]);
});

Deno.test("a swap left in InitHtlcTx/SignHtlcTx: live owner skipped; dead owner unwound (abandon push, acknowledged cancel); armed resumes monitoring", async () => {
  await using t = await tempLoopInDb({ amounts: [1_000_000n, 2_000_000n, 3_000_000n] });
  const store = new LoopInSwapStore(t.db, { now: () => T0 });
  const a = newSwap([t.outpoints[0]], 1_000_000n, 1);
  const b = newSwap([t.outpoints[1]], 2_000_000n, 2);
  await store.createSwap(a);
  await store.setInvoice(a.swapHash, "lnbcrt1");
  await store.createSwap(b);
  const lnd = new FakeSyncLnd();
  lnd.invoices.set(hexOf(a.swapHash), "OPEN");
  const server = new FakeSyncServer();
  const clock = { now: T0 };
  // Owner alive: nothing happens, and no server connection.
  let d = deps(t.db, lnd, server, clock, { ownerAlive: () => true });
  let r = await syncLoopIns(d, { listenMs: 0 });
  assertEquals(r.swaps.map((s) => s.state), ["InitHtlcTx", "InitHtlcTx"]);
  assertEquals([d.opened(), await states(t.db)], [0, ["LoopingIn", "LoopingIn", "Deposited"]]);
  // Owner gone.
  d = deps(t.db, lnd, server, clock, { ownerAlive: () => false });
  r = await syncLoopIns(d, { listenMs: 0 });
  assertEquals(r.swaps.map((s) => s.state), ["Failed", "Failed"]);
  assertEquals(await states(t.db), ["Deposited", "Deposited", "Deposited"]);
  assertEquals(server.htlcPushes.map((p) => [hexOf(p.swapHash), p.standard, p.high, p.extreme]), [
    [hexOf(a.swapHash), undefined, undefined, undefined],
  ]);
  assertEquals(lnd.invoices.get(hexOf(a.swapHash)), "CANCELED");
  // An armed SignHtlcTx with a dead owner resumes in the monitor state (review §1.1), deposits stay locked.
  const c = newSwap([t.outpoints[2]], 3_000_000n, 3);
  await store.createSwap(c);
  await store.recordServerParams(c.swapHash, {
    htlcServerPubKey: secp256k1.getPublicKey(new Uint8Array(32).fill(9), true),
    htlcExpiry: 1200,
    feeRates: { standard: 1n, high: 2n, extreme: 3n },
    timeoutSweepPkScript: new Uint8Array(34),
  });
  await store.markArmed(c.swapHash);
  lnd.invoices.set(hexOf(c.swapHash), "OPEN");
  r = await syncLoopIns(deps(t.db, lnd, server, clock), { listenMs: 0 });
  assertEquals(r.swaps.find((s) => s.swapHash === hexOf(c.swapHash))?.state, "MonitorInvoiceAndHtlcTx");
  assertEquals((await states(t.db))[2], "LoopingIn");
});

Deno.test("listening: a risk acceptance is persisted with the store's time and the payment seen while listening", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  const server = new FakeSyncServer();
  server.queue = [{ kind: "risk_accepted", swapHash: f.hash }];
  // The server pays right after accepting.
  server.afterDeliver = () => f.lnd.invoices.set(hexOf(f.hash), "SETTLED");
  const r = await syncLoopIns(deps(f.t.db, f.lnd, server, clock), { listenMs: 1_000, pollMs: 50 });
  assertEquals(r.swaps[0].state, "Succeeded");
  assertEquals(server.subscriptions, 1);
  assertEquals(r.notifications.map((n) => n.result), ["recorded accepted"]);
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals([s.riskDecision, s.riskDecisionAt], ["accepted", T0]);
  assertEquals(await states(f.t.db), ["LoopedIn", "LoopedIn"]);
  // A re-sent acceptance on the next subscription keeps the first time.
  clock.now = new Date(T0.getTime() + 600_000);
  await syncLoopIns(deps(f.t.db, f.lnd, server, clock), { listenMs: 300, pollMs: 50 });
  assertEquals((await f.store.getSwap(f.hash))!.riskDecisionAt, T0);
});

Deno.test("listening stops as soon as nothing waits; a swap-server outage while listening is retryable and changes nothing", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  const server = new FakeSyncServer();
  server.queue = [{ kind: "risk_rejected", swapHash: f.hash }];
  const started = performance.now();
  const r = await syncLoopIns(deps(f.t.db, f.lnd, server, clock), { listenMs: 20_000, pollMs: 50 });
  assert(performance.now() - started < 5_000, "returned early: nothing waits after the rejection");
  assertEquals(r.swaps[0].state, "Failed");
  // Unreachable server: exit 75, the swap untouched.
  const g = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _u = g.t;
  const before = await snapshot(g.t.db);
  const r2 = await syncLoopIns(deps(g.t.db, g.lnd, null, clock), { listenMs: 1_000 });
  assertEquals(r2.listenError?.exitCode, 75);
  assertEquals(syncExitCode(r2), 75);
  const after = await snapshot(g.t.db);
  assertEquals(after.deposits, before.deposits);
  assertEquals(after.updates, before.updates);
});

/** A sweepless sweep PSBT of the fixture's two deposits: server output + the 500 000 sat change. */
function sweepPsbt(f: Awaited<ReturnType<typeof armedSwap>>, change = 500_000n) {
  const tx = new Transaction({
    allowUnknownOutputs: true,
    allowUnknownInputs: true,
    disableScriptCheck: true,
  });
  const amounts = [1_000_000n, 2_000_000n];
  f.t.outpoints.forEach((op, i) => {
    const [txid, vout] = op.split(":");
    tx.addInput({
      txid,
      index: Number(vout),
      witnessUtxo: { script: f.t.address.pkScript, amount: amounts[i] },
    });
  });
  tx.addOutput({ script: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(3)), amount: 2_499_000n });
  tx.addOutput({ script: f.t.address.pkScript, amount: change });
  return tx.toPSBT();
}

const serverNonce = () => {
  const a = secp256k1.getPublicKey(new Uint8Array(32).fill(5), true);
  const b = secp256k1.getPublicKey(new Uint8Array(32).fill(6), true);
  return Uint8Array.from([...a, ...b]);
};

Deno.test("sweep requests: 'swap not finished yet' before success; after success validated and signed in fresh sessions, always cleaned up", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  const server = new FakeSyncServer();
  const request = (change?: bigint) => ({
    kind: "sweep" as const,
    swapHash: f.hash,
    sweepTxPsbt: sweepPsbt(f, change),
    depositToNonces: new Map(f.t.outpoints.map((op) => [op, serverNonce()])),
    prevoutInfo: f.t.outpoints.map((op, i) => ({
      txid: op.split(":")[0],
      vout: 0,
      valueSat: [1_000_000n, 2_000_000n][i],
      pkScript: f.t.address.pkScript,
    })),
  });
  server.queue = [request()];
  let r = await syncLoopIns(deps(f.t.db, f.lnd, server, clock), { listenMs: 300, pollMs: 50 });
  assertEquals(server.sweeplessPushes.length, 1);
  assertEquals(server.sweeplessPushes[0].errorMessage, "swap not finished yet");
  assertEquals(server.sweeplessPushes[0].signingInfo.size, 0);
  assertEquals(f.lnd.sessions, []);
  // Paid: the same request is signed.
  f.lnd.invoices.set(hexOf(f.hash), "SETTLED");
  server.sweeplessPushes = [];
  r = await syncLoopIns(deps(f.t.db, f.lnd, server, clock), { listenMs: 5_000, pollMs: 50 });
  assertEquals(r.swaps[0].state, "Succeeded");
  assertEquals(server.sweeplessPushes.length, 1);
  const push = server.sweeplessPushes[0];
  assertEquals(push.errorMessage, undefined);
  assertEquals([...push.signingInfo.keys()].sort(), [...f.t.outpoints].sort());
  assertEquals(f.lnd.sessions, [
    "create 1",
    "nonces 1",
    "sign 1",
    "cleanup 1",
    "create 2",
    "nonces 2",
    "sign 2",
    "cleanup 2",
  ]);
  const txid = Transaction.fromPSBT(sweepPsbt(f)).id;
  assertEquals(hexOf(Uint8Array.from(push.txid).reverse()), txid);
  assert((await f.store.getSwap(f.hash))!.sweeplessSigned);
  // A request with the wrong change is refused before any session exists.
  f.lnd.sessions = [];
  server.sweeplessPushes = [];
  server.queue = [request(400_000n)];
  await f.t.db.client.execute("UPDATE loopin_swaps SET sweepless_signed_at = NULL, sweepless_txid = NULL");
  r = await syncLoopIns(deps(f.t.db, f.lnd, server, clock), { listenMs: 300, pollMs: 50 });
  assert(r.notifications.some((n) => n.result.startsWith("refused")), JSON.stringify(r.notifications));
  assertEquals([server.sweeplessPushes.length, f.lnd.sessions.length], [0, 0]);
});

Deno.test("a lookup error that is a refusal of lnd (not a transport error) is retryable too", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  const orig = f.lnd.lookupInvoice.bind(f.lnd);
  let n = 0;
  f.lnd.lookupInvoice = (h) =>
    n++ === 0 ? Promise.reject(new LndError("Lightning.LookupInvoice", "unknown", "boom")) : orig(h);
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].error?.exitCode, 75);
});

Deno.test("a settled invoice whose deposit was swept by its expiry meanwhile ends SucceededTransitioningFailed; the other deposits become LoopedIn (no expiry sweep takes back what was paid for)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  await f.t.db.client.execute({
    sql: "UPDATE deposits SET state = 'WaitForExpirySweep' WHERE amount = 2000000",
  });
  f.lnd.invoices.set(hexOf(f.hash), "SETTLED");
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["SucceededTransitioningFailed", undefined]);
  assertEquals(await states(f.t.db), ["LoopedIn", "WaitForExpirySweep"]);
  const last = (await f.store.history(f.hash)).at(-1)!;
  assert(last.reason.includes("not every deposit can be finalised"), last.reason);
});

Deno.test("legacy rule reads the heights after a deposit refresh when a deposit is stored unconfirmed (scenario 21)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 0 });
  await using _t = f.t;
  f.lnd.tip = 400;
  let refreshed = 0;
  const refreshDeposits = async () => {
    refreshed++;
    await f.t.db.client.execute("UPDATE deposits SET confirmation_height = 390");
  };
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock, { refreshDeposits }), { listenMs: 0 });
  assertEquals(refreshed, 1);
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals([s.paymentDeadlineStartedAt, s.paymentDeadlineSource], [T0, "legacy_confirmations"]);
  // Heights known and the deadline armed: no more refreshes.
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock, { refreshDeposits }), { listenMs: 0 });
  assertEquals(refreshed, 1);
});

Deno.test("while listening, re-evaluations reuse this run's HTLC confirmation answers (the tip is read once)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  const server = new FakeSyncServer();
  await syncLoopIns(deps(f.t.db, f.lnd, server, clock), { listenMs: 600, pollMs: 50 });
  const lookups = f.lnd.calls.filter((x) => x === "lookupInvoice").length;
  assert(lookups > 3, `re-evaluated ${lookups} times`);
  assertEquals(f.lnd.calls.filter((x) => x === "registerConfirmation").length, 3);
});

Deno.test("timeout sweep: a fee estimate that would pay more than 20 % of the HTLC signs and stores nothing (exit 75); a sane estimate later sweeps", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  f.lnd.confirmations.set(f.txids.standard, 500);
  f.lnd.tip = 1200;
  const htlcValue = RawTx.decode(f.txs.standard).outputs[0].amount;
  const cap = htlcValue * 20n / 100n;
  // A rate at which the sweep's fee (at least 583 WU) is above the cap, computed from the rule: rate × 583 / 1000 > cap.
  f.lnd.feeRate = (cap + 1n) * 1000n / 583n + 1_000n;
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.code, r.swaps[0].error?.exitCode], [
    "SweepHtlcTimeout",
    "loopin_sweep_fee_too_high",
    75,
  ]);
  assertEquals([f.lnd.signCalls.length, f.lnd.published.length], [0, 0]);
  assertEquals((await f.store.getSwap(f.hash))!.timeoutSweep, null);
  assertEquals(syncExitCode(r), 75);
  // The estimate comes down: the sweep is built with a fee within the cap, stored and published.
  f.lnd.feeRate = 2_000n;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "MonitorHtlcTimeoutSweep");
  const stored = (await f.store.getSwap(f.hash))!.timeoutSweep!;
  assert(stored.feeSat !== null && stored.feeSat <= cap, `fee ${stored.feeSat} within cap ${cap}`);
  assertEquals(f.lnd.published.length, 1);
});

Deno.test("kill -9 while the timeout sweep is being published: it was stored first; the next run republishes the same bytes (subprocess)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "loopkit-sync-kill-" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", new URL("./_sync_kill_child.ts", import.meta.url).pathname, dir],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("publishing")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    assert(out.includes("publishing"), `child said: ${out}`);
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel().catch(() => {});
    const { openDb } = await import("../db/db.ts");
    const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
    try {
      const store = new LoopInSwapStore(db);
      const [s] = await store.listSwaps();
      assertEquals(s.state, "MonitorHtlcTimeoutSweep");
      assert(s.timeoutSweep);
      assertEquals(String(s.timeoutSweep.tx.length), out.trim().split(" ")[1]);
      const lnd = new FakeSyncLnd();
      lnd.tip = 1210;
      lnd.feeRate = 99_000n; // a different estimate must not produce a different sweep
      const r = await syncLoopIns(deps(db, lnd, null, { now: T0 }), { listenMs: 0 });
      assertEquals(r.swaps[0].state, "MonitorHtlcTimeoutSweep");
      assertEquals(lnd.published, [s.timeoutSweep.tx]);
      assertEquals(lnd.signCalls.length, 0);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without stored HTLC bytes the confirmed variant is rebuilt from the stored parameters and must match its txid", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  await f.t.db.client.execute(
    "UPDATE loopin_swaps SET htlc_tx_standard = NULL, htlc_tx_high = NULL, htlc_tx_extreme = NULL",
  );
  f.lnd.confirmations.set(f.txids.extreme, 500);
  f.lnd.tip = 1201;
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "MonitorHtlcTimeoutSweep");
  assertEquals(hexOf(RawTx.decode(f.lnd.published[0]).inputs[0].txid), f.txids.extreme);
  // A stored txid the parameters do not rebuild (tampered row): refused, nothing signed or published.
  const g = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _u = g.t;
  await g.t.db.client.execute("UPDATE loopin_swaps SET htlc_tx_high = NULL, fee_rate_high = 3000");
  g.lnd.confirmations.set(g.txids.high, 500);
  g.lnd.tip = 1201;
  const r2 = await syncLoopIns(deps(g.t.db, g.lnd, null, clock), { listenMs: 0 });
  assertEquals([r2.swaps[0].state, r2.swaps[0].error?.code], ["SweepHtlcTimeout", "loopin_htlc_tx_mismatch"]);
  assertEquals([g.lnd.published.length, g.lnd.signCalls.length], [0, 0]);
});

Deno.test("a concurrent run that stored its timeout sweep first wins: ours is never stored or published, theirs is republished", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  f.lnd.confirmations.set(f.txids.standard, 500);
  f.lnd.tip = 1201;
  // Bring the swap to SweepHtlcTimeout, then let "another process" store its sweep while ours is being signed.
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  await f.t.db.client.execute(
    "UPDATE loopin_swaps SET state = 'SweepHtlcTimeout', timeout_sweep_tx = NULL, timeout_sweep_txid = NULL",
  );
  const theirs = Uint8Array.of(1, 2, 3);
  const sign = f.lnd.signOutputRaw.bind(f.lnd);
  f.lnd.signOutputRaw = async (tx, d, p) => {
    const sigs = await sign(tx, d, p);
    await f.store.transition(f.hash, "SweepHtlcTimeout", "OnHtlcTimeoutSweepPublished", {
      set: { timeoutSweep: { tx: theirs, txid: "ab".repeat(32) } },
    });
    return sigs;
  };
  f.lnd.published = [];
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["MonitorHtlcTimeoutSweep", undefined]);
  assertEquals(f.lnd.published, [theirs]);
  assertEquals((await f.store.getSwap(f.hash))!.timeoutSweep?.tx, theirs);
});

/** A store whose writes take a timer tick before they start, counting how many are under way at once. */
class WriteCountingStore extends LoopInSwapStore {
  writes = 0;
  inFlight = 0;
  maxInFlight = 0;
  async #counted<T>(fn: () => Promise<T>): Promise<T> {
    this.writes++;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 2));
      return await fn();
    } finally {
      this.inFlight--;
    }
  }
  override update(...a: Parameters<LoopInSwapStore["update"]>) {
    return this.#counted(() => super.update(...a));
  }
  override transition(...a: Parameters<LoopInSwapStore["transition"]>) {
    return this.#counted(() => super.transition(...a));
  }
}

/** Delays the fake's confirmation answers by `ms` and records how many are in flight at once. */
function delayedConfirmations(lnd: FakeSyncLnd, ms: number, onCall?: () => void) {
  const inner = lnd.registerConfirmation.bind(lnd);
  const seen = { inFlight: 0, max: 0 };
  lnd.registerConfirmation = async (...args) => {
    onCall?.();
    seen.max = Math.max(seen.max, ++seen.inFlight);
    try {
      await new Promise((r) => setTimeout(r, ms));
      return await inner(...args);
    } finally {
      seen.inFlight--;
    }
  };
  return seen;
}

Deno.test("swaps are evaluated 8 at a time (their chain queries overlap), each write its own transaction; reports keep the listing order", async () => {
  const clock = { now: T0 };
  const f = await armedSwaps(20, { now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  for (const s of f.swaps) await f.store.recordRiskDecision(s.hash, "accepted");
  clock.now = new Date(T0.getTime() + 120_000); // every deadline passed: 20 cancels and 20 releases to write
  const seen = delayedConfirmations(f.lnd, 30);
  const store = new WriteCountingStore(f.t.db, { now: () => clock.now });
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock, { store }), { listenMs: 0 });
  assertEquals(r.swaps.map((s) => s.error), f.swaps.map(() => undefined));
  assertEquals(
    r.swaps.map((s) => s.swapHash),
    (await f.store.listSwaps({ activeOnly: true })).map((s) => s.swapHashHex),
  );
  assertEquals(await states(f.t.db), f.t.outpoints.map(() => "Deposited"));
  // 3 variants per swap: more than one swap's queries at once, never more than 8 swaps'.
  assert(seen.max > 3 && seen.max <= 3 * 8, `max ${seen.max} confirmation queries in flight`);
  // The writes: one at a time (two write transactions of one process on one SQLite file block each other).
  assert(store.writes >= 40, `${store.writes} writes`);
  assertEquals(store.maxInFlight, 1);
  // With concurrency 1 the swaps go one after another again.
  const g = await armedSwaps(4, { now: () => clock.now, depositConfHeight: 298 });
  await using _u = g.t;
  const seen1 = delayedConfirmations(g.lnd, 10);
  await syncLoopIns(deps(g.t.db, g.lnd, null, clock), { listenMs: 0, concurrency: 1 });
  assertEquals(seen1.max, 3);
});

Deno.test("an interrupt starts no further swap; the ones under way finish their current step", async () => {
  const clock = { now: T0 };
  const f = await armedSwaps(20, { now: () => clock.now, depositConfHeight: 298 });
  await using _t = f.t;
  for (const s of f.swaps) await f.store.recordRiskDecision(s.hash, "rejected");
  const ac = new AbortController();
  delayedConfirmations(f.lnd, 20, () => ac.abort());
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock, { signal: ac.signal }), { listenMs: 0 });
  assert(r.swaps.length >= 1 && r.swaps.length <= 8, `${r.swaps.length} swaps evaluated`);
  // The evaluated ones completed their step (rejection: released, Failed); the others are untouched.
  assertEquals(r.swaps.map((s) => `${s.state} ${s.error?.code}`), r.swaps.map(() => "Failed undefined"));
  const failed = (await f.store.listSwaps()).filter((s) => s.state === "Failed").length;
  assertEquals(failed, r.swaps.length);
  assertEquals((await states(f.t.db)).filter((x) => x === "LoopingIn").length, 2 * (20 - r.swaps.length));
});

Deno.test("reorg before the sweep is built: the stored HTLC variant is re-checked; another confirmed variant is switched to (one update, history row), none confirmed signs nothing (exit 75)", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  f.lnd.confirmations.set(f.txids.high, 500);
  f.lnd.tip = 600;
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "SweepHtlcTimeout");
  assertEquals((await f.store.getSwap(f.hash))!.confirmedHtlc?.variant, "high");
  // A deep reorg removes the high variant; nothing is confirmed at the CLTV: nothing signed, exit 75.
  f.lnd.confirmations.delete(f.txids.high);
  f.lnd.tip = 1200;
  const before = await snapshot(f.t.db);
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.code, syncExitCode(r)], [
    "SweepHtlcTimeout",
    "loopin_htlc_not_confirmed",
    75,
  ]);
  assertEquals([f.lnd.signCalls.length, f.lnd.published.length], [0, 0]);
  assertEquals(await snapshot(f.t.db), before);
  // The extreme variant is mined instead, 2 blocks deep: the run waits (no error), nothing signed.
  f.lnd.confirmations.set(f.txids.extreme, 1199);
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["SweepHtlcTimeout", undefined]);
  assert(r.swaps[0].waitingFor.includes(`HTLC extreme ${f.txids.extreme} at 2 of 3`), r.swaps[0].waitingFor);
  assertEquals(f.lnd.signCalls.length, 0);
  // 3 confirmations: the swap switches to it (stored with a history row) and sweeps its output.
  f.lnd.tip = 1201;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["MonitorHtlcTimeoutSweep", undefined]);
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals(s.confirmedHtlc, { variant: "extreme", txid: f.txids.extreme, height: 1199 });
  assertEquals(hexOf(RawTx.decode(s.timeoutSweep!.tx).inputs[0].txid), f.txids.extreme);
  const row = (await f.store.history(f.hash)).find((h) => h.reason.includes("no longer has 3 confirmations"));
  assert(row && row.reason.includes(f.txids.high) && row.reason.includes(f.txids.extreme), row?.reason);
});

Deno.test("reorg after the sweep was published: another variant confirmed ⇒ MonitorHtlcTimeoutSweep → SweepHtlcTimeout, rebuilt for it; the HTLC gone ⇒ reported in actions and waitingFor while republishing", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  f.lnd.confirmations.set(f.txids.standard, 500);
  f.lnd.tip = 1201;
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "MonitorHtlcTimeoutSweep");
  const first = (await f.store.getSwap(f.hash))!.timeoutSweep!;
  // The standard variant is reorged out and lnd refuses the sweep (its input is missing).
  f.lnd.confirmations.delete(f.txids.standard);
  f.lnd.publishError = new LndError("WalletKit.PublishTransaction", "unknown", "missing inputs");
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.exitCode], ["MonitorHtlcTimeoutSweep", 75]);
  assert(
    r.swaps[0].actions.some((a) => a.includes(`${f.txids.standard}`) && a.includes("not seen confirmed")),
  );
  assert(r.swaps[0].waitingFor.includes("not seen confirmed now"), r.swaps[0].waitingFor);
  assertEquals((await f.store.getSwap(f.hash))!.timeoutSweep!.tx, first.tx, "the stored sweep is kept");
  // The high variant confirms instead: the stored sweep can never confirm; rebuilt for the high variant.
  f.lnd.publishError = null;
  f.lnd.confirmations.set(f.txids.high, 1199);
  f.lnd.tip = 1202;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["MonitorHtlcTimeoutSweep", undefined]);
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals(s.confirmedHtlc?.variant, "high");
  assert(s.timeoutSweep!.txid !== first.txid);
  assertEquals(hexOf(RawTx.decode(s.timeoutSweep!.tx).inputs[0].txid), f.txids.high);
  assertEquals(f.lnd.published.at(-1), s.timeoutSweep!.tx);
  const h = await f.store.history(f.hash);
  assert(
    h.some((x) =>
      x.state === "SweepHtlcTimeout" && x.event === "OnSweepHtlcTimeout" && x.reason.includes(first.txid)
    ),
    JSON.stringify(h.slice(-3)),
  );
});

Deno.test("fee bump (fsm.md addition 4): unconfirmed 6 blocks after it was built and lnd's estimate pays more ⇒ rebuilt, stored before publishing; the old txid still counts when it is the one that confirms", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  f.lnd.confirmations.set(f.txids.standard, 500);
  f.lnd.tip = 1201;
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].state, "MonitorHtlcTimeoutSweep");
  const first = (await f.store.getSwap(f.hash))!.timeoutSweep!;
  assertEquals(RawTx.decode(first.tx).lockTime, 1201);
  // 5 blocks later at a higher estimate: not yet (republished unchanged).
  f.lnd.feeRate = 10_000n;
  f.lnd.tip = 1201 + TIMEOUT_SWEEP_BUMP_BLOCKS - 1;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([f.lnd.published.at(-1), f.lnd.signCalls.length], [first.tx, 1]);
  // 6 blocks: rebuilt at the new estimate, stored, published.
  f.lnd.tip = 1201 + TIMEOUT_SWEEP_BUMP_BLOCKS;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["MonitorHtlcTimeoutSweep", undefined]);
  const second = (await f.store.getSwap(f.hash))!.timeoutSweep!;
  assert(second.txid !== first.txid);
  assert(second.feeSat! > first.feeSat!, `${second.feeSat} > ${first.feeSat}`);
  const htlcValue = RawTx.decode(f.txs.standard).outputs[0].amount;
  assert(second.feeSat! <= htlcValue * 20n / 100n);
  assertEquals(RawTx.decode(second.tx).lockTime, f.lnd.tip);
  assertEquals(f.lnd.published.at(-1), second.tx);
  assertEquals(f.lnd.signCalls.length, 2);
  const h = await f.store.history(f.hash);
  assert(h.some((x) => x.event === "OnSweepHtlcTimeout" && x.reason.includes(`timeout sweep ${first.txid}`)));
  // The first version is the one that confirms (it was in miners' mempools first).
  const spentAt = f.lnd.tip + 1;
  f.lnd.spends.set(`${f.txids.standard}:0`, {
    spendingTxid: first.txid,
    spendingHeight: spentAt,
    spendingInputIndex: 0,
  });
  f.lnd.confirmations.set(first.txid, spentAt);
  f.lnd.rawTxs.set(first.txid, first.tx);
  f.lnd.tip = spentAt;
  const published = f.lnd.published.length;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, f.lnd.published.length], ["MonitorHtlcTimeoutSweep", published]);
  assert(r.swaps[0].waitingFor.includes(first.txid), r.swaps[0].waitingFor);
  f.lnd.tip = spentAt + 2;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["HtlcTimeoutSwept", undefined]);
  assertEquals(await states(f.t.db), ["HtlcTimeoutSwept", "HtlcTimeoutSwept"]);
  const s = (await f.store.getSwap(f.hash))!;
  assertEquals([s.timeoutSweep!.txid, s.timeoutSweep!.tx, s.timeoutSweep!.confirmedHeight], [
    first.txid,
    first.tx,
    spentAt,
  ]);
  assertEquals(s.timeoutSweep!.feeSat, first.feeSat);
});

Deno.test("fee bump: no rebuild when the estimate gives no higher fee worth a replacement or one above the 20 % cap; a bump cut short by a signing failure keeps the stored sweep", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  f.lnd.confirmations.set(f.txids.standard, 500);
  f.lnd.tip = 1201;
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  const first = (await f.store.getSwap(f.hash))!.timeoutSweep!;
  f.lnd.tip = 1201 + TIMEOUT_SWEEP_BUMP_BLOCKS;
  // Same estimate: the same fee, not more by 1 sat/vB.
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, f.lnd.published.at(-1), f.lnd.signCalls.length], [
    "MonitorHtlcTimeoutSweep",
    first.tx,
    1,
  ]);
  assert(r.swaps[0].waitingFor.includes("no higher fee"), r.swaps[0].waitingFor);
  // An estimate whose fee is above the cap (rate × 583 / 1000 > cap, from the rule): not rebuilt either.
  const cap = RawTx.decode(f.txs.standard).outputs[0].amount * 20n / 100n;
  f.lnd.feeRate = (cap + 1n) * 1000n / 583n + 1_000n;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([f.lnd.published.at(-1), f.lnd.signCalls.length, r.swaps[0].error], [first.tx, 1, undefined]);
  assert(r.swaps[0].waitingFor.includes("above the cap"), r.swaps[0].waitingFor);
  // A higher estimate, but lnd fails to sign: SweepHtlcTimeout with the old sweep still stored (exit 75) ...
  f.lnd.feeRate = 10_000n;
  f.lnd.failNext.add("signOutputRaw");
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.exitCode], ["SweepHtlcTimeout", 75]);
  assertEquals((await f.store.getSwap(f.hash))!.timeoutSweep!.tx, first.tx);
  // ... and when the estimate is back down the next run keeps it (a cheaper replacement would be refused).
  f.lnd.feeRate = 2_000n;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["MonitorHtlcTimeoutSweep", undefined]);
  assertEquals([(await f.store.getSwap(f.hash))!.timeoutSweep!.tx, f.lnd.published.at(-1)], [
    first.tx,
    first.tx,
  ]);
  assert((await f.store.history(f.hash)).some((x) => x.reason.includes(`timeout sweep ${first.txid} kept`)));
});

Deno.test("the HTLC output spent in a block by a transaction that does not pay the sweep address: exit 1, nothing changed", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now, cltv: 1200 });
  await using _t = f.t;
  f.lnd.confirmations.set(f.txids.standard, 500);
  f.lnd.tip = 1201;
  await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  const foreign = buildHtlcTimeoutSweep({
    htlcTxid: f.txids.standard,
    htlcVout: 0,
    htlcValueSat: RawTx.decode(f.txs.standard).outputs[0].amount,
    htlcScript: f.htlcScript,
    htlcPkScript: f.htlcPkScript,
    cltvExpiry: f.cltv,
    lockTime: 1201,
    sweepPkScript: Uint8Array.of(0x51, 0x20, ...new Uint8Array(32).fill(8)),
    feeRateSatPerKw: 2_000n,
  });
  f.lnd.spends.set(`${f.txids.standard}:0`, {
    spendingTxid: foreign.txid,
    spendingHeight: 1202,
    spendingInputIndex: 0,
  });
  f.lnd.confirmations.set(foreign.txid, 1202);
  f.lnd.rawTxs.set(foreign.txid, foreign.tx);
  f.lnd.tip = 1205;
  const before = await snapshot(f.t.db);
  const r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].error?.code, r.swaps[0].error?.exitCode], ["loopin_htlc_spent_elsewhere", 1]);
  assertEquals(await snapshot(f.t.db), before);
});

Deno.test("an lnd call lost with its HTTP/2 session is evaluated once more from the stored state; twice in a row stays retryable", async () => {
  const clock = { now: T0 };
  const f = await armedSwap({ now: () => clock.now });
  await using _t = f.t;
  await f.store.recordRiskDecision(f.hash, "rejected");
  const lost = () =>
    new LndError(
      "Lightning.LookupInvoice",
      "unknown",
      "Received RST_STREAM with code 2 triggered by internal client error: Session closed with error code 2",
    );
  const orig = f.lnd.lookupInvoice.bind(f.lnd);
  let failures = 2;
  f.lnd.lookupInvoice = (h) => failures-- > 0 ? Promise.reject(lost()) : orig(h);
  const before = await snapshot(f.t.db);
  let r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error?.exitCode], ["MonitorInvoiceAndHtlcTx", 75]);
  assertEquals(await snapshot(f.t.db), before);
  failures = 1;
  r = await syncLoopIns(deps(f.t.db, f.lnd, null, clock), { listenMs: 0 });
  assertEquals([r.swaps[0].state, r.swaps[0].error], ["Failed", undefined]);
  assert(r.swaps[0].actions.some((a) => a.includes("HTTP/2 session")), r.swaps[0].actions.join("; "));
  // lnd unreachable is not retried within the run.
  const g = await armedSwap({ now: () => clock.now });
  await using _u = g.t;
  g.lnd.failNext.add("lookupInvoice");
  r = await syncLoopIns(deps(g.t.db, g.lnd, null, clock), { listenMs: 0 });
  assertEquals(r.swaps[0].error?.exitCode, 75);
});
