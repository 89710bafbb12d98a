/**
 * The deposit state machine as data: Loop's `DepositStatesV0` transition table
 * (spec/static-address-and-deposits.md §4.4) plus loopkit's persisted `Replaced`
 * (spec/README.md decision 2). `fsm.md` beside this file documents the same table; `fsm_test.ts`
 * checks the two agree, row for row.
 *
 * loopkit has no daemon and no FSM goroutines: every state change is one conditional UPDATE (from the
 * expected state) plus a history row, in one write transaction. {@linkcode nextState} is the single
 * place that says whether a change is allowed.
 *
 * @module
 */
import { LoopkitError } from "../errors.ts";
import { type DepositState, FINAL_STATES } from "./types.ts";

/** Events (§4.3) plus loopkit's `OnReplaced` / `OnRevived` (decision 2) and `OnSpentElsewhere` (fsm.md). */
export const DEPOSIT_EVENTS = [
  "OnStart",
  "OnWithdrawInitiated",
  "OnWithdrawn",
  "OnOpeningChannel",
  "OnChannelPublished",
  "OnLoopInInitiated",
  "OnSweepingHtlcTimeout",
  "OnHtlcTimeoutSwept",
  "OnLoopedIn",
  "OnExpiry",
  "OnExpiryPublished",
  "OnExpirySwept",
  "OnRecover",
  "OnError",
  "OnReplaced",
  "OnRevived",
  "OnSpentElsewhere",
] as const;

/** One of {@linkcode DEPOSIT_EVENTS}. */
export type DepositEvent = typeof DEPOSIT_EVENTS[number];

/**
 * The transition table: state → event → target. An event a state does not list is rejected (§4.4).
 * New deposits are inserted directly as `Deposited` (Loop's `(empty) --OnStart--> Deposited`, whose
 * history row is the creation row).
 */
export const TRANSITIONS: Readonly<
  Record<DepositState, Readonly<Partial<Record<DepositEvent, DepositState>>>>
> = {
  Deposited: {
    OnExpiry: "PublishExpirySweep",
    OnWithdrawInitiated: "Withdrawing",
    OnLoopInInitiated: "LoopingIn",
    OnOpeningChannel: "OpeningChannel",
    OnSweepingHtlcTimeout: "SweepHtlcTimeout",
    OnRecover: "Deposited",
    OnError: "Deposited",
    OnReplaced: "Replaced",
    OnSpentElsewhere: "SpentElsewhere",
  },
  Replaced: {
    OnRevived: "Deposited",
  },
  PublishExpirySweep: {
    OnRecover: "PublishExpirySweep",
    OnExpiryPublished: "WaitForExpirySweep",
    OnError: "Deposited",
    OnSpentElsewhere: "SpentElsewhere",
  },
  WaitForExpirySweep: {
    OnExpirySwept: "Expired",
    OnRecover: "PublishExpirySweep",
    OnError: "Deposited",
    OnSpentElsewhere: "SpentElsewhere",
  },
  Expired: {
    OnExpiry: "Expired",
  },
  Withdrawing: {
    OnWithdrawn: "Withdrawn",
    OnWithdrawInitiated: "Withdrawing",
    OnRecover: "Withdrawing",
    OnExpiry: "Withdrawing",
    OnError: "Deposited",
  },
  LoopingIn: {
    OnLoopedIn: "LoopedIn",
    OnExpiry: "PublishExpirySweep",
    OnSweepingHtlcTimeout: "SweepHtlcTimeout",
    OnLoopInInitiated: "LoopingIn",
    OnRecover: "LoopingIn",
    OnError: "Deposited",
  },
  LoopedIn: {
    OnExpiry: "LoopedIn",
  },
  SweepHtlcTimeout: {
    OnHtlcTimeoutSwept: "HtlcTimeoutSwept",
    OnRecover: "SweepHtlcTimeout",
  },
  HtlcTimeoutSwept: {
    OnExpiry: "HtlcTimeoutSwept",
  },
  Withdrawn: {
    OnExpiry: "Withdrawn",
    OnWithdrawn: "Withdrawn",
  },
  OpeningChannel: {
    OnError: "Deposited",
    OnChannelPublished: "ChannelPublished",
    OnRecover: "OpeningChannel",
    OnExpiry: "OpeningChannel",
  },
  ChannelPublished: {
    OnExpiry: "ChannelPublished",
  },
  SpentElsewhere: {
    OnExpiry: "SpentElsewhere",
  },
};

/**
 * The state `event` leads to from `from` (§4.4 plus decision 2).
 * @throws {LoopkitError} `deposit_event_rejected` when the table does not list `event` for `from`
 */
export function nextState(from: DepositState, event: DepositEvent): DepositState {
  const to = TRANSITIONS[from][event];
  if (to === undefined) {
    throw new LoopkitError(
      "deposit_event_rejected",
      `Deposit event ${event} is not allowed in state ${from}`,
    );
  }
  return to;
}

/** True when the table lists `event` for `from`. */
export function accepts(from: DepositState, event: DepositEvent): boolean {
  return TRANSITIONS[from][event] !== undefined;
}

/** True for the five final states (§4.2) and loopkit's `SpentElsewhere`. */
export function isFinal(state: DepositState): boolean {
  return FINAL_STATES.has(state);
}
