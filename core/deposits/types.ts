/**
 * Deposit states and records (spec/static-address-and-deposits.md §4.1–§4.2, spec/README.md decision 2).
 *
 * @module
 */

/**
 * Persisted deposit states: Loop's names (§4.2) plus loopkit's `Replaced` (decision 2) and `SpentElsewhere`
 * (the output was spent by a transaction loopkit did not make: fsm.md).
 */
export const DEPOSIT_STATES = [
  "Deposited",
  "Withdrawing",
  "Withdrawn",
  "LoopingIn",
  "LoopedIn",
  "SweepHtlcTimeout",
  "HtlcTimeoutSwept",
  "PublishExpirySweep",
  "WaitForExpirySweep",
  "Expired",
  "OpeningChannel",
  "ChannelPublished",
  "Replaced",
  "SpentElsewhere",
] as const;

/** One of {@linkcode DEPOSIT_STATES}. */
export type DepositState = typeof DEPOSIT_STATES[number];

/** Final states: nothing happens to such a deposit any more (§4.2, plus loopkit's `SpentElsewhere`). */
export const FINAL_STATES: ReadonlySet<DepositState> = new Set([
  "Expired",
  "Withdrawn",
  "LoopedIn",
  "HtlcTimeoutSwept",
  "ChannelPublished",
  "SpentElsewhere",
]);

/** True when `s` is a known state name. */
export function isDepositState(s: string): s is DepositState {
  return (DEPOSIT_STATES as readonly string[]).includes(s);
}

/** A deposit as stored. */
export interface Deposit {
  /** 32 random bytes. */
  depositId: Uint8Array;
  /** Funding txid, display hex. */
  txid: string;
  /** Output index. */
  vout: number;
  /** Value in sat. */
  amountSat: bigint;
  /** First-confirmation height; 0 while unconfirmed (§4.6). */
  confirmationHeight: number;
  /** pkScript of the static address it pays. */
  pkScript: Uint8Array;
  /** Destination of the expiry sweep (a fresh wallet address's pkScript). */
  timeoutSweepPkScript: Uint8Array;
  /** Current state. */
  state: DepositState;
  /** False while a confirmed deposit is missing from the wallet view (decision 2). */
  walletVisible: boolean;
  /** Expiry sweep txid (display hex), once the sweep is signed and stored. */
  expirySweepTxid: string | null;
  /** The one signed expiry sweep (raw transaction), stored before it is first published. */
  expirySweepTx: Uint8Array | null;
  /** Swap hash of the loop-in that uses it, hex. */
  swapHash: string | null;
  /**
   * The transaction loopkit did not make that spent the output (`SpentElsewhere`, from lnd's spend
   * notifier): its txid (display hex) and block height; null otherwise.
   */
  spentBy: { txid: string; height: number } | null;
}

/** `txid:vout`. */
export function outpointOf(d: { txid: string; vout: number }): string {
  return `${d.txid}:${d.vout}`;
}
