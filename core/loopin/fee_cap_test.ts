import { assertEquals } from "../../tests/assert.ts";
import { checkQuotedFee, ppmToSat, resolveMaxSwapFee } from "./fee_cap.ts";
import { MAX_SWAP_FEE_SAT_LIMIT } from "./types.ts";
import { assertLoopkitError } from "./_testing.ts";

const MAX_INT64 = 2n ** 63n - 1n;

/** The §3.4 ppm rule written out: floor(amount × ppm / 10^6), by long division on decimal strings. */
function ppmByHand(amount: bigint, ppm: bigint): bigint {
  const product = amount * ppm;
  const digits = product.toString();
  // Dropping six decimal digits is floor division by 10^6 for non-negative numbers.
  return digits.length <= 6 ? 0n : BigInt(digits.slice(0, -6));
}

Deno.test("ppmToSat: 1 sat at 100 % = 1; rounds down; proportional; max int64 at 100 % and at 1 ppm (scenario 55)", () => {
  assertEquals(ppmToSat(1n, 1_000_000n), 1n);
  assertEquals(ppmToSat(999_999n, 1n), 0n);
  assertEquals(ppmToSat(1_999_999n, 1n), 1n);
  assertEquals(ppmToSat(500_000n, 3_000n), 500_000n * 3_000n / 1_000_000n);
  assertEquals(ppmToSat(MAX_INT64, 1_000_000n), MAX_INT64);
  assertEquals(ppmToSat(MAX_INT64, 1n), ppmByHand(MAX_INT64, 1n));
  for (
    const [a, p] of [[123_456_789n, 777n], [10n ** 18n, 999_999n], [1n, 1n], [
      1_234_567n,
      1_000_000n,
    ]] as const
  ) {
    assertEquals(ppmToSat(a, p), ppmByHand(a, p));
  }
});

const base = { quotedFeeSat: 1_490n, amountSat: 500_000n, quotedAmountSat: 500_000n };

Deno.test("resolveMaxSwapFee: no override → the quote; sat cap above the quote → the cap", () => {
  assertEquals(resolveMaxSwapFee(base), 1_490n);
  assertEquals(resolveMaxSwapFee({ ...base, maxSwapFeeSat: 5_000n }), 5_000n);
  assertEquals(resolveMaxSwapFee({ ...base, maxSwapFeeSat: 1_490n }), 1_490n);
});

Deno.test("resolveMaxSwapFee: sat cap below the quote is refused with the quote and the cap (scenario 64)", () => {
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, maxSwapFeeSat: 1n }),
    "swap_fee_too_high",
    1,
    "quoted swap fee 1490 sat exceeds maximum allowed 1 sat",
  );
});

Deno.test("resolveMaxSwapFee: ppm uses the quoted amount when amt is 0; rounding to 0 is refused (scenario 65)", () => {
  const q = { quotedFeeSat: 100n, amountSat: 0n, quotedAmountSat: 2_500_000n };
  assertEquals(resolveMaxSwapFee({ ...q, maxSwapFeePpm: 1_000n }), 2_500_000n * 1_000n / 1_000_000n);
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, maxSwapFeePpm: 1n }),
    "ppm_fee_cap_rounds_to_zero",
    2,
    "ppm cap rounds to 0 sat for swap amount 500000; use --max_swap_fee_sat instead",
  );
  assertLoopkitError(
    () => resolveMaxSwapFee({ quotedFeeSat: 0n, amountSat: 0n, quotedAmountSat: 0n, maxSwapFeePpm: 10n }),
    "ppm_fee_cap_amount_invalid",
    1,
    "swap amount 0 invalid for ppm fee cap",
  );
});

Deno.test("resolveMaxSwapFee: both set picks the tighter cap (scenario 66: 5000 sat + 3000 ppm of 500 000 → 1500)", () => {
  const ppmCap = 500_000n * 3_000n / 1_000_000n;
  assertEquals(ppmCap, 1_500n);
  assertEquals(
    resolveMaxSwapFee({ ...base, quotedFeeSat: 1_000n, maxSwapFeeSat: 5_000n, maxSwapFeePpm: 3_000n }),
    ppmCap,
  );
  assertEquals(
    resolveMaxSwapFee({ ...base, quotedFeeSat: 1_000n, maxSwapFeeSat: 1_200n, maxSwapFeePpm: 3_000n }),
    1_200n,
  );
  // The quote above the tighter cap is refused even though the looser one would allow it.
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, quotedFeeSat: 1_600n, maxSwapFeeSat: 5_000n, maxSwapFeePpm: 3_000n }),
    "swap_fee_too_high",
    1,
    "exceeds maximum allowed 1500 sat",
  );
});

Deno.test("resolveMaxSwapFee: explicit zero and out-of-range flags are refused, in Loop's order", () => {
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, maxSwapFeeSat: 0n }),
    "max_swap_fee_sat_not_positive",
    2,
    "--max_swap_fee_sat must be positive",
  );
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, maxSwapFeeSat: -3n }),
    "max_swap_fee_sat_not_positive",
    2,
  );
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, maxSwapFeeSat: MAX_SWAP_FEE_SAT_LIMIT + 1n }),
    "max_swap_fee_sat_too_high",
    2,
    "--max_swap_fee_sat must be <= 10000000",
  );
  assertEquals(resolveMaxSwapFee({ ...base, maxSwapFeeSat: 10_000_000n }), 10_000_000n);
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, maxSwapFeePpm: 0n }),
    "max_swap_fee_ppm_not_positive",
    2,
    "--max_swap_fee_ppm must be positive",
  );
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, maxSwapFeePpm: 1_000_001n }),
    "max_swap_fee_ppm_too_high",
    2,
    "--max_swap_fee_ppm must be <= 1000000",
  );
  // sat checks come before ppm checks.
  assertLoopkitError(
    () => resolveMaxSwapFee({ ...base, maxSwapFeeSat: 0n, maxSwapFeePpm: 0n }),
    "max_swap_fee_sat_not_positive",
    2,
  );
  assertLoopkitError(() => resolveMaxSwapFee({ ...base, quotedFeeSat: -1n }), "server_swap_fee_negative", 1);
});

Deno.test("resolveMaxSwapFee: a huge amount is handled exactly (100 % of max int64)", () => {
  const q = { quotedFeeSat: 1n, amountSat: MAX_INT64, quotedAmountSat: 0n };
  assertEquals(resolveMaxSwapFee({ ...q, maxSwapFeePpm: 1_000_000n }), MAX_INT64);
  assertEquals(resolveMaxSwapFee({ ...q, maxSwapFeePpm: 1n }), ppmByHand(MAX_INT64, 1n));
  assertEquals(resolveMaxSwapFee({ ...q, maxSwapFeeSat: 7n, maxSwapFeePpm: 1_000_000n }), 7n);
});

Deno.test("checkQuotedFee refuses a quote above the cap and a negative quote", () => {
  checkQuotedFee(10n, 10n);
  checkQuotedFee(0n, 10n);
  assertLoopkitError(
    () => checkQuotedFee(11n, 10n),
    "swap_fee_too_high",
    1,
    "quoted swap fee 11 sat exceeds maximum allowed 10 sat",
  );
  assertLoopkitError(() => checkQuotedFee(-1n, 10n), "server_swap_fee_negative", 1);
});
