/**
 * Deposit availability before signing the HTLC transactions (spec/static-loop-in.md §3.8; Loop's
 * `txout_checker.go` over lnd `GetTransactions{start_height 0, end_height −1}`).
 *
 * @module
 */
import { Transaction } from "@scure/btc-signer";
import { parseOutpoint } from "../staticaddr/outpoint.ts";
import { hex } from "@scure/base";
import { serverError } from "./_util.ts";

/** One entry of lnd's wallet transaction list. */
export interface WalletTx {
  /** `raw_tx_hex` (field 9), decoded to bytes. */
  rawTx: Uint8Array;
  /** `previous_outpoints[].outpoint` (field 12), `txid:vout` strings. */
  previousOutpoints: readonly string[];
}

/** Result of {@linkcode depositAvailability}; both lists keep the input order. */
export interface DepositAvailability {
  /** Outpoints with a live output and no known spend. */
  available: string[];
  /** Outpoints whose output the wallet does not know, or knows spent. */
  missing: string[];
}

/**
 * Which requested outpoints are still available (spec §3.8): an outpoint is available when a wallet
 * transaction with its txid has an output at its index ("live") and no wallet transaction spends it
 * ("spent", from `previous_outpoints` or from the decoded inputs; a known spend wins regardless of order).
 *
 * Every entry's raw transaction is decoded, as lndclient does: one that is empty or does not decode fails
 * the whole check (the caller must not sign on a partial view).
 *
 * @param outpoints requested outpoints (the swap's snapshot)
 * @param walletTxs lnd's `GetTransactions` answer
 * @returns available and missing outpoints
 * @throws {LoopkitError} exit 1: `wallet_tx_undecodable` naming the entry index;
 *   `invalid_outpoint` for a malformed requested outpoint (exit 2) or `previous_outpoints` entry
 */
export function depositAvailability(
  outpoints: readonly string[],
  walletTxs: readonly WalletTx[],
): DepositAvailability {
  const wanted = new Set<string>();
  const byTxid = new Map<string, number[]>();
  for (const op of outpoints) {
    const { txid, vout } = parseOutpoint(op);
    wanted.add(op);
    byTxid.set(txid, [...(byTxid.get(txid) ?? []), vout]);
  }
  const live = new Set<string>();
  const spent = new Set<string>();
  walletTxs.forEach((wtx, i) => {
    let tx: Transaction;
    try {
      if (!(wtx.rawTx instanceof Uint8Array) || wtx.rawTx.length === 0) {
        throw new Error("empty raw transaction");
      }
      tx = Transaction.fromRaw(wtx.rawTx, {
        allowUnknownOutputs: true,
        allowUnknownInputs: true,
        disableScriptCheck: true,
        allowLegacyWitnessUtxo: true,
      });
    } catch (cause) {
      throw serverError(
        "wallet_tx_undecodable",
        `unable to check deposits: lnd GetTransactions entry ${i} has a raw_tx_hex that does not decode as a transaction`,
        cause,
      );
    }
    const vouts = byTxid.get(tx.id);
    if (vouts !== undefined) {
      for (const vout of vouts) if (vout < tx.outputsLength) live.add(`${tx.id}:${vout}`);
    }
    for (const prev of wtx.previousOutpoints ?? []) if (wanted.has(prev)) spent.add(prev);
    for (let j = 0; j < tx.inputsLength; j++) {
      const input = tx.getInput(j);
      if (input.txid === undefined || input.index === undefined) continue;
      const op = `${hex.encode(input.txid)}:${input.index}`;
      if (wanted.has(op)) spent.add(op);
    }
  });
  const available: string[] = [];
  const missing: string[] = [];
  for (const op of outpoints) (live.has(op) && !spent.has(op) ? available : missing).push(op);
  return { available, missing };
}
