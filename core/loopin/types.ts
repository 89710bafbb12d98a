/**
 * Static loop-in: state and event names, HTLC fee variants and the constants of the flow
 * (spec/static-loop-in.md §2.1, §3.12; spec/static-loop-in-review.md).
 *
 * Pure data. Amounts are `bigint` sat, heights and block counts `number`, durations seconds.
 *
 * @module
 */

/**
 * Persisted loop-in states, Loop's names and order (spec §2.1). The empty initial state `""` is
 * never persisted and is not in this list (see {@linkcode LOOP_IN_INITIAL_STATE}).
 */
export const LOOP_IN_STATES = [
  "InitHtlcTx",
  "SignHtlcTx",
  "MonitorInvoiceAndHtlcTx",
  "PaymentReceived",
  "SweepHtlcTimeout",
  "MonitorHtlcTimeoutSweep",
  "UnlockDeposits",
  "HtlcTimeoutSwept",
  "Succeeded",
  "SucceededTransitioningFailed",
  "Failed",
] as const;

/** One of {@linkcode LOOP_IN_STATES}. */
export type LoopInState = typeof LOOP_IN_STATES[number];

/** Loop's empty initial FSM state (spec §2.1): the swap exists only in memory; never persisted. */
export const LOOP_IN_INITIAL_STATE = "" as const;

/** A state the FSM can be in: a persisted state or the empty initial one. */
export type LoopInFsmState = LoopInState | typeof LOOP_IN_INITIAL_STATE;

/** Loop's loop-in events (spec §2.1). `NoOp` is not an event: it means "stay, stop processing". */
export const LOOP_IN_EVENTS = [
  "OnInitHtlc",
  "OnHtlcInitiated",
  "OnHtlcTxSigned",
  "OnSweepHtlcTimeout",
  "OnHtlcTimeoutSweepPublished",
  "OnHtlcTimeoutSwept",
  "OnPaymentReceived",
  "OnSwapTimedOut",
  "OnSucceeded",
  "OnRecover",
  "OnError",
] as const;

/** One of {@linkcode LOOP_IN_EVENTS}. */
export type LoopInEvent = typeof LOOP_IN_EVENTS[number];

/**
 * Loop's final states (spec §2.1). In loopkit `Failed` of an *armed* swap (HTLC signatures pushed, or a
 * push attempted) is still watched and leaves through `OnSweepHtlcTimeout` if an HTLC variant confirms
 * (review §1.1–1.3; fsm.md "loopkit additions").
 */
export const FINAL_LOOP_IN_STATES: ReadonlySet<LoopInState> = new Set<LoopInState>([
  "HtlcTimeoutSwept",
  "Succeeded",
  "SucceededTransitioningFailed",
  "Failed",
]);

/** The pending (non-final) states, the ones loaded and resumed on every run (spec §2.1, §2.5). */
export const PENDING_LOOP_IN_STATES: ReadonlySet<LoopInState> = new Set<LoopInState>(
  LOOP_IN_STATES.filter((s) => !FINAL_LOOP_IN_STATES.has(s)),
);

/** True when `s` is a persisted loop-in state name. */
export function isLoopInState(s: string): s is LoopInState {
  return (LOOP_IN_STATES as readonly string[]).includes(s);
}

/** True when `s` is a loop-in event name. */
export function isLoopInEvent(s: string): s is LoopInEvent {
  return (LOOP_IN_EVENTS as readonly string[]).includes(s);
}

/**
 * `StaticAddressLoopInSwapState` RPC enum value of each state (spec §1.5), for `--json` parity with
 * `loop static listswaps`.
 */
export const LOOP_IN_STATE_RPC: Readonly<Record<LoopInState, { name: string; value: number }>> = {
  InitHtlcTx: { name: "INIT_HTLC", value: 1 },
  SignHtlcTx: { name: "SIGN_HTLC_TX", value: 2 },
  MonitorInvoiceAndHtlcTx: { name: "MONITOR_INVOICE_HTLC_TX", value: 3 },
  PaymentReceived: { name: "PAYMENT_RECEIVED", value: 4 },
  SweepHtlcTimeout: { name: "SWEEP_STATIC_ADDRESS_HTLC_TIMEOUT", value: 5 },
  MonitorHtlcTimeoutSweep: { name: "MONITOR_HTLC_TIMEOUT_SWEEP", value: 6 },
  HtlcTimeoutSwept: { name: "HTLC_STATIC_ADDRESS_TIMEOUT_SWEPT", value: 7 },
  Succeeded: { name: "SUCCEEDED", value: 8 },
  SucceededTransitioningFailed: { name: "SUCCEEDED_TRANSITIONING_FAILED", value: 9 },
  UnlockDeposits: { name: "UNLOCK_DEPOSITS", value: 10 },
  Failed: { name: "FAILED_STATIC_ADDRESS_SWAP", value: 11 },
};

/**
 * The three HTLC transactions the client signs, one per server fee rate (spec §1.4
 * `standard_htlc_info` / `high_fee_htlc_info` / `extreme_fee_htlc_info`, §4.3).
 */
export const HTLC_VARIANTS = ["standard", "high", "extreme"] as const;

/** One of {@linkcode HTLC_VARIANTS}. */
export type HtlcVariant = typeof HTLC_VARIANTS[number];

/** Dust limit of a P2TR output, sat (`DustLimitForSize(P2TRSize)`, spec §3.3). */
export const DUST_LIMIT_SAT = 330n;

/**
 * Auto-selection runway, blocks: a confirmed deposit needs at least this many blocks until its CSV
 * expiry (Loop's `DefaultLoopInOnChainCltvDelta` 1000 + `DepositHtlcDelta` 50; spec §3.2). loopkit
 * applies it to manual selection too (review §1.4).
 */
export const MIN_RUNWAY_BLOCKS = 1050;

/** Smallest HTLC CLTV distance from the initiation height, blocks (spec §3.7 `swap expiry too soon`). */
export const HTLC_EXPIRY_MIN_DELTA = 100;

/** Largest HTLC CLTV distance from the initiation height, blocks (spec §3.7 `swap expiry too far`). */
export const HTLC_EXPIRY_MAX_DELTA = 1500;

/**
 * Blocks the HTLC CLTV must stay below the earliest deposit expiry height (Loop's `DepositHtlcDelta`;
 * review §1.4: `htlc_expiry + 50 > earliest deposit expiry` is refused).
 */
export const DEPOSIT_HTLC_DELTA = 50;

/** Payment timeout used when the request says 0, seconds (spec §3.9, scenario 31). */
export const DEFAULT_PAYMENT_TIMEOUT_SEC = 60;

/** Confirmations of every selected deposit that start the legacy payment deadline (spec §3.9). */
export const LEGACY_MIN_CONFS = 6;

/** Confirmations after which an HTLC variant or the timeout sweep counts as confirmed (spec §3.11, §3.12). */
export const HTLC_CONFIRMATIONS = 3;

/** Swap invoice expiry, seconds: 365 days (spec §3.6). */
export const INVOICE_EXPIRY_SEC = 31_536_000;

/** Swap invoice memo (spec §3.6). */
export const INVOICE_MEMO = "static address loop-in";

/** Largest `--max_swap_fee_sat` accepted, sat (spec §3.4 step 9). */
export const MAX_SWAP_FEE_SAT_LIMIT = 10_000_000n;

/** Parts-per-million base of `--max_swap_fee_ppm` (spec §3.4 step 9): also its largest value. */
export const PPM_BASE = 1_000_000n;

/** Largest label, bytes of UTF-8 (spec §3.4 step 3). */
export const LABEL_MAX_BYTES = 500;

/** Label prefix reserved for Loop's own swaps (spec §3.4 step 3). */
export const RESERVED_LABEL_PREFIX = "[reserved]";

/** HTLC fee cap of the standard variant, percent of the swap amount (spec §3.7). */
export const STANDARD_FEE_CAP_PERCENT = 20;

/** HTLC fee cap of the high and extreme variants, percent of the swap amount (spec §3.7). */
export const BACKUP_FEE_CAP_PERCENT = 50;

/** Swap protocol version sent in terms, quote and probe: `ProtocolVersion.MUSIG2` (spec §1.4). */
export const SWAP_PROTOCOL_MUSIG2 = 11;

/** Static-address protocol version sent in `ServerStaticAddressLoopIn`: `V0` (spec §1.4). */
export const STATIC_ADDRESS_PROTOCOL_VERSION = 0;

/** HTLC key family for the client's HTLC key (spec §1.2, §3.12). */
export const HTLC_KEY_FAMILY = 42060;

/** Length of a MuSig2 public nonce (two compressed points), bytes (spec §1.4). */
export const MUSIG2_PUBNONCE_BYTES = 66;

/** Retry delay of a failed timeout-sweep publish, seconds (spec §2.3, §3.12). */
export const TIMEOUT_SWEEP_RETRY_SEC = 3600;

/** Confirmation target of the timeout-sweep fee estimate (spec §4.5). */
export const TIMEOUT_SWEEP_CONF_TARGET = 3;

/** Error message pushed for a sweep request while the swap has not succeeded (spec §4.6 step 3). */
export const SWEEP_NOT_FINISHED_MESSAGE = "swap not finished yet";

/** Label of the timeout-sweep transaction in lnd (spec §3.12): `htlc-timeout-sweep-<swap hash hex>`. */
export function timeoutSweepLabel(swapHashHex: string): string {
  return `htlc-timeout-sweep-${swapHashHex}`;
}
