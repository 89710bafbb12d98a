/**
 * Deposit rows in the loopkit database (spec/static-address-and-deposits.md §5.2–§5.3, our own schema):
 * every state change and height change writes a `deposit_updates` history row in the same transaction.
 *
 * @module
 */
import type { Client, Transaction } from "@libsql/client";
import { ExitCode, LoopkitError } from "../errors.ts";
import { type Deposit, type DepositState, isDepositState, outpointOf } from "./types.ts";
import { type DepositEvent, nextState } from "./fsm.ts";
import type { DepositUpdatePlan, NewDepositPlan } from "./reconcile.ts";
import { txidFromBytes, txidToBytes } from "../staticaddr/outpoint.ts";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";

type Exec = Pick<Client | Transaction, "execute">;

function blob(v: unknown, column: string): Uint8Array {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (v instanceof Uint8Array) return new Uint8Array(v);
  throw new LoopkitError("db_corrupt", `Database column deposits.${column} is not a blob`, ExitCode.Failure);
}

const DEPOSIT_COLUMNS = `deposit_id, tx_hash, out_index, amount, confirmation_height, pkscript,
  timeout_sweep_pk_script, state, wallet_visible, expiry_sweep_txid, expiry_sweep_tx, swap_hash, spending_txid,
  spending_height`;

/** A nullable blob column as one word of a packed row: its hex, `-` for NULL, `?` for a value not a blob. */
const word = (col: string) =>
  `CASE WHEN ${col} IS NULL THEN '-' WHEN typeof(${col}) = 'blob' THEN hex(${col}) ELSE '?' END`;

/**
 * Every stored deposit, in insertion order. Read as one text cell per row, as {@linkcode listDepositHeads}
 * does (the libSQL client's per-cell cost made a 14-column read of 1 000 deposits ~30 ms, most of
 * `deposits list`); the same values as {@linkcode getDeposit} reads.
 * @throws {LoopkitError} `db_corrupt` for a row that does not parse
 */
export async function listDeposits(db: Exec): Promise<Deposit[]> {
  const rs = await db.execute(
    `SELECT state || ' ' || typeof(confirmation_height) || ' ' || confirmation_height || ' ' ||
            typeof(wallet_visible) || ' ' || wallet_visible || ' ' || typeof(out_index) || ' ' || out_index ||
            ' ' || typeof(amount) || ' ' || amount || ' ' || ${word("deposit_id")} || ' ' ||
            ${word("tx_hash")} || ' ' || ${word("pkscript")} || ' ' || ${word("timeout_sweep_pk_script")} ||
            ' ' || ${word("expiry_sweep_txid")} || ' ' || ${word("expiry_sweep_tx")} || ' ' ||
            ${word("swap_hash")} || ' ' || ${word("spending_txid")} || ' ' ||
            CASE WHEN spending_height IS NULL THEN '-' ELSE typeof(spending_height) || ':' || spending_height END
              AS row
       FROM deposits ORDER BY id`,
  );
  const scripts = new Map<string, Uint8Array>(); // deposits share a few pkScripts: decode each once
  return rs.rows.map((r) => {
    const text = String(r.row);
    const f = text.split(" ");
    const corrupt = (what: string) =>
      new LoopkitError(
        "db_corrupt",
        `Database has an unreadable deposit row (${what}): "${text}"`,
        ExitCode.Failure,
      );
    if (f.length !== 18) throw corrupt("columns");
    const [state, hType, height, vType, visible, oType, vout, aType, amount] = f;
    const [id, txHash, pkHex, sweepPkHex, sweepTxid, sweepTx, swapHash, spendTxid, spendHeight] = f.slice(9);
    if (!isDepositState(state)) {
      throw new LoopkitError(
        "db_corrupt",
        `Database has a deposit in unknown state "${state}"`,
        ExitCode.Failure,
      );
    }
    if ([hType, vType, oType, aType].some((t) => t !== "integer")) throw corrupt("an integer column");
    const bytes = (h: string, column: string): Uint8Array => {
      if (h === "-" || h === "?") {
        throw new LoopkitError(
          "db_corrupt",
          `Database column deposits.${column} is not a blob`,
          ExitCode.Failure,
        );
      }
      return hexToBytes(h);
    };
    const nullable = (h: string, column: string): Uint8Array | null => (h === "-" ? null : bytes(h, column));
    const depositId = bytes(id, "deposit_id");
    if (depositId.length !== 32) {
      throw new LoopkitError(
        "db_corrupt",
        `Database has a deposit id of ${depositId.length} bytes`,
        ExitCode.Failure,
      );
    }
    if (pkHex === "-" || pkHex === "?") bytes(pkHex, "pkscript");
    let pkScript = scripts.get(pkHex);
    if (!pkScript) scripts.set(pkHex, pkScript = hexToBytes(pkHex));
    const expiryTxid = nullable(sweepTxid, "expiry");
    const swap = nullable(swapHash, "swap_hash");
    const spending = nullable(spendTxid, "spending_txid");
    return {
      depositId,
      txid: txidFromBytes(bytes(txHash, "tx_hash")),
      vout: Number(vout),
      amountSat: BigInt(amount),
      confirmationHeight: Number(height),
      pkScript: pkScript.slice(),
      timeoutSweepPkScript: bytes(sweepPkHex, "timeout_sweep_pk_script"),
      state,
      walletVisible: Number(visible) === 1,
      expirySweepTxid: expiryTxid === null ? null : txidFromBytes(expiryTxid),
      expirySweepTx: nullable(sweepTx, "expiry_sweep_tx"),
      swapHash: swap === null ? null : bytesToHex(swap),
      spentBy: spending === null ? null : {
        txid: txidFromBytes(spending),
        height: spendHeight === "-" ? 0 : Number(spendHeight.slice(spendHeight.indexOf(":") + 1)),
      },
    };
  });
}

/** The fields of a deposit `deposits sync` scans on every run (see {@linkcode listDepositHeads}). */
export type DepositHead = Pick<
  Deposit,
  | "depositId"
  | "txid"
  | "vout"
  | "amountSat"
  | "state"
  | "confirmationHeight"
  | "walletVisible"
  | "pkScript"
  | "expirySweepTxid"
>;

/** Reverses the byte order of a hex string (internal hash order ⇄ display txid). */
function reverseHex(h: string): string {
  let out = "";
  for (let i = h.length - 2; i >= 0; i -= 2) out += h[i] + h[i + 1];
  return out;
}

/**
 * Every stored deposit's scan fields, in insertion order. The same rows as {@linkcode listDeposits}, read as
 * one text cell per row (the per-cell cost of the libSQL client dominates a 14-column read: ~30 ms for
 * 1 000 deposits against ~3 ms packed); the cells are SQLite integers, names and `hex()`.
 * @throws {LoopkitError} `db_corrupt` for a row that does not parse
 */
export async function listDepositHeads(db: Exec): Promise<DepositHead[]> {
  const rs = await db.execute(
    `SELECT state || ' ' || confirmation_height || ' ' || wallet_visible || ' ' || out_index || ' ' ||
            amount || ' ' || hex(tx_hash) || ' ' || hex(deposit_id) || ' ' || hex(pkscript) || ' ' ||
            CASE WHEN expiry_sweep_txid IS NULL THEN '-' ELSE hex(expiry_sweep_txid) END AS head
       FROM deposits ORDER BY id`,
  );
  const scripts = new Map<string, Uint8Array>(); // deposits share a few pkScripts: decode each once
  return rs.rows.map((r) => {
    const f = String(r.head).split(" ");
    const [state, height, visible, vout, amount, txHash, id, pkHex, sweep] = f;
    const confirmationHeight = Number(height);
    const outIndex = Number(vout);
    if (
      f.length !== 9 || !isDepositState(state) || txHash.length !== 64 || id.length !== 64 ||
      !Number.isSafeInteger(confirmationHeight) || !Number.isSafeInteger(outIndex) || !/^\d+$/.test(amount)
    ) {
      throw new LoopkitError(
        "db_corrupt",
        `Database has an unreadable deposit row "${f.join(" ")}"`,
        ExitCode.Failure,
      );
    }
    let pkScript = scripts.get(pkHex);
    if (!pkScript) scripts.set(pkHex, pkScript = hexToBytes(pkHex));
    return {
      depositId: hexToBytes(id),
      txid: reverseHex(txHash).toLowerCase(),
      vout: outIndex,
      amountSat: BigInt(amount),
      state,
      confirmationHeight,
      walletVisible: visible === "1",
      pkScript: pkScript.slice(),
      expirySweepTxid: sweep === "-" ? null : reverseHex(sweep).toLowerCase(),
    };
  });
}

/** The stored deposit with this id, or null. */
export async function getDeposit(db: Exec, depositId: Uint8Array): Promise<Deposit | null> {
  const rs = await db.execute({
    sql: `SELECT ${DEPOSIT_COLUMNS} FROM deposits WHERE deposit_id = ?`,
    args: [depositId],
  });
  return rs.rows.length ? depositOfRow(rs.rows[0]) : null;
}

function depositOfRow(r: Record<string, unknown>): Deposit {
  {
    const state = String(r.state);
    if (!isDepositState(state)) {
      throw new LoopkitError(
        "db_corrupt",
        `Database has a deposit in unknown state "${state}"`,
        ExitCode.Failure,
      );
    }
    const depositId = blob(r.deposit_id, "deposit_id");
    if (depositId.length !== 32) {
      throw new LoopkitError(
        "db_corrupt",
        `Database has a deposit id of ${depositId.length} bytes`,
        ExitCode.Failure,
      );
    }
    return {
      depositId,
      txid: txidFromBytes(blob(r.tx_hash, "tx_hash")),
      vout: Number(r.out_index),
      amountSat: BigInt(r.amount as bigint),
      confirmationHeight: Number(r.confirmation_height),
      pkScript: blob(r.pkscript, "pkscript"),
      timeoutSweepPkScript: blob(r.timeout_sweep_pk_script, "timeout_sweep_pk_script"),
      state,
      walletVisible: Number(r.wallet_visible) === 1,
      expirySweepTxid: r.expiry_sweep_txid == null
        ? null
        : txidFromBytes(blob(r.expiry_sweep_txid, "expiry")),
      expirySweepTx: r.expiry_sweep_tx == null ? null : blob(r.expiry_sweep_tx, "expiry_sweep_tx"),
      swapHash: r.swap_hash == null ? null : bytesToHex(blob(r.swap_hash, "swap_hash")),
      spentBy: r.spending_txid == null
        ? null
        : { txid: txidFromBytes(blob(r.spending_txid, "spending_txid")), height: Number(r.spending_height) },
    };
  }
}

/**
 * Inserts a new `Deposited` deposit and its first history row. An outpoint already stored (another
 * process won the race) is left alone.
 * @returns true when this call inserted the row
 */
export async function insertDeposit(
  tx: Transaction,
  d: NewDepositPlan & { depositId: Uint8Array; timeoutSweepPkScript: Uint8Array },
  now: Date,
): Promise<boolean> {
  const rs = await tx.execute({
    sql: `INSERT INTO deposits (deposit_id, tx_hash, out_index, amount, confirmation_height, pkscript,
            timeout_sweep_pk_script, state, wallet_visible)
          VALUES (?, ?, ?, ?, ?, ?, ?, 'Deposited', 1)
          ON CONFLICT (tx_hash, out_index) DO NOTHING`,
    args: [
      d.depositId,
      txidToBytes(d.txid),
      d.vout,
      d.amountSat,
      d.confirmationHeight,
      d.pkScript,
      d.timeoutSweepPkScript,
    ],
  });
  if (rs.rowsAffected === 0) return false;
  await tx.execute({
    sql:
      "INSERT INTO deposit_updates (deposit_id, update_state, update_timestamp) VALUES (?, 'Deposited', ?)",
    args: [d.depositId, now.toISOString()],
  });
  return true;
}

/** Rows per multi-row INSERT of {@linkcode insertDeposits} (7 parameters each, far below SQLite's limit). */
const INSERT_ROWS = 100;

/**
 * Inserts new deposits (state `Deposited`, each with its first history row) with one multi-row INSERT per
 * {@linkcode INSERT_ROWS} deposits instead of two statements per deposit: the libSQL driver prepares a native
 * statement per call that is freed only when V8 collects it, so 2 000 statements for a first sync of 1 000
 * deposits cost several MB of memory (bench/README.md, 100 000 UTXOs). Same rows as {@linkcode insertDeposit}
 * for each; an outpoint already stored is left alone (no history row).
 * @returns the outpoints (`txid:vout`) of the deposits inserted
 */
export async function insertDeposits(
  tx: Transaction,
  ds: readonly (NewDepositPlan & { depositId: Uint8Array; timeoutSweepPkScript: Uint8Array })[],
  now: Date,
): Promise<Set<string>> {
  const created = new Set<string>();
  const at = now.toISOString();
  for (let i = 0; i < ds.length; i += INSERT_ROWS) {
    const part = ds.slice(i, i + INSERT_ROWS);
    const rs = await tx.execute({
      sql: `INSERT INTO deposits (deposit_id, tx_hash, out_index, amount, confirmation_height, pkscript,
              timeout_sweep_pk_script, state, wallet_visible)
            VALUES ${part.map(() => "(?, ?, ?, ?, ?, ?, ?, 'Deposited', 1)").join(", ")}
            ON CONFLICT (tx_hash, out_index) DO NOTHING
            RETURNING hex(deposit_id) AS id`,
      args: part.flatMap((d) => [
        d.depositId,
        txidToBytes(d.txid),
        d.vout,
        d.amountSat,
        d.confirmationHeight,
        d.pkScript,
        d.timeoutSweepPkScript,
      ]),
    });
    const ids = new Set(rs.rows.map((r) => String(r.id).toLowerCase()));
    const inserted = part.filter((d) => ids.has(bytesToHex(d.depositId)));
    if (!inserted.length) continue;
    await tx.execute({
      sql: `INSERT INTO deposit_updates (deposit_id, update_state, update_timestamp)
            VALUES ${inserted.map(() => "(?, 'Deposited', ?)").join(", ")}`,
      args: inserted.flatMap((d) => [d.depositId, at]),
    });
    for (const d of inserted) created.add(outpointOf(d));
  }
  return created;
}

/**
 * Applies one planned update; a state or height change appends a history row with the resulting state.
 */
export async function applyDepositUpdate(tx: Transaction, u: DepositUpdatePlan, now: Date): Promise<void> {
  const sets: string[] = [];
  const args: (number | string | Uint8Array)[] = [];
  if (u.state !== undefined) {
    sets.push("state = ?");
    args.push(u.state);
  }
  if (u.confirmationHeight !== undefined) {
    sets.push("confirmation_height = ?");
    args.push(u.confirmationHeight);
  }
  if (u.walletVisible !== undefined) {
    sets.push("wallet_visible = ?");
    args.push(u.walletVisible ? 1 : 0);
  }
  if (!sets.length) return;
  await tx.execute({
    sql: `UPDATE deposits SET ${sets.join(", ")} WHERE deposit_id = ?`,
    args: [...args, u.depositId],
  });
  if (u.state !== undefined || u.confirmationHeight !== undefined) {
    await tx.execute({
      sql: "INSERT INTO deposit_updates (deposit_id, update_state, update_timestamp) VALUES (?, ?, ?)",
      args: [u.depositId, u.resultingState, now.toISOString()],
    });
  }
}

/** One history row of a deposit. */
export interface DepositHistoryRow {
  /** State after the change. */
  state: string;
  /** ISO timestamp. */
  at: string;
  /** On the row that records `SpentElsewhere`: the spending transaction (display hex) and its block height. */
  spentBy?: { txid: string; height: number };
}

/** History of one deposit, oldest first. */
export async function depositHistory(db: Exec, depositId: Uint8Array): Promise<DepositHistoryRow[]> {
  const rs = await db.execute({
    sql: `SELECT update_state, update_timestamp, spending_txid, spending_height
            FROM deposit_updates WHERE deposit_id = ? ORDER BY id`,
    args: [depositId],
  });
  return rs.rows.map((r) => ({
    state: String(r.update_state),
    at: String(r.update_timestamp),
    ...(r.spending_txid == null ? {} : {
      spentBy: {
        txid: txidFromBytes(blob(r.spending_txid, "spending_txid")),
        height: Number(r.spending_height),
      },
    }),
  }));
}

/** Options of {@linkcode transitionDeposit}. */
export interface TransitionOptions {
  depositId: Uint8Array;
  /** The state the deposit must be in; otherwise nothing changes. */
  from: DepositState;
  /** Events applied in order (fsm.ts); each real state change writes one history row. */
  events: DepositEvent[];
  /**
   * Stores the expiry sweep with the change. The row only changes when no sweep is stored yet or the stored
   * one has exactly these bytes: a deposit never gets two different sweeps.
   */
  expirySweep?: { txid: string; tx: Uint8Array };
  /**
   * With `OnSpentElsewhere`: the spending transaction lnd reported (display txid, block height), stored on the
   * deposit and on the history row of the change.
   */
  spentBy?: { txid: string; height: number };
}

/**
 * Moves one deposit along the state machine inside the caller's write transaction: a conditional
 * `UPDATE … WHERE state = from` plus one history row per state change (fsm.md). Rows changed by another
 * process in between are left alone.
 * @returns the new state when this call changed the row, or null when the row was not in `from` (or held a
 *   different sweep)
 * @throws {LoopkitError} `deposit_event_rejected` when an event is not allowed (nothing is written)
 */
export async function transitionDeposit(
  tx: Transaction,
  o: TransitionOptions,
  now: Date,
): Promise<DepositState | null> {
  const path: DepositState[] = [];
  let state = o.from;
  for (const e of o.events) {
    const to = nextState(state, e);
    if (to !== state) path.push(to);
    state = to;
  }
  const sets = ["state = ?"];
  const args: (string | number | Uint8Array)[] = [state];
  const where = ["deposit_id = ?", "state = ?"];
  const whereArgs: (string | Uint8Array)[] = [o.depositId, o.from];
  if (o.spentBy) {
    if (state !== "SpentElsewhere") {
      throw new RangeError("transitionDeposit: spentBy is only for a change to SpentElsewhere");
    }
    sets.push("spending_txid = ?", "spending_height = ?");
    args.push(txidToBytes(o.spentBy.txid), o.spentBy.height);
  }
  if (o.expirySweep) {
    sets.push("expiry_sweep_txid = ?", "expiry_sweep_tx = ?");
    args.push(txidToBytes(o.expirySweep.txid), o.expirySweep.tx);
    where.push("(expiry_sweep_tx IS NULL OR expiry_sweep_tx = ?)");
    whereArgs.push(o.expirySweep.tx);
  }
  const rs = await tx.execute({
    sql: `UPDATE deposits SET ${sets.join(", ")} WHERE ${where.join(" AND ")}`,
    args: [...args, ...whereArgs],
  });
  if (rs.rowsAffected === 0) return null;
  for (const s of path) {
    const spent = s === "SpentElsewhere" ? o.spentBy : undefined;
    await tx.execute({
      sql:
        `INSERT INTO deposit_updates (deposit_id, update_state, update_timestamp, spending_txid, spending_height)
            VALUES (?, ?, ?, ?, ?)`,
      args: [
        o.depositId,
        s,
        now.toISOString(),
        spent ? txidToBytes(spent.txid) : null,
        spent ? spent.height : null,
      ],
    });
  }
  return state;
}
