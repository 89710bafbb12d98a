/**
 * Deposit views for `deposits list` and `deposits summary`: which deposits are visible, and totals per
 * category like Loop's `GetStaticAddressSummary` (spec/static-address-and-deposits.md §4.11, §4.15), adapted
 * to loopkit's persisted `Replaced` (spec/README.md decision 2).
 *
 * @module
 */
import type { Deposit, DepositState } from "./types.ts";

/**
 * Summary categories. Every visible deposit falls into exactly one, so the categories add up to the list;
 * `replaced` deposits are hidden and counted apart.
 */
export const SUMMARY_CATEGORIES = [
  "unconfirmed",
  "deposited",
  "unavailable",
  "looping_in",
  "looped_in",
  "withdrawing",
  "withdrawn",
  "expiry_sweeping",
  "expired",
  "htlc_timeout_sweeping",
  "htlc_timeout_swept",
  "opening_channel",
  "channel_published",
  "spent_elsewhere",
] as const;

/** One of {@linkcode SUMMARY_CATEGORIES}. */
export type SummaryCategory = typeof SUMMARY_CATEGORIES[number];

/** Count and total value of one category. */
export interface CategoryTotal {
  count: number;
  valueSat: bigint;
}

/** Totals over the visible deposits. */
export interface DepositSummary {
  /** Visible deposits (any state, `Replaced` excluded): Loop's `total_num_deposits`. */
  totalNumDeposits: number;
  /** Sum of all visible deposits' values, sat. */
  totalValueSat: bigint;
  /** Per category; the counts add up to `totalNumDeposits`, the values to `totalValueSat`. */
  categories: Record<SummaryCategory, CategoryTotal>;
  /** Hidden `Replaced` deposits (not part of the totals). */
  replaced: CategoryTotal;
}

/** True when a deposit is shown by a normal listing: every state except `Replaced` (decision 2). */
export function isVisible(d: Pick<Deposit, "state">): boolean {
  return d.state !== "Replaced";
}

const BY_STATE: Record<Exclude<DepositState, "Deposited" | "Replaced">, SummaryCategory> = {
  LoopingIn: "looping_in",
  LoopedIn: "looped_in",
  Withdrawing: "withdrawing",
  Withdrawn: "withdrawn",
  PublishExpirySweep: "expiry_sweeping",
  WaitForExpirySweep: "expiry_sweeping",
  Expired: "expired",
  SweepHtlcTimeout: "htlc_timeout_sweeping",
  HtlcTimeoutSwept: "htlc_timeout_swept",
  OpeningChannel: "opening_channel",
  ChannelPublished: "channel_published",
  SpentElsewhere: "spent_elsewhere",
};

/**
 * The category of a visible deposit. `Deposited` splits three ways: unconfirmed (height 0, Loop's
 * `value_unconfirmed_satoshis`), confirmed and in the wallet (Loop's `value_deposited_satoshis`), and confirmed
 * but missing from the wallet view (loopkit's `unavailable`: listed, not selectable).
 * @throws {RangeError} for a `Replaced` deposit (not visible)
 */
export function categoryOf(
  d: Pick<Deposit, "state" | "confirmationHeight" | "walletVisible">,
): SummaryCategory {
  if (d.state === "Replaced") throw new RangeError("categoryOf: Replaced deposits are not visible");
  if (d.state === "Deposited") {
    if (d.confirmationHeight <= 0) return "unconfirmed";
    return d.walletVisible ? "deposited" : "unavailable";
  }
  return BY_STATE[d.state];
}

/** Totals over `deposits` (spec §4.15, over the visible deposits of §4.11). */
export function summarizeDeposits(deposits: readonly Deposit[]): DepositSummary {
  const categories = Object.fromEntries(
    SUMMARY_CATEGORIES.map((c) => [c, { count: 0, valueSat: 0n }]),
  ) as Record<SummaryCategory, CategoryTotal>;
  const replaced: CategoryTotal = { count: 0, valueSat: 0n };
  let totalNumDeposits = 0;
  let totalValueSat = 0n;
  for (const d of deposits) {
    if (!isVisible(d)) {
      replaced.count++;
      replaced.valueSat += d.amountSat;
      continue;
    }
    const c = categories[categoryOf(d)];
    c.count++;
    c.valueSat += d.amountSat;
    totalNumDeposits++;
    totalValueSat += d.amountSat;
  }
  return { totalNumDeposits, totalValueSat, categories, replaced };
}
