/**
 * `loopin list` / `loopin show`: what the database says about the loop-ins, offline (no lnd, no swap
 * server). Each view carries the state history, the deposits, the invoice, the HTLC txids, the payment
 * deadline and a one-line "what it waits for" (sync.ts `waitingFor`; without a chain tip).
 *
 * @module
 */
import type { Db } from "../db/db.ts";
import { type LoopInSwap, LoopInSwapStore, type LoopInUpdate, swapHashBytes, swapNotFound } from "./store.ts";
import { deadlineOf, waitingFor } from "./sync.ts";
import { LOOP_IN_STATE_RPC, PENDING_LOOP_IN_STATES } from "./types.ts";
import { isWatchedLoopIn } from "./fsm.ts";

/** How long a final swap stays in the default `loopin list`, ms (7 days). */
export const RECENT_MS = 7 * 86_400_000;

/** One loop-in as `list` / `show` present it. */
export interface LoopInView {
  swap: LoopInSwap;
  /** True while the swap is in a pending state (spec §2.1). */
  pending: boolean;
  /** True while loopkit watches the chain for its HTLC variants (review §1.1). */
  watched: boolean;
  /** Payment deadline (start + timeout), when armed. */
  paymentDeadline: Date | null;
  /** One line: what the swap waits for. */
  waitingFor: string;
  /** State history, oldest first (only in `show`; empty in `list`). */
  history: LoopInUpdate[];
}

function viewOf(s: LoopInSwap, now: Date, history: LoopInUpdate[] = []): LoopInView {
  return {
    swap: s,
    pending: PENDING_LOOP_IN_STATES.has(s.state),
    watched: isWatchedLoopIn(s.state, s.armedAt !== null, s.watchEndedAt !== null),
    paymentDeadline: deadlineOf(s),
    waitingFor: waitingFor(s, null, now),
    history,
  };
}

/**
 * The loop-ins, oldest first: by default the pending and watched ones plus final ones changed within
 * {@linkcode RECENT_MS}; `all` lists every one. Reads the database only.
 * @throws {LoopkitError} `db_busy` (exit 75), `db_corrupt`
 */
export async function listLoopIns(db: Db, opts: { all?: boolean; now?: Date } = {}): Promise<LoopInView[]> {
  const now = opts.now ?? new Date();
  const store = new LoopInSwapStore(db);
  const swaps = await store.listSwaps();
  return swaps
    .map((s) => viewOf(s, now))
    .filter((v) =>
      opts.all || v.pending || v.watched || now.getTime() - v.swap.updatedAt.getTime() < RECENT_MS
    );
}

/**
 * One loop-in with its history. Reads the database only.
 * @param swapHash 32 bytes or 64 hex characters
 * @throws {LoopkitError} `invalid_swap_hash` (exit 2), `loopin_not_found` (exit 1), `db_busy` (exit 75)
 */
export async function showLoopIn(
  db: Db,
  swapHash: Uint8Array | string,
  opts: { now?: Date } = {},
): Promise<LoopInView> {
  const hash = swapHashBytes(swapHash);
  const store = new LoopInSwapStore(db);
  const s = await store.getSwap(hash);
  if (!s) throw swapNotFound(hash);
  return viewOf(s, opts.now ?? new Date(), await store.history(hash));
}

const iso = (d: Date | null) => d?.toISOString() ?? null;
const hex = (b: Uint8Array | null) =>
  b === null ? null : Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/**
 * Stable snake_case JSON of a view (64-bit integers as strings, bytes as hex, times ISO-8601), for `--json`.
 * Never contains the preimage.
 */
export function loopInViewJson(v: LoopInView) {
  const s = v.swap;
  return {
    swap_hash: s.swapHashHex,
    state: s.state,
    state_rpc: LOOP_IN_STATE_RPC[s.state].name,
    pending: v.pending,
    watched: v.watched,
    waiting_for: v.waitingFor,
    label: s.label,
    initiator: s.initiator,
    initiation_height: s.initiationHeight,
    initiation_time: iso(s.initiationTime),
    selected_amount_sat: s.selectedAmountSat.toString(),
    swap_amount_sat: s.swapAmountSat.toString(),
    total_deposit_sat: s.totalDepositSat.toString(),
    change_sat: s.changeSat.toString(),
    quoted_swap_fee_sat: s.quotedSwapFeeSat.toString(),
    max_swap_fee_sat: s.maxSwapFeeSat.toString(),
    payment_timeout_seconds: s.paymentTimeoutSeconds,
    fast: s.fast,
    last_hop: hex(s.lastHop),
    htlc_expiry: s.htlcExpiry,
    swap_invoice: s.swapInvoice,
    invoice_canceled_at: iso(s.invoiceCanceledAt),
    armed_at: iso(s.armedAt),
    risk_decision: s.riskDecision,
    risk_decision_at: iso(s.riskDecisionAt),
    payment_deadline_started_at: iso(s.paymentDeadlineStartedAt),
    payment_deadline_source: s.paymentDeadlineSource,
    payment_deadline: iso(v.paymentDeadline),
    deposits_released_at: iso(s.depositsReleasedAt),
    htlc_txids: s.htlcTxids,
    htlc_fee_rates_sat_per_kw: s.feeRates
      ? {
        standard: s.feeRates.standard.toString(),
        high: s.feeRates.high.toString(),
        extreme: s.feeRates.extreme.toString(),
      }
      : null,
    confirmed_htlc: s.confirmedHtlc
      ? { variant: s.confirmedHtlc.variant, txid: s.confirmedHtlc.txid, height: s.confirmedHtlc.height }
      : null,
    htlc_timeout_sweep_txid: s.timeoutSweep?.txid ?? null,
    htlc_timeout_sweep_fee_sat: s.timeoutSweep?.feeSat?.toString() ?? null,
    htlc_timeout_sweep_published_at: iso(s.timeoutSweep?.publishedAt ?? null),
    htlc_timeout_sweep_confirmed_height: s.timeoutSweep?.confirmedHeight ?? null,
    sweepless_sweep_txid: s.sweeplessSigned?.txid ?? null,
    watch_ended_at: iso(s.watchEndedAt),
    watch_end_reason: s.watchEndReason,
    watch_end_txid: s.watchEndTxid,
    last_error: s.lastError,
    deposits: s.deposits.map((d) => ({
      outpoint: d.outpoint,
      value_sat: d.amountSat.toString(),
      state: d.state,
      confirmation_height: d.confirmationHeight,
      released: d.released,
    })),
    history: v.history.map((h) => ({ state: h.state, event: h.event, reason: h.reason, at: iso(h.at) })),
    created_at: iso(s.createdAt),
    updated_at: iso(s.updatedAt),
  };
}
