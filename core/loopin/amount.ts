/**
 * Swap amount, change and invoice amount of a static loop-in (spec/static-loop-in.md §3.3, §3.6).
 *
 * @module
 */
import { DEFAULT_PAYMENT_TIMEOUT_SEC, DUST_LIMIT_SAT } from "./types.ts";
import { inputError, requireBigint, serverError } from "./_util.ts";

/** Result of {@linkcode deduceSwapAmount}. */
export interface SwapAmount {
  /** Amount swapped, sat: the selected amount, or the whole deposit total when nothing was selected. */
  swapAmountSat: bigint;
  /** Change back to the static address, sat: total − swap amount; 0 or at least the dust limit. */
  changeSat: bigint;
}

/**
 * Loop's `DeduceSwapAmount` (spec §3.3): the swap amount and change for `selectedSat` out of deposits
 * worth `totalSat`. `selectedSat = 0` means "all of the deposits". Checks, in Loop's order:
 *
 * 1. `selected < 0` → `loopin_amount_negative`
 * 2. `0 < selected < 330` → `loopin_amount_dust`
 * 3. `total < 330` → `loopin_total_dust`
 * 4. `selected > total` → `loopin_amount_exceeds_total`
 * 5. `0 < total − selected < 330` → `loopin_change_dust`
 *
 * Messages give satoshis (Loop prints BTC; review §5).
 *
 * @param totalSat sum of the selected deposits' values, sat
 * @param selectedSat amount the user asked for, sat (0 = all)
 * @returns swap amount and change, sat
 * @throws {LoopkitError} one of the codes above, exit 2 (the request cannot be met as given)
 */
export function deduceSwapAmount(totalSat: bigint, selectedSat: bigint): SwapAmount {
  requireBigint(totalSat, "total deposit value");
  requireBigint(selectedSat, "selected amount");
  if (selectedSat < 0n) {
    throw inputError("loopin_amount_negative", `selected amount ${selectedSat} sat is negative`);
  }
  if (selectedSat > 0n && selectedSat < DUST_LIMIT_SAT) {
    throw inputError(
      "loopin_amount_dust",
      `selected amount ${selectedSat} sat is dust, need at least ${DUST_LIMIT_SAT} sat`,
    );
  }
  if (totalSat < DUST_LIMIT_SAT) {
    throw inputError(
      "loopin_total_dust",
      `total deposit value ${totalSat} sat is dust, need at least ${DUST_LIMIT_SAT} sat`,
    );
  }
  const remaining = totalSat - selectedSat;
  if (remaining < 0n) {
    throw inputError(
      "loopin_amount_exceeds_total",
      `selected amount ${selectedSat} sat exceeds total deposit value ${totalSat} sat`,
    );
  }
  if (remaining > 0n && remaining < DUST_LIMIT_SAT) {
    throw inputError(
      "loopin_change_dust",
      `selected amount ${selectedSat} sat leaves dust change ${remaining} sat (change must be 0 or at least ${DUST_LIMIT_SAT} sat)`,
    );
  }
  const swapAmountSat = selectedSat === 0n ? totalSat : selectedSat;
  return { swapAmountSat, changeSat: totalSat - swapAmountSat };
}

/**
 * The swap invoice amount (spec §1.7 step 13, §3.6): swap amount − quoted swap fee, in sat (the
 * invoice's `value_msat` is this × 1000).
 *
 * loopkit refuses a result ≤ 0: lnd's `AddInvoice` treats value 0 as an "any amount" invoice, which
 * would let the server settle it for nothing.
 *
 * @param swapAmountSat swap amount, sat (from {@linkcode deduceSwapAmount})
 * @param quotedFeeSat the server's quoted `swap_fee`, sat
 * @returns invoice amount, sat (> 0)
 * @throws {LoopkitError} `server_swap_fee_negative` (exit 1) for a negative quote;
 *   `loopin_invoice_amount_not_positive` (exit 1) when the fee eats the whole swap amount
 */
export function invoiceAmountSat(swapAmountSat: bigint, quotedFeeSat: bigint): bigint {
  requireBigint(swapAmountSat, "swap amount");
  requireBigint(quotedFeeSat, "quoted swap fee");
  if (quotedFeeSat < 0n) {
    throw serverError("server_swap_fee_negative", `server quoted a negative swap fee: ${quotedFeeSat} sat`);
  }
  const amount = swapAmountSat - quotedFeeSat;
  if (amount <= 0n) {
    throw serverError(
      "loopin_invoice_amount_not_positive",
      `swap fee ${quotedFeeSat} sat leaves no invoice amount for swap amount ${swapAmountSat} sat`,
    );
  }
  return amount;
}

/**
 * Payment timeout in seconds (spec §3.9, scenario 31): 0 → {@linkcode DEFAULT_PAYMENT_TIMEOUT_SEC}.
 *
 * @param seconds requested `payment_timeout_seconds` (uint32)
 * @throws {LoopkitError} `loopin_payment_timeout_invalid` (exit 2) for a value that is not a uint32
 */
export function paymentTimeoutSec(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffff_ffff) {
    throw inputError(
      "loopin_payment_timeout_invalid",
      `payment timeout ${String(seconds)} s is not a whole number of seconds from 0 to 4294967295`,
    );
  }
  return seconds === 0 ? DEFAULT_PAYMENT_TIMEOUT_SEC : seconds;
}
