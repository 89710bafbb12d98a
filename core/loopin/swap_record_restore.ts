/**
 * Importing swap recovery records (swap_record.ts) into a database that lacks their swaps — the `recover` step
 * of issue 9 finding F8. A record exists only for a swap that reached the "signatures pushed" marker's eve, so
 * the server may hold our signatures and publish an HTLC variant: the swap is imported **armed**, in
 * `UnlockDeposits` (spec/static-loop-in.md §2.2; spec/static-loop-in-review.md §1.1, §1.2, §1.11). The next
 * `loopin sync` then looks for every HTLC variant by txid first (one with 3 confirmations ⇒
 * `SweepHtlcTimeout`, the sweep signed with the record's HTLC key after `htlc_expiry`), cancels the invoice
 * (SETTLED ⇒ `Succeeded`), and only then gives the deposits back — still watching the HTLC, as every armed
 * swap (sync.ts `unlock`).
 *
 * Deposits: a stored deposit row (same outpoint) is linked; one in `Deposited` is moved to `LoopingIn` like
 * `createSwap` does; a missing one is created from the record (core/deposits/store.ts `insertDeposit`, then
 * `Deposited → LoopingIn` through the deposit state machine, both with history rows).
 *
 * Everything runs inside the caller's write transaction (recover's address-row transaction), so a failure
 * leaves the database as it was. Idempotent: a swap already stored is left alone.
 *
 * @module
 */
import type { Transaction } from "@libsql/client";
import { bytesToHex } from "@noble/hashes/utils.js";
import { insertDeposit, transitionDeposit } from "../deposits/store.ts";
import { isDepositState } from "../deposits/types.ts";
import { parseOutpoint, txidToBytes } from "../staticaddr/outpoint.ts";
import { HTLC_VARIANTS } from "./types.ts";
import type { LoopInSwapRecord } from "./swap_record.ts";

/** What {@linkcode importSwapRecord} did with one record. */
export interface SwapImport {
  /** Swap hash, hex. */
  swapHashHex: string;
  /** The record file. */
  path: string;
  /**
   * `imported` (row created armed in `UnlockDeposits`), `existing` (the database already has the swap: left
   * alone), or `skipped` (not importable here: see `reason`; nothing written for it).
   */
  action: "imported" | "existing" | "skipped";
  /** Why skipped. */
  reason?: string;
  /** For `imported`: deposits created from the record, and those linked to stored rows. */
  depositsCreated?: number;
  depositsLinked?: number;
  /** For `imported`: deposits another live swap holds, linked as released (counted in `depositsLinked` too). */
  depositsHeldElsewhere?: number;
}

function blobOf(v: unknown): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v as Uint8Array);
}

/**
 * Imports one record inside `tx` (see the module text). Checked first, nothing written when it fails
 * (`skipped` with the reason): the record's static address must be stored (by pkScript). A stored deposit another
 * live swap holds (two records over the same deposits: the older swap released them before the newer took them,
 * and the server may hold HTLC signatures of both) is linked as released and left to that swap: this swap is
 * still imported and watched, so whichever swap's HTLC the server publishes is swept.
 *
 * @param tx the caller's write transaction
 * @param record a decoded, validated record
 * @param path its file (kept in the history row and `last_error`)
 * @param now the import time (history rows, `armed_at`)
 * @returns what was done
 * @throws database errors as is (the caller's transaction rolls back); `deposit_event_rejected` never for
 *   the states handled here
 */
export async function importSwapRecord(
  tx: Transaction,
  record: LoopInSwapRecord,
  path: string,
  now: Date,
): Promise<SwapImport> {
  const hash = record.swapHash;
  const base = { swapHashHex: bytesToHex(hash), path };
  const exists = await tx.execute({ sql: "SELECT 1 FROM loopin_swaps WHERE swap_hash = ?", args: [hash] });
  if (exists.rows.length) return { ...base, action: "existing" };

  const addr = await tx.execute({
    sql: "SELECT id FROM static_addresses WHERE pkscript = ? ORDER BY id LIMIT 1",
    args: [record.staticAddress.pkScript],
  });
  if (!addr.rows.length) {
    return {
      ...base,
      action: "skipped",
      reason: `its static address (pkScript ${
        bytesToHex(record.staticAddress.pkScript)
      }) is not in the database`,
    };
  }
  const staticAddressId = Number(addr.rows[0].id);

  // Plan the deposits; refuse (skip) before writing anything.
  const plan: {
    depositId: Uint8Array | null;
    state: string | null;
    d: LoopInSwapRecord["deposits"][number];
    /** Another live swap holds the deposit: linked as released, its row left to that swap. */
    heldElsewhere?: boolean;
  }[] = [];
  for (const d of record.deposits) {
    const o = parseOutpoint(d.outpoint);
    const rs = await tx.execute({
      sql: "SELECT deposit_id, state FROM deposits WHERE tx_hash = ? AND out_index = ?",
      args: [txidToBytes(o.txid), o.vout],
    });
    if (!rs.rows.length) {
      plan.push({ depositId: null, state: null, d });
      continue;
    }
    const depositId = blobOf(rs.rows[0].deposit_id);
    const held = await tx.execute({
      sql: "SELECT swap_hash FROM loopin_swap_deposits WHERE deposit_id = ? AND released = 0",
      args: [depositId],
    });
    // Held by another swap (stored, or imported just before from another record: one of the two released the
    // deposit before the other took it, and the server may hold HTLC signatures of both): linked as released,
    // so this swap is still watched and sweeps its own HTLC if that is the one the server publishes.
    plan.push({ depositId, state: String(rs.rows[0].state), d, heldElsewhere: held.rows.length > 0 });
  }

  const iso = now.toISOString();
  const note = `imported from the swap recovery record "${path}" (database had no row); ` +
    "armed: `loopkit loopin sync` checks the HTLC variants before releasing anything";
  const cols: Record<string, string | number | bigint | Uint8Array | null> = {
    swap_hash: hash,
    preimage: record.preimage,
    state: "UnlockDeposits",
    initiation_height: record.initiationHeight,
    initiation_time: record.initiationTime.toISOString(),
    static_address_id: staticAddressId,
    selected_amount: record.selectedAmountSat,
    swap_amount: record.swapAmountSat,
    total_deposit_amount: record.totalDepositSat,
    quoted_swap_fee: record.quotedSwapFeeSat,
    max_swap_fee: record.maxSwapFeeSat,
    payment_timeout_seconds: record.paymentTimeoutSeconds,
    fast: record.fast ? 1 : 0,
    label: record.label,
    initiator: record.initiator,
    last_hop: record.lastHop,
    htlc_key_family: record.htlcKey.family,
    htlc_key_index: record.htlcKey.index,
    htlc_client_pubkey: record.htlcKey.pubkey,
    htlc_server_pubkey: record.htlcServerPubkey,
    htlc_expiry: record.htlcExpiry,
    swap_invoice: record.swapInvoice,
    htlc_timeout_sweep_pkscript: record.timeoutSweepPkScript,
    armed_at: iso,
    last_error: note,
    created_at: iso,
    updated_at: iso,
  };
  for (const v of HTLC_VARIANTS) {
    cols[`fee_rate_${v}`] = record.feeRates[v];
    cols[`htlc_txid_${v}`] = txidToBytes(record.htlcTxids[v]);
    cols[`htlc_tx_${v}`] = record.htlcTxs[v];
  }
  const names = Object.keys(cols);
  await tx.execute({
    sql: `INSERT INTO loopin_swaps (${names.join(", ")}) VALUES (${names.map(() => "?").join(", ")})`,
    args: names.map((n) => cols[n]),
  });

  let created = 0;
  let linked = 0;
  let shared = 0;
  for (const [position, p] of plan.entries()) {
    const o = parseOutpoint(p.d.outpoint);
    let depositId = p.depositId;
    let state = p.state;
    if (depositId === null) {
      depositId = crypto.getRandomValues(new Uint8Array(32));
      await insertDeposit(tx, {
        depositId,
        txid: o.txid,
        vout: o.vout,
        amountSat: p.d.valueSat,
        confirmationHeight: p.d.confirmationHeight,
        pkScript: p.d.pkScript,
        timeoutSweepPkScript: p.d.timeoutSweepPkScript,
      }, now);
      state = "Deposited";
      created++;
    } else {
      linked++;
    }
    if (state !== null && !isDepositState(state)) {
      throw new Error(`deposit ${p.d.outpoint} is in unknown state "${state}"`);
    }
    if (p.heldElsewhere) {
      shared++;
      await tx.execute({
        sql: `INSERT INTO loopin_swap_deposits (swap_hash, position, deposit_id, tx_hash, out_index, amount,
                released) VALUES (?, ?, ?, ?, ?, ?, 1)`,
        args: [hash, position, depositId, txidToBytes(o.txid), o.vout, p.d.valueSat],
      });
      continue;
    }
    if (state === "Deposited") {
      await transitionDeposit(tx, { depositId, from: "Deposited", events: ["OnLoopInInitiated"] }, now);
    }
    await tx.execute({
      sql: `INSERT INTO loopin_swap_deposits (swap_hash, position, deposit_id, tx_hash, out_index, amount)
            VALUES (?, ?, ?, ?, ?, ?)`,
      args: [hash, position, depositId, txidToBytes(o.txid), o.vout, p.d.valueSat],
    });
    await tx.execute({
      sql: "UPDATE deposits SET swap_hash = ? WHERE deposit_id = ?",
      args: [hash, depositId],
    });
  }
  await tx.execute({
    sql: `INSERT INTO loopin_swap_updates (swap_hash, state, event, reason, update_timestamp)
          VALUES (?, 'UnlockDeposits', NULL, ?, ?)`,
    args: [hash, note, iso],
  });
  return {
    ...base,
    action: "imported",
    depositsCreated: created,
    depositsLinked: linked,
    ...(shared ? { depositsHeldElsewhere: shared } : {}),
  };
}
