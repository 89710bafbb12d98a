/**
 * The reconcile pass as a pure function: wallet view + stored deposits + tip height → a plan.
 * Rules: spec/static-address-and-deposits.md §4.6 and §4.10, with loopkit's persisted `Replaced`
 * and `wallet_visible` (spec/README.md decision 2, Appendix A).
 *
 * @module
 */
import type { Utxo } from "../../lnd/types.ts";
import { LoopkitError } from "../errors.ts";
import { type Deposit, type DepositState, outpointOf } from "./types.ts";
import { nextState } from "./fsm.ts";
import { equalBytes } from "@noble/curves/utils.js";

/** A deposit to create (`Deposited`). */
export interface NewDepositPlan {
  txid: string;
  vout: number;
  amountSat: bigint;
  confirmationHeight: number;
  pkScript: Uint8Array;
}

/** A change to a stored deposit; only the fields that change are set. */
export interface DepositUpdatePlan {
  depositId: Uint8Array;
  outpoint: string;
  /** New state, when it changes (writes a history row). */
  state?: DepositState;
  /** New first-confirmation height, when it changes (writes a history row repeating the state). */
  confirmationHeight?: number;
  /** New wallet visibility, when it changes. */
  walletVisible?: boolean;
  /** State after the update (for the history row). */
  resultingState: DepositState;
  /** Why, for output: `confirmed`, `unconfirmed_again`, `replaced`, `revived`, `vanished`, `reappeared`. */
  reasons: string[];
}

/** The result of {@linkcode planReconcile}. */
export interface ReconcilePlan {
  create: NewDepositPlan[];
  update: DepositUpdatePlan[];
}

/**
 * First-confirmation height from a confirmation count (§4.6(2)): `confs ≤ 0` → 0, else `tip − confs + 1`.
 * @throws {LoopkitError} `chain_height_unavailable` when `tip` is 0; `invalid_confirmation_height` when the
 *   result is ≤ 0 (lnd's wallet view is ahead of the tip it reported)
 */
export function confirmationHeightOf(confirmations: number, tip: number): number {
  if (confirmations <= 0) return 0;
  if (tip <= 0) {
    throw new LoopkitError("chain_height_unavailable", "Current block height unavailable from lnd");
  }
  const h = tip - confirmations + 1;
  if (h <= 0) {
    throw new LoopkitError(
      "invalid_confirmation_height",
      `Invalid confirmation height ${h} from ${confirmations} confirmations at tip ${tip}`,
    );
  }
  return h;
}

/**
 * Keeps the wallet UTXOs paying one of `pkScripts`, dropping duplicate outpoints (first wins, lnd's order).
 * Byte comparison with an early exit: linear in the wallet size, no per-UTXO allocation for foreign outputs.
 * @param utxos lnd `ListUnspent(0, 0)` result
 * @param pkScripts our static-address pkScripts (34-byte P2TR)
 */
export function filterOurUtxos(utxos: readonly Utxo[], pkScripts: readonly Uint8Array[]): Utxo[] {
  const seen = new Set<string>();
  const out: Utxo[] = [];
  for (const u of utxos) {
    const s = u.pkScript;
    if (s.length !== 34 || s[0] !== 0x51 || s[1] !== 0x20) continue;
    if (!pkScripts.some((p) => equalBytes(p, s))) continue;
    const op = outpointOf(u);
    if (seen.has(op)) continue;
    seen.add(op);
    out.push(u);
  }
  return out;
}

/** The fields of a stored deposit the reconcile plan reads. */
export type ReconcileDeposit = Pick<
  Deposit,
  "depositId" | "txid" | "vout" | "state" | "confirmationHeight" | "walletVisible" | "pkScript"
>;

/**
 * Plans one reconcile pass.
 *
 * - A wallet outpoint not stored → create `Deposited` at once, 0-conf included, height from §4.6(2).
 * - A stored outpoint in the wallet, any state: height 0 if 0 confs (reorg resets), kept once > 0,
 *   else derived; a `Replaced` one is revived to `Deposited` (same record); an invisible one is visible again.
 * - A stored `Deposited` outpoint missing from the wallet: unconfirmed → `Replaced`; confirmed →
 *   `walletVisible = false` (stays listed, not selectable). Other states are left to their own flows.
 *
 * @param ours wallet UTXOs already filtered to our pkScripts ({@linkcode filterOurUtxos})
 * @param stored every stored deposit
 * @param tip the chain tip height lnd reported
 * @throws {LoopkitError} from {@linkcode confirmationHeightOf}
 */
export function planReconcile(
  ours: readonly Utxo[],
  stored: readonly ReconcileDeposit[],
  tip: number,
): ReconcilePlan {
  const byOutpoint = new Map(stored.map((d) => [outpointOf(d), d]));
  const visible = new Set<string>();
  const create: NewDepositPlan[] = [];
  const update: DepositUpdatePlan[] = [];
  for (const u of ours) {
    const op = outpointOf(u);
    visible.add(op);
    const d = byOutpoint.get(op);
    if (!d) {
      create.push({
        txid: u.txid,
        vout: u.vout,
        amountSat: u.amountSat,
        confirmationHeight: confirmationHeightOf(u.confirmations, tip),
        pkScript: u.pkScript,
      });
      continue;
    }
    const plan: DepositUpdatePlan = {
      depositId: d.depositId,
      outpoint: op,
      resultingState: d.state,
      reasons: [],
    };
    let target: number;
    if (u.confirmations <= 0) target = 0;
    else if (d.confirmationHeight > 0) target = d.confirmationHeight;
    else target = confirmationHeightOf(u.confirmations, tip);
    if (target !== d.confirmationHeight) {
      plan.confirmationHeight = target;
      plan.reasons.push(target === 0 ? "unconfirmed_again" : "confirmed");
    }
    if (d.state === "Replaced") {
      plan.state = nextState(d.state, "OnRevived");
      plan.resultingState = plan.state;
      plan.reasons.push("revived");
    }
    if (!d.walletVisible) {
      plan.walletVisible = true;
      plan.reasons.push("reappeared");
    }
    if (!equalBytes(d.pkScript, u.pkScript)) {
      throw new LoopkitError(
        "deposit_pkscript_mismatch",
        `Deposit ${op} is stored with another pkScript than the wallet reports; refusing to reconcile`,
      );
    }
    if (plan.reasons.length) update.push(plan);
  }
  for (const d of stored) {
    const op = outpointOf(d);
    if (visible.has(op) || d.state !== "Deposited") continue;
    if (d.confirmationHeight === 0) {
      update.push({
        depositId: d.depositId,
        outpoint: op,
        state: nextState(d.state, "OnReplaced"),
        resultingState: "Replaced",
        reasons: ["replaced"],
      });
    } else if (d.walletVisible) {
      update.push({
        depositId: d.depositId,
        outpoint: op,
        walletVisible: false,
        resultingState: d.state,
        reasons: ["vanished"],
      });
    }
  }
  return { create, update };
}
