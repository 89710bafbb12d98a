/**
 * Flag values shared by several subcommands.
 *
 * @module
 */
import { usageError } from "../core/errors.ts";

/** The largest whole-number flag value: an int64, what lncli and Loop's RPC fields carry. */
export const MAX_WHOLE_FLAG: bigint = (1n << 63n) - 1n;

/**
 * A whole-number flag (`--max-l402-cost-sat`, `--max-swap-fee-sat`, `--max-swap-fee-ppm`): decimal digits only,
 * from 0 to {@linkcode MAX_WHOLE_FLAG}. Signs, exponents, hex and fractions are refused, not rounded.
 * @param flag the flag as typed, named in the error
 * @param v the value; `undefined` when the flag was not given
 * @param unit what the number counts (`sat`, `ppm`), named in the error
 * @returns the value, or `undefined` when not given
 * @throws {LoopkitError} usage error (exit 2) naming the flag and the value
 */
export function parseWholeFlag(flag: string, v: string | undefined, unit: string): bigint | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,19}$/.test(v) || BigInt(v) > MAX_WHOLE_FLAG) {
    throw usageError(
      `Invalid ${flag} "${v}": expected a whole number of ${unit} from 0 to ${MAX_WHOLE_FLAG}`,
    );
  }
  return BigInt(v);
}
