/**
 * The maximum swap fee of a static loop-in: `--max_swap_fee_sat` / `--max_swap_fee_ppm` against the
 * server's quote (spec/static-loop-in.md §3.4 step 9, §1.7 step 10; Loop's `cmd/loop/feecap.go`).
 *
 * @module
 */
import { MAX_SWAP_FEE_SAT_LIMIT, PPM_BASE } from "./types.ts";
import { inputError, requireBigint, serverError } from "./_util.ts";
import { ExitCode, LoopkitError } from "../errors.ts";

/** Inputs of {@linkcode resolveMaxSwapFee}. All amounts sat. */
export interface MaxSwapFeeRequest {
  /** The quote's `swap_fee_sat`. */
  quotedFeeSat: bigint;
  /** `--max_swap_fee_sat` when the flag was given (even as 0). */
  maxSwapFeeSat?: bigint;
  /** `--max_swap_fee_ppm` when the flag was given (even as 0). */
  maxSwapFeePpm?: bigint;
  /** The amount the user asked for (`amt`), 0 when none. */
  amountSat: bigint;
  /** The quote's `quoted_amt` (used for ppm when `amountSat` is 0). */
  quotedAmountSat: bigint;
}

/**
 * `floor(amountSat × ppm / 1 000 000)` in exact integer arithmetic (spec §3.4 step 9).
 *
 * @param amountSat swap amount, sat (≥ 0)
 * @param ppm parts per million (≥ 0)
 * @returns sat, rounded down
 */
export function ppmToSat(amountSat: bigint, ppm: bigint): bigint {
  return (amountSat * ppm) / PPM_BASE;
}

/**
 * Loop's `resolveMaxSwapFee` (spec §3.4 step 9): the effective maximum swap fee, checked against the
 * quote. Checks in Loop's order:
 *
 * - `maxSwapFeeSat` given and ≤ 0 → `max_swap_fee_sat_not_positive` (`--max_swap_fee_sat must be
 *   positive`); > 10 000 000 → `max_swap_fee_sat_too_high`;
 * - `maxSwapFeePpm` given and ≤ 0 → `max_swap_fee_ppm_not_positive`; > 1 000 000 →
 *   `max_swap_fee_ppm_too_high`;
 * - neither given → the quoted fee is the cap;
 * - ppm: amount = `amountSat`, or `quotedAmountSat` when that is 0; ≤ 0 → `ppm_fee_cap_amount_invalid`;
 *   cap = {@linkcode ppmToSat}; 0 → `ppm_fee_cap_rounds_to_zero`;
 * - both given → the smaller cap;
 * - quote above the cap → `swap_fee_too_high` (`quoted swap fee <f> sat exceeds maximum allowed <cap> sat`).
 *
 * A negative quote is refused first (`server_swap_fee_negative`, exit 1): Loop does not check it.
 *
 * @returns the cap, sat
 * @throws {LoopkitError} exit 2 for the flag checks, exit 1 for `swap_fee_too_high`,
 *   `ppm_fee_cap_amount_invalid` (the amount came from the quote) and `server_swap_fee_negative`
 */
export function resolveMaxSwapFee(req: MaxSwapFeeRequest): bigint {
  const quoted = requireBigint(req.quotedFeeSat, "quoted swap fee");
  requireBigint(req.amountSat, "amount");
  requireBigint(req.quotedAmountSat, "quoted amount");
  if (quoted < 0n) {
    throw serverError("server_swap_fee_negative", `server quoted a negative swap fee: ${quoted} sat`);
  }
  const sat = req.maxSwapFeeSat;
  const ppm = req.maxSwapFeePpm;
  if (sat !== undefined) {
    requireBigint(sat, "--max_swap_fee_sat");
    if (sat <= 0n) throw inputError("max_swap_fee_sat_not_positive", "--max_swap_fee_sat must be positive");
    if (sat > MAX_SWAP_FEE_SAT_LIMIT) {
      throw inputError(
        "max_swap_fee_sat_too_high",
        `--max_swap_fee_sat must be <= ${MAX_SWAP_FEE_SAT_LIMIT}`,
      );
    }
  }
  if (ppm !== undefined) {
    requireBigint(ppm, "--max_swap_fee_ppm");
    if (ppm <= 0n) throw inputError("max_swap_fee_ppm_not_positive", "--max_swap_fee_ppm must be positive");
    if (ppm > PPM_BASE) {
      throw inputError("max_swap_fee_ppm_too_high", `--max_swap_fee_ppm must be <= ${PPM_BASE}`);
    }
  }
  if (sat === undefined && ppm === undefined) return quoted;

  const swapAmount = req.amountSat === 0n ? req.quotedAmountSat : req.amountSat;
  let ppmCap: bigint | undefined;
  if (ppm !== undefined) {
    if (swapAmount <= 0n) {
      throw new LoopkitError(
        "ppm_fee_cap_amount_invalid",
        `swap amount ${swapAmount} invalid for ppm fee cap`,
        ExitCode.Failure,
      );
    }
    ppmCap = ppmToSat(swapAmount, ppm);
    if (ppmCap === 0n) {
      throw inputError(
        "ppm_fee_cap_rounds_to_zero",
        `ppm cap rounds to 0 sat for swap amount ${swapAmount}; use --max_swap_fee_sat instead`,
      );
    }
  }
  const cap = sat !== undefined && ppmCap !== undefined ? (sat < ppmCap ? sat : ppmCap) : (sat ?? ppmCap!);
  checkQuotedFee(quoted, cap);
  return cap;
}

/**
 * Refuses a quoted swap fee above the cap (spec §3.4 step 9 and, at initiation, §1.7 step 10 `swap fee
 * too high`; nothing is locked yet).
 *
 * @param quotedFeeSat the server's `swap_fee`, sat
 * @param capSat the resolved maximum, sat
 * @throws {LoopkitError} `server_swap_fee_negative` (exit 1) for a negative quote; `swap_fee_too_high`
 *   (exit 1): `quoted swap fee <f> sat exceeds maximum allowed <cap> sat`
 */
export function checkQuotedFee(quotedFeeSat: bigint, capSat: bigint): void {
  requireBigint(quotedFeeSat, "quoted swap fee");
  requireBigint(capSat, "maximum swap fee");
  if (quotedFeeSat < 0n) {
    throw serverError("server_swap_fee_negative", `server quoted a negative swap fee: ${quotedFeeSat} sat`);
  }
  if (quotedFeeSat > capSat) {
    throw serverError(
      "swap_fee_too_high",
      `quoted swap fee ${quotedFeeSat} sat exceeds maximum allowed ${capSat} sat`,
    );
  }
}
