import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { categoryOf, isVisible, summarizeDeposits, SUMMARY_CATEGORIES } from "./summary.ts";
import { type Deposit, DEPOSIT_STATES, type DepositState } from "./types.ts";

function deposit(n: number, state: DepositState, over: Partial<Deposit> = {}): Deposit {
  return {
    depositId: new Uint8Array(32).fill(n),
    txid: n.toString(16).padStart(64, "0"),
    vout: 0,
    amountSat: BigInt(n) * 1000n,
    confirmationHeight: 50,
    pkScript: new Uint8Array(34),
    timeoutSweepPkScript: new Uint8Array(34),
    state,
    walletVisible: true,
    expirySweepTxid: null,
    expirySweepTx: null,
    swapHash: null,
    spentBy: null,
    ...over,
  };
}

Deno.test("summary of an unconfirmed 2 000 and a confirmed 3 000 deposit: total 2, unconfirmed 2 000, deposited 3 000 (Loop's test)", () => {
  const s = summarizeDeposits([
    deposit(2, "Deposited", { confirmationHeight: 0 }),
    deposit(3, "Deposited", { confirmationHeight: 450 }),
  ]);
  assertEquals(s.totalNumDeposits, 2);
  assertEquals(s.categories.unconfirmed, { count: 1, valueSat: 2000n });
  assertEquals(s.categories.deposited, { count: 1, valueSat: 3000n });
  assertEquals(s.totalValueSat, 5000n);
});

Deno.test("the summary's categories add up to the visible list, for every state and a Replaced one hidden", () => {
  // One deposit per state with distinct values, plus the Deposited variants.
  const all: Deposit[] = DEPOSIT_STATES.map((st, i) => deposit(i + 1, st));
  all.push(deposit(40, "Deposited", { confirmationHeight: 0 }));
  all.push(deposit(41, "Deposited", { walletVisible: false }));
  all.push(deposit(42, "Replaced", { confirmationHeight: 0 }));
  const s = summarizeDeposits(all);
  const visible = all.filter(isVisible);
  assertEquals(s.totalNumDeposits, visible.length);
  assertEquals(s.totalValueSat, visible.reduce((a, d) => a + d.amountSat, 0n));
  const counted = SUMMARY_CATEGORIES.reduce((a, c) => a + s.categories[c].count, 0);
  const valued = SUMMARY_CATEGORIES.reduce((a, c) => a + s.categories[c].valueSat, 0n);
  assertEquals(counted, visible.length);
  assertEquals(valued, s.totalValueSat);
  assertEquals(s.replaced, { count: 2, valueSat: 13_000n + 42_000n }); // "Replaced" is the 13th state
  assertEquals(s.categories.unavailable, { count: 1, valueSat: 41_000n });
  assertEquals(s.categories.expiry_sweeping.count, 2); // PublishExpirySweep and WaitForExpirySweep
  for (const c of SUMMARY_CATEGORIES) {
    if (c !== "expiry_sweeping") {
      assertEquals(s.categories[c].count >= 1, true, `category ${c} is empty`);
    }
  }
});

Deno.test("categoryOf() splits Deposited by confirmation and wallet visibility and refuses Replaced", () => {
  assertEquals(categoryOf({ state: "Deposited", confirmationHeight: 0, walletVisible: true }), "unconfirmed");
  assertEquals(categoryOf({ state: "Deposited", confirmationHeight: 9, walletVisible: true }), "deposited");
  assertEquals(
    categoryOf({ state: "Deposited", confirmationHeight: 9, walletVisible: false }),
    "unavailable",
  );
  assertEquals(categoryOf({ state: "Expired", confirmationHeight: 9, walletVisible: false }), "expired");
  assertThrows(
    () => categoryOf({ state: "Replaced", confirmationHeight: 0, walletVisible: true }),
    RangeError,
  );
});
