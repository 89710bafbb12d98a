import { assertEquals, assertThrows } from "../../tests/assert.ts";
import type { Utxo } from "../../lnd/types.ts";
import { LoopkitError } from "../errors.ts";
import { confirmationHeightOf, filterOurUtxos, planReconcile } from "./reconcile.ts";
import type { Deposit } from "./types.ts";

const OUR = new Uint8Array([0x51, 0x20, ...new Uint8Array(32).fill(7)]);
const OTHER = new Uint8Array([0x51, 0x20, ...new Uint8Array(32).fill(9)]);
const txid = (n: number) => n.toString(16).padStart(64, "0");

function utxo(n: number, confirmations: number, pkScript = OUR): Utxo {
  return { txid: txid(n), vout: 0, amountSat: 100_000n, pkScript, confirmations, address: "" };
}

function deposit(n: number, over: Partial<Deposit> = {}): Deposit {
  return {
    depositId: new Uint8Array(32).fill(n),
    txid: txid(n),
    vout: 0,
    amountSat: 100_000n,
    confirmationHeight: 0,
    pkScript: OUR,
    timeoutSweepPkScript: new Uint8Array(22),
    state: "Deposited",
    walletVisible: true,
    expirySweepTxid: null,
    expirySweepTx: null,
    swapHash: null,
    spentBy: null,
    ...over,
  };
}

Deno.test("confirmationHeightOf() follows tip − confs + 1 (spec §4.6 examples)", () => {
  assertEquals(confirmationHeightOf(3, 100), 98);
  assertEquals(confirmationHeightOf(6, 101), 96);
  assertEquals(confirmationHeightOf(0, 100), 0);
  assertEquals(confirmationHeightOf(1, 100), 100);
  assertThrows(() => confirmationHeightOf(1, 0), LoopkitError, "height unavailable");
  assertThrows(() => confirmationHeightOf(101, 100), LoopkitError, "Invalid confirmation height");
});

Deno.test("filterOurUtxos() keeps only our pkScripts and drops duplicate outpoints", () => {
  const got = filterOurUtxos([utxo(1, 0), utxo(2, 1, OTHER), utxo(1, 0)], [OUR]);
  assertEquals(got.map((u) => u.txid), [txid(1)]);
});

Deno.test("planReconcile() creates a 0-conf deposit at once with height 0 and a confirmed one with its height", () => {
  const plan = planReconcile([utxo(1, 0), utxo(2, 3)], [], 100);
  assertEquals(plan.create.map((c) => [c.txid, c.confirmationHeight]), [[txid(1), 0], [txid(2), 98]]);
  assertEquals(plan.update, []);
});

Deno.test("planReconcile() backfills the first-confirmation height once and then keeps it", () => {
  const first = planReconcile([utxo(1, 1)], [deposit(1)], 200);
  assertEquals(first.update[0].confirmationHeight, 200);
  assertEquals(first.update[0].reasons, ["confirmed"]);
  const later = planReconcile([utxo(1, 10)], [deposit(1, { confirmationHeight: 200 })], 209);
  assertEquals(later, { create: [], update: [] });
});

Deno.test("planReconcile() resets the height when a reorg puts the output back in the mempool", () => {
  const plan = planReconcile([utxo(1, 0)], [deposit(1, { confirmationHeight: 150 })], 160);
  assertEquals(plan.update[0].confirmationHeight, 0);
  assertEquals(plan.update[0].reasons, ["unconfirmed_again"]);
});

Deno.test("planReconcile() marks a vanished unconfirmed Deposited deposit Replaced and revives it on return", () => {
  const gone = planReconcile([], [deposit(1)], 100);
  assertEquals(gone.update[0].state, "Replaced");
  const back = planReconcile([utxo(1, 0)], [deposit(1, { state: "Replaced" })], 100);
  assertEquals(back.create, []);
  assertEquals(back.update[0].state, "Deposited");
  assertEquals(back.update[0].depositId, deposit(1).depositId);
});

Deno.test("planReconcile() keeps a vanished confirmed deposit but marks it not wallet-visible", () => {
  const gone = planReconcile([], [deposit(1, { confirmationHeight: 90 })], 100);
  assertEquals(gone.update[0].walletVisible, false);
  assertEquals(gone.update[0].state, undefined);
  const back = planReconcile(
    [utxo(1, 11)],
    [deposit(1, { confirmationHeight: 90, walletVisible: false })],
    100,
  );
  assertEquals(back.update[0].walletVisible, true);
  assertEquals(back.update[0].confirmationHeight, undefined);
});

Deno.test("planReconcile() leaves vanished deposits in other states to their own flows", () => {
  const plan = planReconcile(
    [],
    [deposit(1, { state: "LoopingIn" }), deposit(2, { state: "Replaced" })],
    100,
  );
  assertEquals(plan.update, []);
});

Deno.test("planReconcile() is idempotent: a second plan over the applied state is empty", () => {
  const stored = [deposit(1, { confirmationHeight: 98 })];
  assertEquals(planReconcile([utxo(1, 3)], stored, 100), { create: [], update: [] });
});
