/**
 * Deposit selection for a static loop-in: blocks until expiry, automatic selection and the checks of a
 * manual selection (spec/static-loop-in.md §3.1–§3.2; spec/static-loop-in-review.md §1.4).
 *
 * @module
 */
import { parseOutpoint } from "../staticaddr/outpoint.ts";
import { DUST_LIMIT_SAT, MIN_RUNWAY_BLOCKS } from "./types.ts";
import { inputError, requireBigint, requireHeight } from "./_util.ts";

/** A deposit as the selection rules see it. */
export interface SelectableDeposit {
  /** `txid:vout`, txid in display hex. */
  outpoint: string;
  /** Value, sat. */
  valueSat: bigint;
  /** First-confirmation height; 0 while unconfirmed. */
  confirmationHeight: number;
  /** Deposit state (`core/deposits` names); absent means `Deposited`. */
  state?: string;
  /**
   * False while the deposit is missing from lnd's wallet view (spec/README.md decision 2: listed but not
   * selectable until it reappears); absent means visible.
   */
  walletVisible?: boolean;
}

/**
 * Blocks until a deposit's CSV expiry (spec §3.1): `confirmationHeight + csvExpiry − tipHeight`, floored
 * at 0 (review §5: "expired", never negative).
 *
 * An unconfirmed deposit (`confirmationHeight` 0) has no expiry yet: its CSV starts when it confirms.
 * This function returns `null` for it (Loop's selector uses max uint32); use
 * {@linkcode reportedBlocksUntilExpiry} for the value listings show (the full CSV).
 *
 * @param confirmationHeight first-confirmation height, 0 = unconfirmed
 * @param csvExpiry the static address's CSV expiry, blocks
 * @param tipHeight current best height
 * @returns blocks (≥ 0), or `null` when unconfirmed
 * @throws {LoopkitError} `loopin_invalid_argument` (exit 1) for a negative or non-integer argument
 */
export function blocksUntilExpiry(
  confirmationHeight: number,
  csvExpiry: number,
  tipHeight: number,
): number | null {
  requireHeight(confirmationHeight, "confirmation height");
  requireHeight(csvExpiry, "CSV expiry");
  requireHeight(tipHeight, "tip height");
  if (confirmationHeight === 0) return null;
  return Math.max(0, confirmationHeight + csvExpiry - tipHeight);
}

/**
 * Blocks until expiry as loopd's listings report it (spec §3.1, scenario 68): the full CSV for an
 * unconfirmed deposit, else {@linkcode blocksUntilExpiry} (floored at 0, unlike loopd; review §5).
 */
export function reportedBlocksUntilExpiry(
  confirmationHeight: number,
  csvExpiry: number,
  tipHeight: number,
): number {
  return blocksUntilExpiry(confirmationHeight, csvExpiry, tipHeight) ?? csvExpiry;
}

/**
 * True when a deposit has the loop-in runway (spec §3.2 step 2, Loop's `IsSwappable`): unconfirmed, or
 * at least {@linkcode MIN_RUNWAY_BLOCKS} blocks until expiry.
 */
export function hasLoopInRunway(confirmationHeight: number, csvExpiry: number, tipHeight: number): boolean {
  const left = blocksUntilExpiry(confirmationHeight, csvExpiry, tipHeight);
  return left === null || left >= MIN_RUNWAY_BLOCKS;
}

function isDeposited(d: SelectableDeposit): boolean {
  return (d.state === undefined || d.state === "Deposited") && d.walletVisible !== false;
}

function checkNoDuplicates(outpoints: readonly string[]): void {
  const seen = new Set<string>();
  for (const op of outpoints) {
    if (seen.has(op)) {
      throw inputError("loopin_duplicate_outpoints", `duplicate outpoints detected: ${op} is listed twice`);
    }
    seen.add(op);
  }
}

/**
 * Loop's `SelectDeposits` (spec §3.2): picks deposits for a swap of `targetSat`.
 *
 * 1. Candidates: the wallet-visible deposits in state `Deposited` (absent fields count as `Deposited` and
 *    visible), pre-sorted by confirmation height ascending (unconfirmed first), as Loop's caller does.
 * 2. Confirmed deposits with fewer than 1 050 blocks until expiry are dropped; unconfirmed never are.
 * 3. Stable sort: confirmed before unconfirmed; value descending; equal values → fewer blocks until expiry
 *    first (unconfirmed count as unlimited). Remaining ties keep the pre-sorted order (Go's sort leaves
 *    them undefined; spec §8.1).
 * 4. Walk the list; return the prefix as soon as `sum == target` or `sum − target ≥ 330`.
 *
 * The returned order is the HTLC input order.
 *
 * @param targetSat amount to cover, sat (> 0)
 * @param deposits the active deposits (one entry per outpoint)
 * @param csvExpiry the static address's CSV expiry, blocks
 * @param tipHeight current best height
 * @returns the selected deposits, in HTLC input order (the same objects)
 * @throws {LoopkitError} exit 2: `loopin_amount_invalid` for target ≤ 0, `loopin_duplicate_outpoints`,
 *   `loopin_insufficient_deposits` (`not enough deposits to cover requested amount or prevent dust
 *   change, have <sum> sat but need <target> sat`, sum over all candidates)
 */
export function selectDeposits(
  targetSat: bigint,
  deposits: readonly SelectableDeposit[],
  csvExpiry: number,
  tipHeight: number,
): SelectableDeposit[] {
  requireBigint(targetSat, "target amount");
  if (targetSat <= 0n) {
    throw inputError(
      "loopin_amount_invalid",
      `amount ${targetSat} sat must be positive for automatic selection`,
    );
  }
  checkNoDuplicates(deposits.map((d) => d.outpoint));
  const candidates = deposits
    .filter(isDeposited)
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.confirmationHeight - b.d.confirmationHeight || a.i - b.i)
    .map(({ d }) => d)
    .filter((d) => hasLoopInRunway(d.confirmationHeight, csvExpiry, tipHeight));
  const left = (d: SelectableDeposit) =>
    blocksUntilExpiry(d.confirmationHeight, csvExpiry, tipHeight) ?? Infinity;
  const sorted = candidates
    .map((d, i) => ({ d, i }))
    .sort((a, b) => {
      const ac = a.d.confirmationHeight > 0, bc = b.d.confirmationHeight > 0;
      if (ac !== bc) return ac ? -1 : 1;
      if (a.d.valueSat !== b.d.valueSat) return a.d.valueSat > b.d.valueSat ? -1 : 1;
      const la = left(a.d), lb = left(b.d);
      if (la !== lb) return la < lb ? -1 : 1;
      return a.i - b.i;
    })
    .map(({ d }) => d);
  const picked: SelectableDeposit[] = [];
  let sum = 0n;
  for (const d of sorted) {
    picked.push(d);
    sum += d.valueSat;
    if (sum === targetSat || sum - targetSat >= DUST_LIMIT_SAT) return picked;
  }
  throw inputError(
    "loopin_insufficient_deposits",
    `not enough deposits to cover requested amount or prevent dust change, have ${sum} sat but need ${targetSat} sat`,
  );
}

/**
 * Checks a manual selection (`--utxo`, `--all`) against the deposit listing (spec §3.2, §3.4 step 7,
 * §6 "Quote"; review §1.4), in this order:
 *
 * 1. at least one outpoint (`loopin_no_outpoints`);
 * 2. each is a well-formed outpoint (`invalid_outpoint`, from core/staticaddr);
 * 3. no duplicates (`loopin_duplicate_outpoints`, `duplicate outpoints detected`);
 * 4. every one is a known deposit (`loopin_outpoint_not_found`, `not all outpoints found in deposits`,
 *    naming the missing ones);
 * 5. each is in state `Deposited` and visible in the wallet (`loopin_deposit_not_available`, `deposit <op>
 *    is not currently available`);
 * 6. each confirmed one has at least 1 050 blocks until expiry (`loopin_deposit_too_close_to_expiry`,
 *    naming the remaining block count) — loopkit's rule (review §1.4, upstream PR #1202): the server may set
 *    the HTLC CLTV up to 1 500 blocks ahead, so an older deposit could expire under the swap.
 *
 * @param outpoints the user's outpoints, in the order given (the HTLC input order)
 * @param deposits the active deposits
 * @param csvExpiry the static address's CSV expiry, blocks
 * @param tipHeight current best height
 * @returns the matching deposits in the given order
 * @throws {LoopkitError} exit 2, codes above
 */
export function checkManualSelection(
  outpoints: readonly string[],
  deposits: readonly SelectableDeposit[],
  csvExpiry: number,
  tipHeight: number,
): SelectableDeposit[] {
  if (outpoints.length === 0) throw inputError("loopin_no_outpoints", "no deposit outpoints given");
  for (const op of outpoints) parseOutpoint(op);
  checkNoDuplicates(outpoints);
  const byOutpoint = new Map(deposits.map((d) => [d.outpoint, d]));
  const missing = outpoints.filter((op) => !byOutpoint.has(op));
  if (missing.length > 0) {
    throw inputError(
      "loopin_outpoint_not_found",
      `not all outpoints found in deposits: ${missing.join(", ")}`,
    );
  }
  const picked = outpoints.map((op) => byOutpoint.get(op)!);
  for (const d of picked) {
    if (!isDeposited(d)) {
      throw inputError(
        "loopin_deposit_not_available",
        d.walletVisible === false
          ? `deposit ${d.outpoint} is not currently available (missing from the lnd wallet view)`
          : `deposit ${d.outpoint} is not currently available (state ${d.state})`,
      );
    }
  }
  for (const d of picked) {
    const left = blocksUntilExpiry(d.confirmationHeight, csvExpiry, tipHeight);
    if (left !== null && left < MIN_RUNWAY_BLOCKS) {
      throw inputError(
        "loopin_deposit_too_close_to_expiry",
        `deposit ${d.outpoint} expires in ${left} blocks (at height ${
          d.confirmationHeight + csvExpiry
        }); a loop-in needs at least ${MIN_RUNWAY_BLOCKS} blocks of runway`,
      );
    }
  }
  return picked;
}

/** Sum of the deposits' values, sat. */
export function totalValueSat(deposits: readonly { valueSat: bigint }[]): bigint {
  return deposits.reduce((s, d) => s + d.valueSat, 0n);
}
