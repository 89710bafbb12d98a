/**
 * `deposits sync`: one reconcile-and-act cycle (spec/static-address-and-deposits.md §4.10).
 *
 * I/O happens outside the write transaction (ListUnspent, GetInfo, NextAddr for outpoints that look new);
 * the plan is then recomputed from a fresh read *inside* one write transaction and applied there, so two
 * concurrent syncs never lose or duplicate a row.
 *
 * @module
 */
import type { LndClient, Utxo } from "../../lnd/types.ts";
import type { Db } from "../db/db.ts";
import { dbError } from "../db/db.ts";
import { listStaticAddresses } from "../db/static_addresses.ts";
import { applyDepositUpdate, insertDeposit, listDeposits } from "./store.ts";
import { filterOurUtxos, planReconcile } from "./reconcile.ts";
import { outpointOf } from "./types.ts";
import { ExitCode, LoopkitError } from "../errors.ts";

/** What sync needs from lnd. */
export type SyncLnd = Pick<LndClient, "getInfo"> & {
  /** `WalletKit.ListUnspent(min_confs, max_confs)`; (0, 0) means every UTXO, 0-conf included. */
  listUnspent(minConfs: number, maxConfs: number): Promise<Utxo[]>;
  /** A fresh wallet pkScript for an expiry sweep (`WalletKit.NextAddr`, decoded). */
  nextSweepPkScript(): Promise<Uint8Array>;
};

/** Dependencies of {@linkcode syncDeposits}. */
export interface SyncDeps {
  db: Db;
  lnd: SyncLnd;
  /** Clock for history timestamps. */
  now?: () => Date;
  /** 32 random bytes for a new deposit id. */
  randomId?: () => Uint8Array;
}

/** One changed deposit in the sync result. */
export interface SyncChange {
  outpoint: string;
  change: "created" | "confirmed" | "unconfirmed_again" | "replaced" | "revived" | "vanished" | "reappeared";
  state: string;
  confirmationHeight: number;
  amountSat: bigint;
}

/** Result of one sync. */
export interface SyncResult {
  tipHeight: number;
  /** Wallet UTXOs paying our static addresses. */
  walletDeposits: number;
  changes: SyncChange[];
}

/**
 * Reads the wallet view and the tip it belongs to: GetInfo before and after ListUnspent must agree, so
 * a block found in between cannot shift a derived confirmation height by one (bounded retries).
 * @throws {LoopkitError} `chain_moving` when the tip changed on every attempt
 */
export async function consistentWalletView(
  lnd: SyncLnd,
  attempts = 3,
): Promise<{ tip: number; utxos: Utxo[] }> {
  for (let i = 0; i < attempts; i++) {
    const before = (await lnd.getInfo()).blockHeight;
    const utxos = await lnd.listUnspent(0, 0);
    const after = (await lnd.getInfo()).blockHeight;
    if (before === after) return { tip: after, utxos };
  }
  throw new LoopkitError(
    "chain_moving",
    `The chain tip changed during each of ${attempts} wallet reads; retry`,
    ExitCode.TempFail,
  );
}

/**
 * Runs one sync pass. No static address ⇒ nothing to do (empty result).
 * @throws {LoopkitError} lnd errors (exit 75 when unreachable), `db_busy` (exit 75), height errors
 */
export async function syncDeposits(deps: SyncDeps): Promise<SyncResult> {
  const now = deps.now ?? (() => new Date());
  const randomId = deps.randomId ?? (() => crypto.getRandomValues(new Uint8Array(32)));
  const addresses = await listStaticAddresses(deps.db);
  if (addresses.length === 0) return { tipHeight: 0, walletDeposits: 0, changes: [] };
  const pkScripts = addresses.map((a) => a.pkScript);
  const { tip, utxos } = await consistentWalletView(deps.lnd);
  const ours = filterOurUtxos(utxos, pkScripts);

  // Sweep destinations for outpoints that look new, fetched before the transaction.
  let known: Set<string>;
  try {
    known = new Set((await listDeposits(deps.db.client)).map(outpointOf));
  } catch (err) {
    throw dbError(err, "reading deposits");
  }
  const sweepScripts = new Map<string, Uint8Array>();
  for (const u of ours) {
    const op = outpointOf(u);
    if (!known.has(op)) sweepScripts.set(op, await deps.lnd.nextSweepPkScript());
  }

  try {
    return await deps.db.write(async (tx) => {
      const stored = await listDeposits(tx);
      const plan = planReconcile(ours, stored, tip);
      const at = now();
      const changes: SyncChange[] = [];
      for (const c of plan.create) {
        const op = outpointOf(c);
        const sweep = sweepScripts.get(op) ?? await deps.lnd.nextSweepPkScript();
        if (await insertDeposit(tx, { ...c, depositId: randomId(), timeoutSweepPkScript: sweep }, at)) {
          changes.push({
            outpoint: op,
            change: "created",
            state: "Deposited",
            confirmationHeight: c.confirmationHeight,
            amountSat: c.amountSat,
          });
        }
      }
      const byId = new Map(stored.map((d) => [outpointOf(d), d]));
      for (const u of plan.update) {
        await applyDepositUpdate(tx, u, at);
        const d = byId.get(u.outpoint)!;
        for (const reason of u.reasons) {
          changes.push({
            outpoint: u.outpoint,
            change: reason as SyncChange["change"],
            state: u.resultingState,
            confirmationHeight: u.confirmationHeight ?? d.confirmationHeight,
            amountSat: d.amountSat,
          });
        }
      }
      return { tipHeight: tip, walletDeposits: ours.length, changes };
    });
  } catch (err) {
    throw dbError(err, "reconciling deposits");
  }
}
