import { assertEquals } from "../../tests/assert.ts";
import { deduceSwapAmount, invoiceAmountSat, paymentTimeoutSec } from "./amount.ts";
import { DEFAULT_PAYMENT_TIMEOUT_SEC, DUST_LIMIT_SAT } from "./types.ts";
import { assertLoopkitError } from "./_testing.ts";

const DUST = 330n; // spec §3.3: DustLimitForSize(P2TRSize)

Deno.test("the dust limit is the P2TR dust limit of spec §3.3", () => {
  assertEquals(DUST_LIMIT_SAT, DUST);
});

// Scenario 39 (deduce_amount_test.go), errors in spec §3.3's order.
const errorCases: [string, bigint, bigint, string, string[]][] = [
  ["negative", 10_000n, -1n, "loopin_amount_negative", ["-1 sat is negative"]],
  ["selected dust", 10_000n, DUST - 1n, "loopin_amount_dust", ["329 sat is dust", "330"]],
  ["selected 1 sat", 10_000n, 1n, "loopin_amount_dust", ["1 sat is dust"]],
  ["total dust", DUST - 1n, 0n, "loopin_total_dust", ["total deposit value 329 sat is dust"]],
  ["selected above total", 1_000n, 1_001n, "loopin_amount_exceeds_total", [
    "1001 sat exceeds total deposit value 1000",
  ]],
  ["dust change", 1_000n, 1_000n - DUST + 1n, "loopin_change_dust", ["leaves dust change 329 sat"]],
  ["1 sat change", 1_000n, 999n, "loopin_change_dust", ["leaves dust change 1 sat"]],
  // Order: a negative selection on a dust total reports the negative amount first.
  ["negative beats total dust", 1n, -5n, "loopin_amount_negative", []],
  // Selected dust is reported before total dust.
  ["selected dust beats total dust", 100n, 50n, "loopin_amount_dust", []],
  // Total dust is reported before exceeding it.
  ["total dust beats exceeding", 300n, 400n, "loopin_total_dust", []],
];

for (const [name, total, selected, code, parts] of errorCases) {
  Deno.test(`deduceSwapAmount refuses: ${name}`, () => {
    assertLoopkitError(() => deduceSwapAmount(total, selected), code, 2, ...parts);
  });
}

Deno.test("deduceSwapAmount: selected 0 → the total, no change; selected = total; both at least dust", () => {
  const cases: [bigint, bigint][] = [
    [10_000n, 0n],
    [DUST, 0n],
    [10_000n, 10_000n],
    [10_000n, 10_000n - DUST], // change exactly the dust limit
    [2_500_000n, 500_000n], // scenario 59: change 2 000 000
    [550_000n, 500_000n], // scenario 67: change 50 000
    [DUST * 2n, DUST],
  ];
  for (const [total, selected] of cases) {
    const { swapAmountSat, changeSat } = deduceSwapAmount(total, selected);
    const expectedSwap = selected === 0n ? total : selected;
    assertEquals(swapAmountSat, expectedSwap);
    assertEquals(changeSat, total - expectedSwap);
    assertEquals(swapAmountSat + changeSat, total);
    // The change is 0 or at least the dust limit.
    assertEquals(changeSat === 0n || changeSat >= DUST, true);
  }
  assertEquals(deduceSwapAmount(2_500_000n, 500_000n).changeSat, 2_000_000n);
  assertEquals(deduceSwapAmount(550_000n, 500_000n).changeSat, 50_000n);
});

Deno.test("deduceSwapAmount: every (total, selected) around the dust boundaries obeys the §3.3 rule", () => {
  for (const total of [0n, 1n, 329n, 330n, 331n, 659n, 660n, 661n, 1000n]) {
    for (const selected of [-1n, 0n, 1n, 329n, 330n, 331n, 500n, 659n, 660n, 661n, 1000n, 1001n]) {
      const change = total - selected;
      const ok = selected >= 0n && !(selected > 0n && selected < 330n) && total >= 330n && change >= 0n &&
        !(change > 0n && change < 330n);
      let got: boolean;
      try {
        deduceSwapAmount(total, selected);
        got = true;
      } catch {
        got = false;
      }
      assertEquals(got, ok, `total ${total} selected ${selected}`);
    }
  }
});

Deno.test("invoiceAmountSat is swap amount − fee and refuses a non-positive or negative-fee result", () => {
  assertEquals(invoiceAmountSat(500_000n, 1_824n), 500_000n - 1_824n);
  assertEquals(invoiceAmountSat(1_000n, 999n), 1n);
  assertLoopkitError(
    () => invoiceAmountSat(1_000n, 1_000n),
    "loopin_invoice_amount_not_positive",
    1,
    "1000 sat",
  );
  assertLoopkitError(() => invoiceAmountSat(1_000n, 5_000n), "loopin_invoice_amount_not_positive", 1);
  assertLoopkitError(() => invoiceAmountSat(1_000n, -1n), "server_swap_fee_negative", 1);
});

Deno.test("paymentTimeoutSec: 0 → 60 s, 42 → 42 s (scenario 31); a non-uint32 is refused", () => {
  assertEquals(paymentTimeoutSec(0), 60);
  assertEquals(DEFAULT_PAYMENT_TIMEOUT_SEC, 60);
  assertEquals(paymentTimeoutSec(42), 42);
  assertEquals(paymentTimeoutSec(30), 30);
  for (const bad of [-1, 1.5, 2 ** 32, Number.NaN]) {
    assertLoopkitError(() => paymentTimeoutSec(bad), "loopin_payment_timeout_invalid", 2);
  }
});
