/**
 * Expiry arithmetic of a deposit (spec/static-address-and-deposits.md §4.7), and the sweep's default fee
 * target: pure numbers, no Bitcoin libraries, so `deposits list` can render without loading the sweep code
 * (`sweep.ts` re-exports all of it).
 *
 * @module
 */

/** Default `--sweep-conf-target` (blocks) for the sweep's fee estimate. Loop uses 3 (§4.8). */
export const DEFAULT_SWEEP_CONF_TARGET = 6;

/**
 * Blocks until expiry as Loop's RPC reports it (§4.7, `Deposit.blocks_until_expiry`): `E` for an
 * unconfirmed deposit, else `C + E − tip` (0 or negative once expired).
 * @param confirmationHeight C, 0 while unconfirmed
 * @param csvExpiry E in blocks
 * @param tip the best block height lnd reports
 */
export function blocksUntilExpiry(confirmationHeight: number, csvExpiry: number, tip: number): number {
  return confirmationHeight > 0 ? confirmationHeight + csvExpiry - tip : csvExpiry;
}

/**
 * True iff the deposit has expired at `tip` (§4.7): `C > 0` and `tip ≥ C + E`. At tip `C + E` the sweep is
 * valid for the next block.
 */
export function isExpired(confirmationHeight: number, csvExpiry: number, tip: number): boolean {
  return confirmationHeight > 0 && tip >= confirmationHeight + csvExpiry;
}
