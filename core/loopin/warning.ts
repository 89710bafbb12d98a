/**
 * The CLI's low-confirmation warning before a static loop-in (spec/static-loop-in.md §3.4 step 10;
 * Loop's `cmd/loop/staticaddr.go` `lowConfDepositWarning`).
 *
 * @module
 */
import { type SelectableDeposit, selectDeposits } from "./select.ts";
import { LEGACY_MIN_CONFS } from "./types.ts";
import { LoopkitError } from "../errors.ts";
import { reportedBlocksUntilExpiry } from "./select.ts";

/** One deposit below the warning threshold. */
export interface LowConfirmationEntry {
  /** `txid:vout`. */
  outpoint: string;
  /** Confirmations, or `null` when unconfirmed. */
  confirmations: number | null;
}

/** Inputs of {@linkcode lowConfirmationDeposits}. */
export interface LowConfirmationRequest {
  /** The deposit listing (state `Deposited`). */
  deposits: readonly SelectableDeposit[];
  /** `relative_expiry_blocks` of the static address, blocks. 0 (unknown) skips confirmed deposits, like Loop. */
  csvExpiry: number;
  /** Current best height. */
  tipHeight: number;
  /** Manual selection: the outpoints to check. Takes precedence over `targetSat`. */
  outpoints?: readonly string[];
  /** Automatic selection: the amount; the deposits the selector would pick are checked. */
  targetSat?: bigint;
}

/**
 * The deposits of a planned loop-in that have fewer than 6 confirmations (spec §3.4 step 10).
 *
 * Checked outpoints: manual → `outpoints` (unknown ones skipped); automatic → what
 * {@linkcode selectDeposits} picks for `targetSat` on the listing (the engine's selector itself, so the
 * warning always matches the swap; no selection → nothing checked). Confirmations of a confirmed
 * deposit are `csv − blocks_until_expiry + 1` (Loop's formula; with blocks until expiry floored at 0 an
 * expired deposit counts csv + 1, far above 6).
 *
 * @returns entries in the checked order; empty when nothing is below the threshold
 */
export function lowConfirmationDeposits(req: LowConfirmationRequest): LowConfirmationEntry[] {
  let checked: readonly string[];
  if (req.outpoints !== undefined) {
    checked = req.outpoints;
  } else if (req.targetSat !== undefined && req.targetSat > 0n) {
    try {
      checked = selectDeposits(req.targetSat, req.deposits, req.csvExpiry, req.tipHeight).map((d) =>
        d.outpoint
      );
    } catch (err) {
      if (err instanceof LoopkitError) return [];
      throw err;
    }
  } else {
    checked = [];
  }
  const byOutpoint = new Map(req.deposits.map((d) => [d.outpoint, d]));
  const entries: LowConfirmationEntry[] = [];
  for (const op of checked) {
    const d = byOutpoint.get(op);
    if (d === undefined) continue;
    if (d.confirmationHeight <= 0) {
      entries.push({ outpoint: op, confirmations: null });
      continue;
    }
    if (req.csvExpiry <= 0) continue;
    const confs = req.csvExpiry -
      reportedBlocksUntilExpiry(d.confirmationHeight, req.csvExpiry, req.tipHeight) + 1;
    if (confs < LEGACY_MIN_CONFS) entries.push({ outpoint: op, confirmations: confs });
  }
  return entries;
}

/**
 * Loop's warning text for {@linkcode lowConfirmationDeposits} entries, or `""` when there are none.
 *
 * The text starts with a newline and ends with one after the last sentence; Loop prints it with
 * `fmt.Println`, which adds the empty line after it — print it the same way (one more newline), on
 * stdout, also with `--force`.
 */
export function formatLowConfirmationWarning(entries: readonly LowConfirmationEntry[]): string {
  if (entries.length === 0) return "";
  const lines = entries.map((e) =>
    e.confirmations === null
      ? `  - ${e.outpoint} (unconfirmed)`
      : `  - ${e.outpoint} (${e.confirmations} confirmations)`
  );
  return `\nWARNING: The following deposits are below the conservative ${LEGACY_MIN_CONFS}-confirmation threshold:\n` +
    `${lines.join("\n")}\n` +
    "The swap payment for these deposits may wait for more confirmations depending on the server's " +
    "confirmation-risk policy.\n";
}
