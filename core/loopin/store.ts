/**
 * Loop-in rows in the loopkit database (migration 3: `loopin_swaps`, `loopin_swap_deposits`,
 * `loopin_swap_updates`). Our own layout after spec/static-loop-in.md §2.4, with loopkit's decisions
 * (spec/README.md decisions 1 and 6; spec/static-loop-in-review.md §1.1, §1.9, §1.10):
 *
 * - every change is one write transaction: the swap row, its deposits (through the deposit state machine,
 *   `core/deposits/fsm.ts`) and a history row change together or not at all (review §1.9);
 * - a deposit is held by at most one live swap: a partial unique index on the deposit id over the rows not
 *   released, and the deposit's own `Deposited → LoopingIn` step, both inside the creating transaction;
 * - the "signatures pushed" marker (`armed_at`) is written in its own committed transaction before the first
 *   `PushStaticAddressHtlcSigs` (decision 6);
 * - every state change is conditional on the state the caller read (`UPDATE … WHERE state = from`): two
 *   processes never both apply the same step.
 *
 * Amounts are `bigint` sat, fee rates `bigint` sat/kw, heights `number`, times `Date` (stored as ISO-8601
 * UTC text), txids display hex (stored in internal byte order), swap hashes 32 bytes (hex in records).
 *
 * @module
 */
import type { InStatement, Transaction } from "@libsql/client";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { type Db, dbError } from "../db/db.ts";
import { ExitCode, LoopkitError } from "../errors.ts";
import { type DepositEvent, nextState } from "../deposits/fsm.ts";
import { transitionDeposit } from "../deposits/store.ts";
import { type DepositState, isDepositState } from "../deposits/types.ts";
import { formatOutpoint, parseOutpoint, txidFromBytes, txidToBytes } from "../staticaddr/outpoint.ts";
import type { KeyDescriptor } from "../../lnd/types.ts";
import { nextLoopInState } from "./fsm.ts";
import {
  FINAL_LOOP_IN_STATES,
  HTLC_VARIANTS,
  type HtlcVariant,
  isLoopInState,
  type LoopInEvent,
  type LoopInState,
  PENDING_LOOP_IN_STATES,
} from "./types.ts";
import { ownerOf, type OwnerTag } from "./owner.ts";

/** A risk decision as persisted (spec §2.4 `confirmation_risk_decision`). */
export type RiskDecision = "" | "accepted" | "rejected";

/** How the payment deadline was armed (spec §3.9). */
export type DeadlineSource = "risk_accepted" | "legacy_confirmations";

/** One deposit of a swap, in snapshot order, with the deposit's current state. */
export interface LoopInSwapDeposit {
  /** Snapshot position = HTLC input index. */
  position: number;
  depositId: Uint8Array;
  /** `txid:vout`. */
  outpoint: string;
  txid: string;
  vout: number;
  /** Value at swap creation, sat. */
  amountSat: bigint;
  /** True once the swap gave the deposit back (it may be in another swap since). */
  released: boolean;
  /** The deposit's current state (`deposits.state`). */
  state: DepositState;
  /** The deposit's first-confirmation height (0 while unconfirmed). */
  confirmationHeight: number;
  /** The deposit's pkScript (the static address). */
  pkScript: Uint8Array;
}

/** The HTLC variant seen confirmed on chain. */
export interface ConfirmedHtlc {
  variant: HtlcVariant;
  txid: string;
  /** Height of the block holding it. */
  height: number;
}

/** The stored HTLC timeout sweep (stored before it is first published). */
export interface StoredTimeoutSweep {
  /** The signed transaction. */
  tx: Uint8Array;
  txid: string;
  feeSat: bigint | null;
  publishedAt: Date | null;
  /** Height of the block that confirmed it (set once seen with 3 confirmations). */
  confirmedHeight: number | null;
}

/** A stored loop-in. */
export interface LoopInSwap {
  swapHash: Uint8Array;
  /** Swap hash, hex. */
  swapHashHex: string;
  preimage: Uint8Array;
  state: LoopInState;
  initiationHeight: number;
  initiationTime: Date;
  staticAddressId: number;
  /** Requested amount (0: all of the deposits), sat. */
  selectedAmountSat: bigint;
  swapAmountSat: bigint;
  totalDepositSat: bigint;
  /** Change back to the static address: total − swap amount, sat. */
  changeSat: bigint;
  quotedSwapFeeSat: bigint;
  maxSwapFeeSat: bigint;
  paymentTimeoutSeconds: number;
  fast: boolean;
  label: string;
  initiator: string;
  lastHop: Uint8Array | null;
  /** The client HTLC key and its locator. */
  htlcKey: KeyDescriptor;
  htlcServerPubkey: Uint8Array | null;
  /** The HTLC CLTV (`htlc_expiry`), once the server answered. */
  htlcExpiry: number | null;
  swapInvoice: string | null;
  /** Last invoice state lnd reported, and when. */
  invoiceState: string | null;
  invoiceCheckedAt: Date | null;
  htlcTimeoutSweepPkScript: Uint8Array | null;
  /** Fee rates of the three variants, sat/kw. */
  feeRates: Record<HtlcVariant, bigint> | null;
  /** Txids of the three HTLC variants (display hex). */
  htlcTxids: Record<HtlcVariant, string> | null;
  /** The unsigned HTLC transactions, when stored. */
  htlcTxs: Record<HtlcVariant, Uint8Array | null>;
  /** The "signatures pushed" marker: set before the first push attempt. */
  armedAt: Date | null;
  paymentDeadlineStartedAt: Date | null;
  paymentDeadlineSource: DeadlineSource | null;
  riskDecision: RiskDecision;
  riskDecisionAt: Date | null;
  /** Set only after lnd acknowledged the invoice cancel. */
  invoiceCanceledAt: Date | null;
  depositsReleasedAt: Date | null;
  confirmedHtlc: ConfirmedHtlc | null;
  timeoutSweep: StoredTimeoutSweep | null;
  /** The sweepless sweep this swap signed, if any (spec §4.6). */
  sweeplessSigned: { at: Date; txid: string } | null;
  watchEndedAt: Date | null;
  watchEndReason: string | null;
  watchEndTxid: string | null;
  /** The in-progress initiation, or null once it is over. */
  owner: OwnerTag | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** Deposits in snapshot order. */
  deposits: LoopInSwapDeposit[];
}

/** A new swap (state `InitHtlcTx`); the shape `core/loopin/initiate.ts` passes. */
export interface NewSwapRecord {
  swapHash: Uint8Array;
  preimage: Uint8Array;
  htlcKey: KeyDescriptor;
  /** Deposit outpoints in selection order = HTLC input order (the snapshot). */
  depositOutpoints: string[];
  selectedAmountSat: bigint;
  swapAmountSat: bigint;
  totalDepositSat: bigint;
  quotedSwapFeeSat: bigint;
  maxSwapFeeSat: bigint;
  paymentTimeoutSeconds: number;
  label: string;
  initiator: string;
  fast: boolean;
  lastHop: Uint8Array | null;
  initiationHeight: number;
  initiationTime: Date;
  staticAddressId: number;
  /** `pid:<pid>` (this host), an {@linkcode OwnerTag}, or absent (this process). */
  owner?: string | OwnerTag;
}

/** Server parameters stored on `InitHtlcTx → SignHtlcTx`. */
export interface ServerParamsRecord {
  htlcServerPubKey: Uint8Array;
  htlcExpiry: number;
  feeRates: Record<HtlcVariant, bigint>;
  htlcTxids?: Record<HtlcVariant, string>;
  /** The unsigned HTLC transactions (decision 6: sweep whichever variant confirms). */
  htlcTxs?: Record<HtlcVariant, Uint8Array>;
  timeoutSweepPkScript: Uint8Array;
}

/**
 * Swap fields a transition or update may set. `null` clears a column; an absent key leaves it.
 */
export interface SwapFieldUpdate {
  invoiceState?: string | null;
  invoiceCheckedAt?: Date | null;
  paymentDeadlineStartedAt?: Date | null;
  paymentDeadlineSource?: DeadlineSource | null;
  invoiceCanceledAt?: Date | null;
  confirmedHtlc?: ConfirmedHtlc | null;
  timeoutSweep?: { tx: Uint8Array; txid: string; feeSat?: bigint | null } | null;
  timeoutSweepPublishedAt?: Date | null;
  timeoutSweepConfirmedHeight?: number | null;
  watchEnded?: { at: Date; reason: string; txid?: string | null } | null;
  /** The sweepless sweep this swap signed (spec §4.6). */
  sweeplessSigned?: { at: Date; txid: string } | null;
  lastError?: string | null;
}

/** Options of {@linkcode LoopInSwapStore.transition}. */
export interface TransitionOpts {
  /** Why (kept in the history row, and as `last_error` for `OnError`). */
  reason?: string;
  /** Give the deposits back (deposit event `OnError`: `LoopingIn → Deposited`) and mark them released. */
  releaseDeposits?: boolean;
  /** A deposit event applied to every deposit of the swap in the same transaction. */
  depositEvent?: DepositEvent;
  /** Swap fields set in the same transaction. */
  set?: SwapFieldUpdate;
  /**
   * Apply `depositEvent` to the deposits that can take it and leave the others as they are, instead of refusing
   * the whole change. Only for Loop's `SucceededTransitioningFailed` (the invoice was paid: every deposit that
   * can become `LoopedIn` must, so no expiry sweep takes back what the server paid for).
   */
  partialDeposits?: boolean;
}

/** One history row. */
export interface LoopInUpdate {
  state: string;
  event: string | null;
  reason: string;
  at: Date;
}

/** Filter of {@linkcode LoopInSwapStore.listSwaps}. */
export interface ListSwapsFilter {
  /** Only swaps in a pending state (spec §2.1). */
  pendingOnly?: boolean;
  /** Only swaps loopkit still watches (armed, watch not ended, not succeeded or swept; review §1.1). */
  watchedOnly?: boolean;
  /** Pending or watched (what `loopin sync` evaluates). */
  activeOnly?: boolean;
}

type Row = Record<string, unknown>;
type SqlArg = string | number | bigint | Uint8Array | null;

function corrupt(what: string): LoopkitError {
  return new LoopkitError("db_corrupt", `Database has an unreadable loop-in row: ${what}`, ExitCode.Failure);
}

function blob(v: unknown, column: string): Uint8Array {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v instanceof Uint8Array) return new Uint8Array(v);
  throw corrupt(`column ${column} is not a blob`);
}
const optBlob = (v: unknown, column: string) => v == null ? null : blob(v, column);
const optDate = (v: unknown) => v == null ? null : new Date(String(v));
const optTxid = (v: unknown, column: string) => v == null ? null : txidFromBytes(blob(v, column));
const optNum = (v: unknown) => v == null ? null : Number(v);
const iso = (d: Date) => d.toISOString();

/** The 32-byte swap hash from bytes or hex. */
export function swapHashBytes(h: Uint8Array | string): Uint8Array {
  const b = typeof h === "string" ? (/^[0-9a-fA-F]{64}$/.test(h) ? hexToBytes(h.toLowerCase()) : null) : h;
  if (!b || b.length !== 32) {
    throw new LoopkitError(
      "invalid_swap_hash",
      `Invalid swap hash "${
        typeof h === "string" ? h : bytesToHex(h)
      }": expected 32 bytes (64 hex characters)`,
      ExitCode.Usage,
    );
  }
  return b;
}

/** Thrown when the swap is not stored. */
export function swapNotFound(h: Uint8Array): LoopkitError {
  return new LoopkitError(
    "loopin_not_found",
    `Static address loop-in ${bytesToHex(h)} not found in the database`,
    ExitCode.Failure,
  );
}

/** Thrown when another process changed the swap between the read and the write (retry: exit 75). */
export function swapChanged(h: Uint8Array, expected: string, actual: string | null): LoopkitError {
  return new LoopkitError(
    "loopin_state_changed",
    `Loop-in ${bytesToHex(h)} is in state ${actual ?? "(missing)"}, not ${expected}: another loopkit ` +
      "process moved it; retry",
    ExitCode.TempFail,
  );
}

const SWAP_COLUMNS = "*";

/**
 * The deposit events applied, in order, to move a swap deposit in state `from` by `event`; `[]` when it
 * is already where `event` leads (nothing to do); null when it cannot go there.
 *
 * - `OnError` (release): only `LoopingIn` moves (to `Deposited`); a deposit in any other state is left to
 *   the flow that moved it (an expiry sweep, an HTLC timeout, …).
 * - `OnSweepingHtlcTimeout`: an HTLC variant confirmed, so the deposit *is* spent into the HTLC (a chain
 *   fact): a `Replaced` deposit is revived first, one caught in an expiry sweep or a withdrawal is sent back
 *   (`OnError`) first.
 * - other events: straight through the deposit FSM; already in the target state: nothing.
 */
export function depositPath(from: DepositState, event: DepositEvent): DepositEvent[] | null {
  if (event === "OnError") return from === "LoopingIn" ? ["OnError"] : [];
  const target = (() => {
    try {
      return nextState(from, event);
    } catch {
      return null;
    }
  })();
  if (target !== null) return target === from ? [] : [event];
  if (event === "OnSweepingHtlcTimeout") {
    if (from === "SweepHtlcTimeout" || from === "HtlcTimeoutSwept") return [];
    if (from === "Replaced") return ["OnRevived", event];
    if (
      from === "PublishExpirySweep" || from === "WaitForExpirySweep" || from === "Withdrawing" ||
      from === "OpeningChannel"
    ) return ["OnError", event];
    return null;
  }
  if (event === "OnHtlcTimeoutSwept" && from === "HtlcTimeoutSwept") return [];
  if (event === "OnLoopedIn" && from === "LoopedIn") return [];
  if (event === "OnLoopInInitiated" && from === "LoopingIn") return [];
  return null;
}

/**
 * The loop-in store over one open database. Every method is one transaction (or one read); methods that
 * change a swap take the state the caller read and change nothing when the row is in another state.
 *
 * Errors: database failures map through {@linkcode dbError} (busy ⇒ `db_busy`, exit 75); the store's own
 * refusals are {@linkcode LoopkitError}s named per method.
 */
export class LoopInSwapStore {
  readonly db: Db;
  readonly #now: () => Date;

  /**
   * @param db an open, migrated database
   * @param opts `now`: the clock for history rows and decision times (default: the system clock)
   */
  constructor(db: Db, opts: { now?: () => Date } = {}) {
    this.db = db;
    this.#now = opts.now ?? (() => new Date());
  }

  async #write<T>(what: string, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    try {
      return await this.db.write(fn);
    } catch (err) {
      throw dbError(err, what);
    }
  }

  async #read(stmt: InStatement, what: string) {
    try {
      return await this.db.client.execute(stmt);
    } catch (err) {
      throw dbError(err, what);
    }
  }

  /**
   * Creates the swap in `InitHtlcTx` and locks its deposits `Deposited → LoopingIn` (deposit event
   * `OnLoopInInitiated`), with the first history row, in one transaction (spec §2.4 "Create"; review §1.9).
   * Checked inside the transaction: every outpoint is a stored deposit in `Deposited` and no live swap holds
   * it (the partial unique index makes a second live swap impossible even under a race).
   *
   * @throws {LoopkitError} `deposit_not_available` (exit 1) naming the outpoint that is unknown, not
   *   `Deposited`, or held by another swap — nothing is written; `loopin_exists` (exit 1) for a swap hash
   *   already stored; `invalid_outpoint` (exit 2); `db_busy` (exit 75)
   */
  async createSwap(swap: NewSwapRecord): Promise<void> {
    const hash = swapHashBytes(swap.swapHash);
    if (!swap.depositOutpoints.length) {
      throw new LoopkitError("deposit_not_available", "A loop-in needs at least one deposit");
    }
    if (new Set(swap.depositOutpoints).size !== swap.depositOutpoints.length) {
      throw new LoopkitError("deposit_not_available", "A loop-in lists the same deposit twice");
    }
    const outpoints = swap.depositOutpoints.map(parseOutpoint);
    const owner = ownerOf(swap.owner);
    const now = this.#now();
    const taken = (op: string, why: string) =>
      new LoopkitError("deposit_not_available", `Deposit ${op} is not available for a loop-in: ${why}`);
    await this.#write(`creating loop-in ${bytesToHex(hash)}`, async (tx) => {
      const exists = await tx.execute({
        sql: "SELECT 1 FROM loopin_swaps WHERE swap_hash = ?",
        args: [hash],
      });
      if (exists.rows.length) {
        throw new LoopkitError("loopin_exists", `Loop-in ${bytesToHex(hash)} is already stored`);
      }
      await tx.execute({
        sql: `INSERT INTO loopin_swaps (swap_hash, preimage, state, initiation_height, initiation_time,
                static_address_id, selected_amount, swap_amount, total_deposit_amount, quoted_swap_fee,
                max_swap_fee, payment_timeout_seconds, fast, label, initiator, last_hop, htlc_key_family,
                htlc_key_index, htlc_client_pubkey, owner_host, owner_pid, owner_start, created_at, updated_at)
              VALUES (?, ?, 'InitHtlcTx', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        args: [
          hash,
          swap.preimage,
          swap.initiationHeight,
          iso(swap.initiationTime),
          swap.staticAddressId,
          swap.selectedAmountSat,
          swap.swapAmountSat,
          swap.totalDepositSat,
          swap.quotedSwapFeeSat,
          swap.maxSwapFeeSat,
          swap.paymentTimeoutSeconds,
          swap.fast ? 1 : 0,
          swap.label,
          swap.initiator,
          swap.lastHop,
          swap.htlcKey.keyLocator.family,
          swap.htlcKey.keyLocator.index,
          swap.htlcKey.rawKeyBytes,
          owner.host,
          owner.pid,
          owner.start,
          iso(now),
          iso(now),
        ],
      });
      let total = 0n;
      for (let i = 0; i < outpoints.length; i++) {
        const o = outpoints[i];
        const op = formatOutpoint(o);
        const rs = await tx.execute({
          sql: "SELECT deposit_id, amount, state FROM deposits WHERE tx_hash = ? AND out_index = ?",
          args: [txidToBytes(o.txid), o.vout],
        });
        if (!rs.rows.length) throw taken(op, "no such deposit is stored");
        const d = rs.rows[0];
        const depositId = blob(d.deposit_id, "deposit_id");
        if (d.state !== "Deposited") throw taken(op, `it is in state ${String(d.state)}, not Deposited`);
        const held = await tx.execute({
          sql: `SELECT swap_hash FROM loopin_swap_deposits WHERE deposit_id = ? AND released = 0`,
          args: [depositId],
        });
        if (held.rows.length) {
          throw taken(op, `loop-in ${bytesToHex(blob(held.rows[0].swap_hash, "swap_hash"))} holds it`);
        }
        const amount = BigInt(d.amount as bigint);
        total += amount;
        await tx.execute({
          sql: `INSERT INTO loopin_swap_deposits (swap_hash, position, deposit_id, tx_hash, out_index, amount)
                VALUES (?, ?, ?, ?, ?, ?)`,
          args: [hash, i, depositId, txidToBytes(o.txid), o.vout, amount],
        });
        const moved = await transitionDeposit(tx, {
          depositId,
          from: "Deposited",
          events: ["OnLoopInInitiated"],
        }, now);
        if (moved === null) throw taken(op, "its state changed meanwhile");
        await tx.execute({
          sql: "UPDATE deposits SET swap_hash = ? WHERE deposit_id = ?",
          args: [hash, depositId],
        });
      }
      if (total !== swap.totalDepositSat) {
        throw new LoopkitError(
          "deposit_not_available",
          `The deposits hold ${total} sat, not the ${swap.totalDepositSat} sat the loop-in was quoted for`,
        );
      }
      await this.#history(tx, hash, "InitHtlcTx", "OnInitHtlc", "created", now);
    });
  }

  async #history(
    tx: Transaction,
    hash: Uint8Array,
    state: string,
    event: string | null,
    reason: string,
    at: Date,
  ): Promise<void> {
    await tx.execute({
      sql: `INSERT INTO loopin_swap_updates (swap_hash, state, event, reason, update_timestamp)
            VALUES (?, ?, ?, ?, ?)`,
      args: [hash, state, event, reason, iso(at)],
    });
  }

  async #stateOf(tx: Transaction, hash: Uint8Array): Promise<LoopInState | null> {
    const rs = await tx.execute({ sql: "SELECT state FROM loopin_swaps WHERE swap_hash = ?", args: [hash] });
    if (!rs.rows.length) return null;
    const s = String(rs.rows[0].state);
    if (!isLoopInState(s)) throw corrupt(`state "${s}"`);
    return s;
  }

  /** Sets columns of one swap inside `tx` (plus `updated_at`), optionally only in state `expect`. */
  async #set(
    tx: Transaction,
    hash: Uint8Array,
    cols: Record<string, SqlArg>,
    now: Date,
    expect?: LoopInState,
  ): Promise<number> {
    const names = Object.keys(cols);
    const sets = [...names.map((n) => `${n} = ?`), "updated_at = ?"];
    const args: SqlArg[] = [...names.map((n) => cols[n]), iso(now), hash];
    let where = "swap_hash = ?";
    if (expect) {
      where += " AND state = ?";
      args.push(expect);
    }
    const rs = await tx.execute({ sql: `UPDATE loopin_swaps SET ${sets.join(", ")} WHERE ${where}`, args });
    return rs.rowsAffected;
  }

  /** Stores the payment request of the swap invoice (spec §3.6). */
  async setInvoice(swapHash: Uint8Array | string, paymentRequest: string): Promise<void> {
    const hash = swapHashBytes(swapHash);
    await this.#write(`storing the invoice of loop-in ${bytesToHex(hash)}`, async (tx) => {
      if (await this.#set(tx, hash, { swap_invoice: paymentRequest }, this.#now()) === 0) {
        throw swapNotFound(hash);
      }
    });
  }

  /**
   * Stores the server parameters and moves `InitHtlcTx → SignHtlcTx` (`OnHtlcInitiated`), one transaction.
   * @throws {LoopkitError} `loopin_state_changed` (exit 75) when the swap is not in `InitHtlcTx`
   */
  async recordServerParams(swapHash: Uint8Array | string, p: ServerParamsRecord): Promise<void> {
    const hash = swapHashBytes(swapHash);
    const now = this.#now();
    const to = nextLoopInState("InitHtlcTx", "OnHtlcInitiated");
    const cols: Record<string, SqlArg> = {
      state: to,
      htlc_server_pubkey: p.htlcServerPubKey,
      htlc_expiry: p.htlcExpiry,
      htlc_timeout_sweep_pkscript: p.timeoutSweepPkScript,
      fee_rate_standard: p.feeRates.standard,
      fee_rate_high: p.feeRates.high,
      fee_rate_extreme: p.feeRates.extreme,
    };
    for (const v of HTLC_VARIANTS) {
      if (p.htlcTxids) cols[`htlc_txid_${v}`] = txidToBytes(p.htlcTxids[v]);
      if (p.htlcTxs) cols[`htlc_tx_${v}`] = p.htlcTxs[v];
    }
    await this.#write(`storing the server parameters of loop-in ${bytesToHex(hash)}`, async (tx) => {
      if (await this.#set(tx, hash, cols, now, "InitHtlcTx") === 0) {
        throw swapChanged(hash, "InitHtlcTx", await this.#stateOf(tx, hash));
      }
      await this.#history(tx, hash, to, "OnHtlcInitiated", `server htlc_expiry ${p.htlcExpiry}`, now);
    });
  }

  /** Stores the txids of the three HTLC variants (display hex). */
  async recordHtlcTxids(swapHash: Uint8Array | string, txids: Record<HtlcVariant, string>): Promise<void> {
    const hash = swapHashBytes(swapHash);
    const cols: Record<string, SqlArg> = {};
    for (const v of HTLC_VARIANTS) cols[`htlc_txid_${v}`] = txidToBytes(txids[v]);
    await this.#write(`storing the HTLC txids of loop-in ${bytesToHex(hash)}`, async (tx) => {
      if (await this.#set(tx, hash, cols, this.#now()) === 0) throw swapNotFound(hash);
    });
  }

  /**
   * Stores the three unsigned HTLC transactions and their txids (decision 6: whichever variant confirms is
   * swept from its own bytes).
   */
  async recordHtlcTxs(
    swapHash: Uint8Array | string,
    txs: Record<HtlcVariant, { txid: string; tx: Uint8Array }>,
  ): Promise<void> {
    const hash = swapHashBytes(swapHash);
    const cols: Record<string, SqlArg> = {};
    for (const v of HTLC_VARIANTS) {
      cols[`htlc_txid_${v}`] = txidToBytes(txs[v].txid);
      cols[`htlc_tx_${v}`] = txs[v].tx;
    }
    await this.#write(`storing the HTLC transactions of loop-in ${bytesToHex(hash)}`, async (tx) => {
      if (await this.#set(tx, hash, cols, this.#now()) === 0) throw swapNotFound(hash);
    });
  }

  /**
   * Commits the "signatures pushed" marker (decision 6, review §1.1) in its own transaction, with a history
   * row. Idempotent: the first time is kept. Call it before the first `PushStaticAddressHtlcSigs`.
   *
   * Only a swap in `SignHtlcTx` (its server parameters stored, the initiation still owning it) can become armed.
   * A swap another process has moved on meanwhile (e.g. a `loopin sync` that found the initiation's owner gone
   * and unwound it, releasing the deposits) must never get its signatures pushed: the deposits may already be
   * spent or in another swap.
   * @throws {LoopkitError} `loopin_not_found`; `loopin_state_changed` (exit 75) when the swap is not armed and
   *   not in `SignHtlcTx` — nothing written, nothing may be pushed; `db_busy` (exit 75) — then nothing may be
   *   pushed
   */
  async markArmed(swapHash: Uint8Array | string): Promise<void> {
    const hash = swapHashBytes(swapHash);
    const now = this.#now();
    await this.#write(`marking loop-in ${bytesToHex(hash)} armed`, async (tx) => {
      const rs = await tx.execute({
        sql: "UPDATE loopin_swaps SET armed_at = ?, updated_at = ? " +
          "WHERE swap_hash = ? AND armed_at IS NULL AND state = 'SignHtlcTx'",
        args: [iso(now), iso(now), hash],
      });
      if (rs.rowsAffected) {
        await this.#history(tx, hash, "SignHtlcTx", null, "armed: HTLC signatures about to be pushed", now);
        return;
      }
      const row = await tx.execute({
        sql: "SELECT state, armed_at FROM loopin_swaps WHERE swap_hash = ?",
        args: [hash],
      });
      if (!row.rows.length) throw swapNotFound(hash);
      if (row.rows[0].armed_at !== null) return; // already armed: the first time is kept
      throw swapChanged(hash, "SignHtlcTx", row.rows[0].state as LoopInState);
    });
  }

  /**
   * One state change `from —event→ nextLoopInState(from, event)` (or a path of several events, e.g.
   * `["OnPaymentReceived", "OnSucceeded"]`, applied in one transaction) with, in the same transaction, the swap
   * fields in `opts.set`, the deposit event for every deposit of the swap ({@linkcode depositPath}), and a
   * history row. A self-transition (e.g. `OnRecover`) only applies the fields and the deposit event.
   *
   * @returns the new state
   * @throws {LoopkitError} `loopin_event_rejected` (the FSM does not list the event; nothing written),
   *   `loopin_state_changed` (exit 75: another process moved the swap), `loopin_deposit_state` (exit 1: a
   *   deposit cannot take the deposit event; nothing written), `loopin_not_found`
   */
  async transition(
    swapHash: Uint8Array | string,
    from: LoopInState,
    events: LoopInEvent | readonly LoopInEvent[],
    opts: TransitionOpts = {},
  ): Promise<LoopInState> {
    const hash = swapHashBytes(swapHash);
    const list = typeof events === "string" ? [events] : [...events];
    if (!list.length) throw new RangeError("transition: no event");
    const path: { event: LoopInEvent; to: LoopInState }[] = [];
    let at: LoopInState = from;
    for (const e of list) {
      at = nextLoopInState(at, e);
      path.push({ event: e, to: at });
    }
    const to = at;
    const event = list[list.length - 1];
    const now = this.#now();
    const depositEvent: DepositEvent | undefined = opts.depositEvent ??
      (opts.releaseDeposits ? "OnError" : undefined);
    await this.#write(`moving loop-in ${bytesToHex(hash)} to ${to}`, async (tx) => {
      const cols = this.#columns(opts.set ?? {});
      cols.state = to;
      if (event === "OnError" && opts.reason) cols.last_error = opts.reason;
      if (await this.#set(tx, hash, cols, now, from) === 0) {
        const actual = await this.#stateOf(tx, hash);
        if (actual === null) throw swapNotFound(hash);
        throw swapChanged(hash, from, actual);
      }
      if (depositEvent) await this.#moveDeposits(tx, hash, depositEvent, now, opts.partialDeposits ?? false);
      const why = opts.reason ?? "";
      for (let i = 0; i < path.length; i++) {
        const last = i === path.length - 1;
        const step = path[i];
        const prev = i === 0 ? from : path[i - 1].to;
        if (step.to === prev && !(last && (why || depositEvent))) continue;
        await this.#history(
          tx,
          hash,
          step.to,
          step.event,
          last && depositEvent ? `${why}${why ? "; " : ""}deposits ${depositEvent}` : why,
          now,
        );
      }
    });
    return to;
  }

  /**
   * Sets swap fields without a state change (a fact learnt: invoice state, deadline start, HTLC seen, sweep
   * published, watch ended), optionally only while the swap is in `expect`, with a history row when `reason`
   * is given.
   * @returns false when the swap was not in `expect` (nothing written)
   */
  async update(
    swapHash: Uint8Array | string,
    set: SwapFieldUpdate,
    opts: { expect?: LoopInState; reason?: string } = {},
  ): Promise<boolean> {
    const hash = swapHashBytes(swapHash);
    const now = this.#now();
    return await this.#write(`updating loop-in ${bytesToHex(hash)}`, async (tx) => {
      const n = await this.#set(tx, hash, this.#columns(set), now, opts.expect);
      if (n === 0) {
        if (await this.#stateOf(tx, hash) === null) throw swapNotFound(hash);
        return false;
      }
      if (opts.reason) {
        await this.#history(tx, hash, (await this.#stateOf(tx, hash))!, null, opts.reason, now);
      }
      return true;
    });
  }

  #columns(set: SwapFieldUpdate): Record<string, SqlArg> {
    const c: Record<string, SqlArg> = {};
    const d = (v: Date | null | undefined) => v == null ? null : iso(v);
    if ("invoiceState" in set) c.invoice_state = set.invoiceState ?? null;
    if ("invoiceCheckedAt" in set) c.invoice_checked_at = d(set.invoiceCheckedAt);
    if ("paymentDeadlineStartedAt" in set) c.payment_deadline_started_at = d(set.paymentDeadlineStartedAt);
    if ("paymentDeadlineSource" in set) c.payment_deadline_source = set.paymentDeadlineSource ?? null;
    if ("invoiceCanceledAt" in set) c.invoice_canceled_at = d(set.invoiceCanceledAt);
    if ("confirmedHtlc" in set) {
      const h = set.confirmedHtlc;
      c.confirmed_htlc_variant = h?.variant ?? null;
      c.confirmed_htlc_txid = h ? txidToBytes(h.txid) : null;
      c.confirmed_htlc_height = h?.height ?? null;
    }
    if ("timeoutSweep" in set) {
      const s = set.timeoutSweep;
      c.timeout_sweep_tx = s?.tx ?? null;
      c.timeout_sweep_txid = s ? txidToBytes(s.txid) : null;
      c.timeout_sweep_fee = s?.feeSat ?? null;
      c.timeout_sweep_published_at = null;
      c.timeout_sweep_confirmed_height = null;
    }
    if ("timeoutSweepPublishedAt" in set) c.timeout_sweep_published_at = d(set.timeoutSweepPublishedAt);
    if ("timeoutSweepConfirmedHeight" in set) {
      c.timeout_sweep_confirmed_height = set.timeoutSweepConfirmedHeight ?? null;
    }
    if ("watchEnded" in set) {
      const w = set.watchEnded;
      c.watch_ended_at = w ? iso(w.at) : null;
      c.watch_end_reason = w?.reason ?? null;
      c.watch_end_txid = w?.txid ? txidToBytes(w.txid) : null;
    }
    if ("sweeplessSigned" in set) {
      c.sweepless_signed_at = set.sweeplessSigned ? iso(set.sweeplessSigned.at) : null;
      c.sweepless_txid = set.sweeplessSigned ? txidToBytes(set.sweeplessSigned.txid) : null;
    }
    if ("lastError" in set) c.last_error = set.lastError ?? null;
    return c;
  }

  /** Applies `event` to every deposit of the swap inside `tx`; all or nothing (review §1.9). */
  async #moveDeposits(
    tx: Transaction,
    hash: Uint8Array,
    event: DepositEvent,
    now: Date,
    partial = false,
  ): Promise<void> {
    const rs = await tx.execute({
      sql: `SELECT sd.deposit_id, sd.tx_hash, sd.out_index, sd.released, d.state
              FROM loopin_swap_deposits sd JOIN deposits d ON d.deposit_id = sd.deposit_id
             WHERE sd.swap_hash = ? ORDER BY sd.position`,
      args: [hash],
    });
    for (const r of rs.rows) {
      const depositId = blob(r.deposit_id, "deposit_id");
      const op = `${txidFromBytes(blob(r.tx_hash, "tx_hash"))}:${Number(r.out_index)}`;
      const state = String(r.state);
      if (!isDepositState(state)) throw corrupt(`deposit ${op} in state "${state}"`);
      const released = Number(r.released) === 1;
      // A released deposit may belong to another swap by now: a release, a loop-in success or a timeout
      // sweep of this swap only touches it while this swap still holds it — except the HTLC facts, which
      // are chain facts about this swap's own HTLC spending the deposit.
      if (released && event !== "OnSweepingHtlcTimeout" && event !== "OnHtlcTimeoutSwept") continue;
      const path = depositPath(state, event);
      // An HTLC of this swap on chain is a chain fact: a deposit whose row is final elsewhere (looped in by a later
      // swap, expired, withdrawn) cannot take the HTLC event, but it must not block the swap from sweeping its
      // own HTLC output after the CLTV (the funds are that output now). Its row is left as it is.
      if (path === null && (event === "OnSweepingHtlcTimeout" || event === "OnHtlcTimeoutSwept")) continue;
      if (path === null && partial) continue;
      if (path === null) {
        throw new LoopkitError(
          "loopin_deposit_state",
          `Deposit ${op} is in state ${state} and cannot take ${event}; the loop-in was not changed`,
        );
      }
      if (path.length) {
        const moved = await transitionDeposit(tx, { depositId, from: state, events: path }, now);
        if (moved === null) {
          throw new LoopkitError(
            "loopin_state_changed",
            `Deposit ${op} changed state during the loop-in update; retry`,
            ExitCode.TempFail,
          );
        }
      }
    }
    if (event === "OnError") {
      await tx.execute({
        sql: "UPDATE loopin_swap_deposits SET released = 1 WHERE swap_hash = ? AND released = 0",
        args: [hash],
      });
      await tx.execute({
        sql: `UPDATE loopin_swaps SET deposits_released_at = COALESCE(deposits_released_at, ?)
               WHERE swap_hash = ?`,
        args: [iso(now), hash],
      });
    } else if (event === "OnSweepingHtlcTimeout") {
      // The HTLC took the deposits back from wherever they were: this swap holds them again, unless another
      // live swap does (then that swap finds its deposits spent by a transaction that is not its own).
      await tx.execute({
        sql: `UPDATE loopin_swap_deposits SET released = 0
               WHERE swap_hash = ? AND released = 1 AND NOT EXISTS (
                 SELECT 1 FROM loopin_swap_deposits o
                  WHERE o.deposit_id = loopin_swap_deposits.deposit_id AND o.released = 0)`,
        args: [hash],
      });
    }
  }

  /**
   * Persists a risk decision (spec §2.4 `RecordStaticAddressRiskDecision`, §3.10) with the store's clock.
   * loopkit's rules for a server that re-sends decisions on every subscription: the same decision again
   * changes nothing (the first time is kept: re-sending never extends the deadline, review §1.10); a
   * rejection replaces an acceptance (the safe direction); an acceptance after a rejection is ignored.
   *
   * @returns the stored decision and time, and whether this call changed it
   * @throws {LoopkitError} `loopin_not_found` (exit 1) when the swap row does not exist
   */
  async recordRiskDecision(
    swapHash: Uint8Array | string,
    decision: "accepted" | "rejected",
  ): Promise<{ decision: RiskDecision; at: Date | null; changed: boolean }> {
    const hash = swapHashBytes(swapHash);
    if (decision !== "accepted" && decision !== "rejected") {
      throw new LoopkitError("invalid_risk_decision", `Unknown risk decision "${String(decision)}"`);
    }
    const now = this.#now();
    return await this.#write(`recording the risk decision of loop-in ${bytesToHex(hash)}`, async (tx) => {
      const rs = await tx.execute({
        sql: "SELECT state, risk_decision, risk_decision_at FROM loopin_swaps WHERE swap_hash = ?",
        args: [hash],
      });
      if (!rs.rows.length) throw swapNotFound(hash);
      const cur = String(rs.rows[0].risk_decision) as RiskDecision;
      const curAt = optDate(rs.rows[0].risk_decision_at);
      if (cur === decision || (cur === "rejected" && decision === "accepted")) {
        return { decision: cur, at: curAt, changed: false };
      }
      await this.#set(tx, hash, { risk_decision: decision, risk_decision_at: iso(now) }, now);
      await this.#history(tx, hash, String(rs.rows[0].state), null, `risk ${decision} by the server`, now);
      return { decision, at: now, changed: true };
    });
  }

  /** Clears the owner: the initiation is over and `loopin sync` may take the swap. */
  async releaseOwner(swapHash: Uint8Array | string): Promise<void> {
    const hash = swapHashBytes(swapHash);
    await this.#write(`clearing the owner of loop-in ${bytesToHex(hash)}`, async (tx) => {
      await tx.execute({
        sql:
          "UPDATE loopin_swaps SET owner_host = NULL, owner_pid = NULL, owner_start = NULL WHERE swap_hash = ?",
        args: [hash],
      });
    });
  }

  /** The swap's deposit outpoints in snapshot order. */
  async depositOutpoints(swapHash: Uint8Array | string): Promise<string[]> {
    return (await this.swapDeposits(swapHash)).map((d) => d.outpoint);
  }

  /** The swap's deposits in snapshot order, with their current state (empty for an unknown swap). */
  async swapDeposits(swapHash: Uint8Array | string): Promise<LoopInSwapDeposit[]> {
    const hash = swapHashBytes(swapHash);
    const rs = await this.#read({
      sql: `SELECT sd.swap_hash, sd.position, sd.deposit_id, sd.tx_hash, sd.out_index, sd.amount, sd.released,
                   d.state, d.confirmation_height, d.pkscript
              FROM loopin_swap_deposits sd JOIN deposits d ON d.deposit_id = sd.deposit_id
             WHERE sd.swap_hash = ? ORDER BY sd.position`,
      args: [hash],
    }, "reading loop-in deposits");
    return rs.rows.map(depositOfRow);
  }

  /** One stored swap with its deposits, or null. */
  async getSwap(swapHash: Uint8Array | string): Promise<LoopInSwap | null> {
    const hash = swapHashBytes(swapHash);
    const rs = await this.#read({
      sql: `SELECT ${SWAP_COLUMNS} FROM loopin_swaps WHERE swap_hash = ?`,
      args: [hash],
    }, "reading a loop-in");
    if (!rs.rows.length) return null;
    return swapOfRow(rs.rows[0], await this.swapDeposits(hash));
  }

  /**
   * Stored swaps, oldest first, with their deposits.
   * @param filter `pendingOnly`, `watchedOnly`, or `activeOnly` (either); none: every swap
   */
  async listSwaps(filter: ListSwapsFilter = {}): Promise<LoopInSwap[]> {
    const pending = [...PENDING_LOOP_IN_STATES].map((s) => `'${s}'`).join(", ");
    const unwatched = ["Succeeded", "HtlcTimeoutSwept", "SucceededTransitioningFailed", "PaymentReceived"]
      .map((s) => `'${s}'`).join(", ");
    const watched = `(armed_at IS NOT NULL AND watch_ended_at IS NULL AND state NOT IN (${unwatched}))`;
    const conds: string[] = [];
    if (filter.pendingOnly) conds.push(`state IN (${pending})`);
    if (filter.watchedOnly) conds.push(watched);
    if (filter.activeOnly) conds.push(`(state IN (${pending}) OR ${watched})`);
    const where = conds.length ? `WHERE ${conds.join(" AND ")}` : "";
    const rs = await this.#read(
      `SELECT ${SWAP_COLUMNS} FROM loopin_swaps ${where} ORDER BY created_at, rowid`,
      "listing loop-ins",
    );
    if (!rs.rows.length) return [];
    const deps = await this.#read(
      `SELECT sd.swap_hash, sd.position, sd.deposit_id, sd.tx_hash, sd.out_index, sd.amount, sd.released,
              d.state, d.confirmation_height, d.pkscript
         FROM loopin_swap_deposits sd JOIN deposits d ON d.deposit_id = sd.deposit_id
        WHERE sd.swap_hash IN (SELECT swap_hash FROM loopin_swaps ${where})
        ORDER BY sd.swap_hash, sd.position`,
      "listing loop-in deposits",
    );
    const byHash = new Map<string, LoopInSwapDeposit[]>();
    for (const r of deps.rows) {
      const h = bytesToHex(blob(r.swap_hash, "swap_hash"));
      if (!byHash.has(h)) byHash.set(h, []);
      byHash.get(h)!.push(depositOfRow(r));
    }
    return rs.rows.map((r) => swapOfRow(r, byHash.get(bytesToHex(blob(r.swap_hash, "swap_hash"))) ?? []));
  }

  /** True when at least one swap is pending or watched (what `loopin sync` must evaluate). */
  async hasActiveSwaps(): Promise<boolean> {
    return (await this.listSwaps({ activeOnly: true })).length > 0;
  }

  /** History of one swap, oldest first. */
  async history(swapHash: Uint8Array | string): Promise<LoopInUpdate[]> {
    const hash = swapHashBytes(swapHash);
    const rs = await this.#read({
      sql: `SELECT state, event, reason, update_timestamp FROM loopin_swap_updates
             WHERE swap_hash = ? ORDER BY id`,
      args: [hash],
    }, "reading loop-in history");
    return rs.rows.map((r) => ({
      state: String(r.state),
      event: r.event == null ? null : String(r.event),
      reason: String(r.reason),
      at: new Date(String(r.update_timestamp)),
    }));
  }

  /** Appends a history row without changing anything else (e.g. a sweep republished, an error seen). */
  async note(swapHash: Uint8Array | string, reason: string): Promise<void> {
    const hash = swapHashBytes(swapHash);
    const now = this.#now();
    await this.#write(`noting on loop-in ${bytesToHex(hash)}`, async (tx) => {
      const state = await this.#stateOf(tx, hash);
      if (state === null) throw swapNotFound(hash);
      await this.#history(tx, hash, state, null, reason, now);
    });
  }
}

function depositOfRow(r: Row): LoopInSwapDeposit {
  const txid = txidFromBytes(blob(r.tx_hash, "tx_hash"));
  const vout = Number(r.out_index);
  const state = String(r.state);
  if (!isDepositState(state)) throw corrupt(`deposit ${txid}:${vout} in state "${state}"`);
  return {
    position: Number(r.position),
    depositId: blob(r.deposit_id, "deposit_id"),
    outpoint: `${txid}:${vout}`,
    txid,
    vout,
    amountSat: BigInt(r.amount as bigint),
    released: Number(r.released) === 1,
    state,
    confirmationHeight: Number(r.confirmation_height),
    pkScript: blob(r.pkscript, "pkscript"),
  };
}

function swapOfRow(r: Row, deposits: LoopInSwapDeposit[]): LoopInSwap {
  const swapHash = blob(r.swap_hash, "swap_hash");
  const state = String(r.state);
  if (!isLoopInState(state)) throw corrupt(`loop-in ${bytesToHex(swapHash)} in state "${state}"`);
  const risk = String(r.risk_decision ?? "");
  if (risk !== "" && risk !== "accepted" && risk !== "rejected") throw corrupt(`risk decision "${risk}"`);
  const rates = r.fee_rate_standard == null ? null : {
    standard: BigInt(r.fee_rate_standard as bigint),
    high: BigInt(r.fee_rate_high as bigint),
    extreme: BigInt(r.fee_rate_extreme as bigint),
  };
  const txids = r.htlc_txid_standard == null ? null : {
    standard: txidFromBytes(blob(r.htlc_txid_standard, "htlc_txid_standard")),
    high: txidFromBytes(blob(r.htlc_txid_high, "htlc_txid_high")),
    extreme: txidFromBytes(blob(r.htlc_txid_extreme, "htlc_txid_extreme")),
  };
  const swapAmountSat = BigInt(r.swap_amount as bigint);
  const totalDepositSat = BigInt(r.total_deposit_amount as bigint);
  const variant = r.confirmed_htlc_variant == null ? null : String(r.confirmed_htlc_variant) as HtlcVariant;
  return {
    swapHash,
    swapHashHex: bytesToHex(swapHash),
    preimage: blob(r.preimage, "preimage"),
    state,
    initiationHeight: Number(r.initiation_height),
    initiationTime: new Date(String(r.initiation_time)),
    staticAddressId: Number(r.static_address_id),
    selectedAmountSat: BigInt(r.selected_amount as bigint),
    swapAmountSat,
    totalDepositSat,
    changeSat: totalDepositSat - swapAmountSat,
    quotedSwapFeeSat: BigInt(r.quoted_swap_fee as bigint),
    maxSwapFeeSat: BigInt(r.max_swap_fee as bigint),
    paymentTimeoutSeconds: Number(r.payment_timeout_seconds),
    fast: Number(r.fast) === 1,
    label: String(r.label),
    initiator: String(r.initiator),
    lastHop: optBlob(r.last_hop, "last_hop"),
    htlcKey: {
      rawKeyBytes: blob(r.htlc_client_pubkey, "htlc_client_pubkey"),
      keyLocator: { family: Number(r.htlc_key_family), index: Number(r.htlc_key_index) },
    },
    htlcServerPubkey: optBlob(r.htlc_server_pubkey, "htlc_server_pubkey"),
    htlcExpiry: optNum(r.htlc_expiry),
    swapInvoice: r.swap_invoice == null ? null : String(r.swap_invoice),
    invoiceState: r.invoice_state == null ? null : String(r.invoice_state),
    invoiceCheckedAt: optDate(r.invoice_checked_at),
    htlcTimeoutSweepPkScript: optBlob(r.htlc_timeout_sweep_pkscript, "htlc_timeout_sweep_pkscript"),
    feeRates: rates,
    htlcTxids: txids,
    htlcTxs: {
      standard: optBlob(r.htlc_tx_standard, "htlc_tx_standard"),
      high: optBlob(r.htlc_tx_high, "htlc_tx_high"),
      extreme: optBlob(r.htlc_tx_extreme, "htlc_tx_extreme"),
    },
    armedAt: optDate(r.armed_at),
    paymentDeadlineStartedAt: optDate(r.payment_deadline_started_at),
    paymentDeadlineSource: r.payment_deadline_source == null
      ? null
      : String(r.payment_deadline_source) as DeadlineSource,
    riskDecision: risk as RiskDecision,
    riskDecisionAt: optDate(r.risk_decision_at),
    invoiceCanceledAt: optDate(r.invoice_canceled_at),
    depositsReleasedAt: optDate(r.deposits_released_at),
    confirmedHtlc: variant
      ? {
        variant,
        txid: txidFromBytes(blob(r.confirmed_htlc_txid, "confirmed_htlc_txid")),
        height: Number(r.confirmed_htlc_height),
      }
      : null,
    timeoutSweep: r.timeout_sweep_tx == null ? null : {
      tx: blob(r.timeout_sweep_tx, "timeout_sweep_tx"),
      txid: txidFromBytes(blob(r.timeout_sweep_txid, "timeout_sweep_txid")),
      feeSat: r.timeout_sweep_fee == null ? null : BigInt(r.timeout_sweep_fee as bigint),
      publishedAt: optDate(r.timeout_sweep_published_at),
      confirmedHeight: optNum(r.timeout_sweep_confirmed_height),
    },
    sweeplessSigned: r.sweepless_signed_at == null ? null : {
      at: new Date(String(r.sweepless_signed_at)),
      txid: txidFromBytes(blob(r.sweepless_txid, "sweepless_txid")),
    },
    watchEndedAt: optDate(r.watch_ended_at),
    watchEndReason: r.watch_end_reason == null ? null : String(r.watch_end_reason),
    watchEndTxid: optTxid(r.watch_end_txid, "watch_end_txid"),
    owner: r.owner_pid == null
      ? null
      : { host: String(r.owner_host ?? ""), pid: Number(r.owner_pid), start: String(r.owner_start ?? "") },
    lastError: r.last_error == null ? null : String(r.last_error),
    createdAt: new Date(String(r.created_at)),
    updatedAt: new Date(String(r.updated_at)),
    deposits,
  };
}

/** True for Loop's final states (spec §2.1). */
export function isFinalState(state: LoopInState): boolean {
  return FINAL_LOOP_IN_STATES.has(state);
}
