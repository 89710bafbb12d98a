/**
 * The loop-in state machine as data: Loop's transition table (spec/static-loop-in.md §2.2) plus
 * loopkit's additions for the armed watch and "settlement wins" (spec/static-loop-in-review.md
 * §1.1–1.3, §1.6; spec/README.md decision 6). `fsm.md` beside this file documents the same table with
 * the reason for every addition; `fsm_test.ts` checks the two agree, row for row.
 *
 * loopkit runs no FSM goroutines: the orchestration code advances a swap by one persisted state change
 * at a time (a conditional UPDATE from the expected state, in one transaction with its deposits).
 * {@linkcode nextLoopInState} is the single place that says whether a change is allowed.
 *
 * @module
 */
import { LoopkitError } from "../errors.ts";
import {
  FINAL_LOOP_IN_STATES,
  LOOP_IN_INITIAL_STATE,
  type LoopInEvent,
  type LoopInFsmState,
  type LoopInState,
} from "./types.ts";

/** A transition table: state → event → target. */
export type LoopInTransitionTable = Readonly<
  Record<LoopInFsmState, Readonly<Partial<Record<LoopInEvent, LoopInState>>>>
>;

/**
 * Loop's transitions (spec §2.2), unchanged, keyed by state. Kept separate so tests and docs can tell
 * Loop's rows from loopkit's.
 */
export const LOOP_TRANSITIONS: LoopInTransitionTable = {
  [LOOP_IN_INITIAL_STATE]: { OnInitHtlc: "InitHtlcTx" },
  InitHtlcTx: { OnHtlcInitiated: "SignHtlcTx", OnRecover: "UnlockDeposits", OnError: "UnlockDeposits" },
  SignHtlcTx: {
    OnHtlcTxSigned: "MonitorInvoiceAndHtlcTx",
    OnRecover: "UnlockDeposits",
    OnError: "UnlockDeposits",
  },
  MonitorInvoiceAndHtlcTx: {
    OnPaymentReceived: "PaymentReceived",
    OnSweepHtlcTimeout: "SweepHtlcTimeout",
    OnSwapTimedOut: "Failed",
    OnRecover: "MonitorInvoiceAndHtlcTx",
    OnError: "UnlockDeposits",
  },
  SweepHtlcTimeout: {
    OnHtlcTimeoutSweepPublished: "MonitorHtlcTimeoutSweep",
    OnRecover: "SweepHtlcTimeout",
    OnError: "Failed",
  },
  MonitorHtlcTimeoutSweep: {
    OnHtlcTimeoutSwept: "HtlcTimeoutSwept",
    OnRecover: "MonitorHtlcTimeoutSweep",
    OnError: "Failed",
  },
  PaymentReceived: {
    OnSucceeded: "Succeeded",
    OnRecover: "Succeeded",
    OnError: "SucceededTransitioningFailed",
  },
  UnlockDeposits: { OnRecover: "UnlockDeposits", OnError: "Failed" },
  HtlcTimeoutSwept: {},
  Succeeded: {},
  SucceededTransitioningFailed: {},
  Failed: {},
};

/**
 * loopkit's additional transitions (fsm.md "loopkit additions" gives the reason for each):
 *
 * - `UnlockDeposits —OnSweepHtlcTimeout→ SweepHtlcTimeout`, `Failed —OnSweepHtlcTimeout→
 *   SweepHtlcTimeout`: an armed swap stays watched whatever its state; a late HTLC variant is swept
 *   through the timeout path (review §1.1, §1.3; decision 6).
 * - `UnlockDeposits —OnPaymentReceived→ PaymentReceived`: settlement wins; lnd refused the cancel
 *   because the invoice is already settled (review §1.6, §1.7).
 * - `MonitorHtlcTimeoutSweep —OnSweepHtlcTimeout→ SweepHtlcTimeout`: rebuild a timeout sweep that did
 *   not confirm (single-party spend of the same HTLC output; any version that confirms is ours).
 */
export const LOOPKIT_ADDED_TRANSITIONS: Readonly<
  Partial<Record<LoopInFsmState, Readonly<Partial<Record<LoopInEvent, LoopInState>>>>>
> = {
  UnlockDeposits: { OnSweepHtlcTimeout: "SweepHtlcTimeout", OnPaymentReceived: "PaymentReceived" },
  Failed: { OnSweepHtlcTimeout: "SweepHtlcTimeout" },
  MonitorHtlcTimeoutSweep: { OnSweepHtlcTimeout: "SweepHtlcTimeout" },
};

function merge(): LoopInTransitionTable {
  const out: Record<string, Partial<Record<LoopInEvent, LoopInState>>> = {};
  for (const [from, row] of Object.entries(LOOP_TRANSITIONS)) {
    out[from] = { ...row, ...(LOOPKIT_ADDED_TRANSITIONS[from as LoopInFsmState] ?? {}) };
  }
  return out as LoopInTransitionTable;
}

/** The transition table loopkit enforces: Loop's (spec §2.2) plus {@linkcode LOOPKIT_ADDED_TRANSITIONS}. */
export const LOOP_IN_TRANSITIONS: LoopInTransitionTable = merge();

/**
 * The state `event` leads to from `from` (spec §2.2 plus fsm.md's loopkit additions).
 *
 * @param from current state (`""` for a swap not created yet)
 * @param event the event the orchestration wants to send
 * @returns the target state
 * @throws {LoopkitError} `loopin_event_rejected` (exit 1) when the table does not list `event` for
 *   `from`; nothing may change then
 */
export function nextLoopInState(from: LoopInFsmState, event: LoopInEvent): LoopInState {
  const to = LOOP_IN_TRANSITIONS[from]?.[event];
  if (to === undefined) {
    throw new LoopkitError(
      "loopin_event_rejected",
      `Loop-in event ${event} is not allowed in state ${from === "" ? '"" (initial)' : from}`,
    );
  }
  return to;
}

/** True when the table lists `event` for `from`. */
export function acceptsLoopInEvent(from: LoopInFsmState, event: LoopInEvent): boolean {
  return LOOP_IN_TRANSITIONS[from]?.[event] !== undefined;
}

/** True for Loop's four final states (spec §2.1); see {@linkcode isWatchedLoopIn} for loopkit's watch. */
export function isFinalLoopInState(state: LoopInState): boolean {
  return FINAL_LOOP_IN_STATES.has(state);
}

/**
 * The event a run sends to resume a stored swap (spec §2.5, with loopkit's marker, spec §2.6 item 2 and
 * review §1.1): an armed `SignHtlcTx` (the "signatures pushed" marker is set) resumes in the monitor
 * state through `OnHtlcTxSigned` instead of unlocking; every other pending state gets `OnRecover`.
 *
 * @param state the stored state (must be pending)
 * @param armed true when the "signatures pushed" marker is persisted for this swap
 * @throws {LoopkitError} `loopin_event_rejected` for a final state (nothing to resume)
 */
export function recoveryEvent(state: LoopInState, armed: boolean): LoopInEvent {
  if (isFinalLoopInState(state)) {
    throw new LoopkitError("loopin_event_rejected", `Loop-in in final state ${state} has nothing to resume`);
  }
  if (state === "SignHtlcTx" && armed) return "OnHtlcTxSigned";
  return "OnRecover";
}

/**
 * True while loopkit must keep watching the chain for this swap's HTLC variants (review §1.1): the
 * swap is armed, no HTLC timeout sweep has confirmed and the deposits have not been spent by something
 * other than an HTLC variant. A succeeded swap is not watched (the server holds the preimage; the
 * HTLC, if published, is the server's).
 *
 * @param state current state
 * @param armed the "signatures pushed" marker
 * @param depositsSpentElsewhere true once a deposit is seen spent by a transaction that is not one of
 *   the swap's three HTLC variants (a chain fact)
 */
export function isWatchedLoopIn(
  state: LoopInState,
  armed: boolean,
  depositsSpentElsewhere: boolean,
): boolean {
  if (!armed || depositsSpentElsewhere) return false;
  return state !== "HtlcTimeoutSwept" && state !== "Succeeded" && state !== "SucceededTransitioningFailed" &&
    state !== "PaymentReceived";
}
