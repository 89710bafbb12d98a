/**
 * `deposits sync`: one reconcile-and-act cycle (spec/static-address-and-deposits.md §4.7, §4.8, §4.10).
 *
 * 1. Reconcile. I/O happens outside the write transaction (GetInfo, ListUnspent, GetInfo; NextAddr for
 *    outpoints that look new). The wallet read asks lnd for its `imported` account only (where
 *    `ImportTapscript` puts the static-address scripts), so a large wallet costs nothing; the full listing
 *    is read instead when the filter is refused, before any deposit is marked Replaced or not wallet-visible
 *    (lnd answers an unknown account name with an empty list, so absence from the filtered view proves
 *    nothing), and when a stored expiry sweep's output (default account) has to be found. When the plan computed from that read is empty nothing is written (a re-run
 *    costs one read); otherwise the plan is recomputed from a fresh read *inside* one write transaction and
 *    applied there, so two concurrent syncs never lose or duplicate a row.
 * 2. Act on expiry. An expired deposit (`Deposited` or `LoopingIn`, in the wallet, tip ≥ C + E) gets its
 *    timeout sweep signed, then stored together with the move to `WaitForExpirySweep` in one transaction, and
 *    only then published. A stored sweep is republished unchanged until it has 3 confirmations, then the
 *    deposit becomes `Expired`. A deposit never gets two different sweeps (store guard, fsm.md).
 *
 * @module
 */
import type { LndClient, SpendDetails, Utxo } from "../../lnd/types.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import type { Db } from "../db/db.ts";
import { dbError } from "../db/db.ts";
import { listStaticAddresses, type StaticAddressRow } from "../db/static_addresses.ts";
import {
  applyDepositUpdate,
  type DepositHead,
  getDeposit,
  insertDeposits,
  listDepositHeads,
  transitionDeposit,
} from "./store.ts";
import { filterOurUtxos, planReconcile, type ReconcilePlan } from "./reconcile.ts";
import { type Deposit, outpointOf } from "./types.ts";
import type { Progress } from "../progress.ts";
import { ExitCode, type ExitCodeValue, LoopkitError } from "../errors.ts";
import {
  DEFAULT_SWEEP_CONF_TARGET,
  EXPIRY_SWEEP_CONFS,
  isExpired,
  signExpirySweep,
  timeoutSpendInfo,
} from "./sweep.ts";

/** What sync needs from lnd. */
export type SyncLnd =
  & Pick<
    LndClient,
    | "getInfo"
    | "estimateFeeSatPerKw"
    | "minRelayFeeSatPerKw"
    | "signOutputRaw"
    | "publishTransaction"
    | "registerConfirmation"
    | "registerSpend"
  >
  & {
    /**
     * `WalletKit.ListUnspent(min_confs, max_confs, account)`; (0, 0) means every UTXO, 0-conf included;
     * `account` limits the answer to that wallet account (none: every account); `pkScripts` keeps only the
     * UTXOs paying one of them (dropped while decoding: a large wallet costs its bytes, not its objects).
     */
    listUnspent(
      minConfs: number,
      maxConfs: number,
      opts?: { account?: string; pkScripts?: readonly Uint8Array[] },
    ): Promise<Utxo[]>;
    /** A fresh wallet pkScript for an expiry sweep (`WalletKit.NextAddr`, decoded). */
    nextSweepPkScript(): Promise<Uint8Array>;
  };

/** Default bound of the confirmation check of a published sweep that is not in the wallet view, ms. */
export const DEFAULT_CONFIRMATION_CHECK_MS = 3_000;

/**
 * Default bound of a spend check (lnd's `RegisterSpendNtfn` for a deposit's output), ms. lnd answers at once
 * for a spend already in the chain; an unspent output costs the whole wait (the checks run in parallel).
 */
export const DEFAULT_SPEND_CHECK_MS = 3_000;

/** Confirmations after which a spend by another transaction is recorded (`SpentElsewhere`, final). */
export const SPEND_FINAL_CONFS = 3;

/** New deposits written per write transaction (bounded memory and lock time on a first sync). */
export const CREATE_BATCH = 200;

/** The stored `timeout_sweep_pk_script` of a deposit whose sweep destination is not assigned yet. */
export const NO_SWEEP_DESTINATION: Uint8Array = new Uint8Array(0);

/**
 * The deposit's sweep destination: the stored one, or a fresh wallet address (`NextAddr`) stored now, before
 * anything is signed to it. The store is conditional (`WHERE` the column is still empty), so two syncs racing
 * here both use the address the first one stored; the loser's address stays unused in lnd's wallet.
 */
async function ensureSweepDestination(deps: SyncDeps, d: Deposit): Promise<Uint8Array> {
  if (d.timeoutSweepPkScript.length) return d.timeoutSweepPkScript;
  const fresh = await deps.lnd.nextSweepPkScript();
  try {
    return await deps.db.write(async (tx) => {
      await tx.execute({
        sql: `UPDATE deposits SET timeout_sweep_pk_script = ?
               WHERE deposit_id = ? AND length(timeout_sweep_pk_script) = 0`,
        args: [fresh, d.depositId],
      });
      const rs = await tx.execute({
        sql: "SELECT timeout_sweep_pk_script AS s FROM deposits WHERE deposit_id = ?",
        args: [d.depositId],
      });
      return new Uint8Array(rs.rows[0].s as ArrayBuffer);
    });
  } catch (err) {
    throw dbError(err, `storing the sweep destination of deposit ${outpointOf(d)}`);
  }
}

/** The sweep destinations of deposits whose stored expiry sweep is not final yet. */
async function listPendingSweepScripts(db: Db): Promise<Uint8Array[]> {
  const rs = await db.client.execute(
    `SELECT DISTINCT timeout_sweep_pk_script AS s FROM deposits
      WHERE state IN ('PublishExpirySweep', 'WaitForExpirySweep') AND expiry_sweep_tx IS NOT NULL`,
  );
  return rs.rows.map((r) => new Uint8Array(r.s as ArrayBuffer));
}

/** Spend-notifier streams open at once. */
const SPEND_CHECK_CONCURRENCY = 16;

/** Dependencies of {@linkcode syncDeposits}. */
export interface SyncDeps {
  db: Db;
  lnd: SyncLnd;
  /** Clock for history timestamps. */
  now?: () => Date;
  /** 32 random bytes for a new deposit id. */
  randomId?: () => Uint8Array;
  /** Blocks for lnd's fee estimate of an expiry sweep (`--sweep-conf-target`, default 6). */
  sweepConfTarget?: number;
  /** How long to wait for lnd's confirmation answer on a sweep missing from the wallet view, ms. */
  confirmationCheckMs?: number;
  /** How long to wait for lnd's spend answer on a deposit's output (default {@linkcode DEFAULT_SPEND_CHECK_MS}). */
  spendCheckMs?: number;
  /** Progress of a first sync that creates more than one batch of deposits (core/progress.ts). */
  progress?: Progress;
}

/** One changed deposit in the sync result. */
export interface SyncChange {
  outpoint: string;
  change: "created" | "confirmed" | "unconfirmed_again" | "replaced" | "revived" | "vanished" | "reappeared";
  state: string;
  confirmationHeight: number;
  amountSat: bigint;
}

/** What sync did about one expired deposit's sweep. */
export interface SweepReport {
  outpoint: string;
  /**
   * `published`: signed, stored and published now; `republished`: the stored sweep was published again;
   * `waiting`: the stored sweep has 1–2 confirmations; `confirmed`: it has 3, the deposit is `Expired`;
   * `failed`: nothing was stored (or the stored sweep could not be published), see `error`;
   * `spent_elsewhere`: the deposit's output was spent by another transaction, so this sweep can never
   * confirm; it is no longer published (the spend is in {@linkcode SyncResult.spends}).
   */
  action: "published" | "republished" | "waiting" | "confirmed" | "failed" | "spent_elsewhere";
  /** Deposit state after this sync. */
  state: string;
  /** Sweep txid, once one is stored. */
  txid?: string;
  /** Fee of a sweep signed in this run, sat. */
  feeSat?: bigint;
  /** Confirmations of the stored sweep, when known. */
  confirmations?: number;
  /** Why it failed. */
  error?: { code: string; message: string; exitCode: ExitCodeValue };
}

/** Result of one sync. */
export interface SyncResult {
  tipHeight: number;
  /** Wallet UTXOs paying our static addresses. */
  walletDeposits: number;
  changes: SyncChange[];
  /** Expiry sweeps acted on in this run. */
  sweeps: SweepReport[];
  /** Spends of deposits by transactions loopkit did not make, seen in this run (and failed spend checks). */
  spends: SpendReport[];
}

/** A deposit's output spent by a transaction loopkit did not make (lnd's spend notifier), or a failed check. */
export interface SpendReport {
  outpoint: string;
  /**
   * `recorded`: the spend has {@linkcode SPEND_FINAL_CONFS} confirmations, the deposit is now
   * `SpentElsewhere`; `pending`: fewer, nothing written yet; `check_failed`: lnd's spend notifier failed
   * (see `error`).
   */
  action: "recorded" | "pending" | "check_failed";
  /** Deposit state after this sync. */
  state: string;
  /** The spending transaction, display hex. */
  spendingTxid?: string;
  /** Its block height. */
  spendingHeight?: number;
  /** Its confirmations at this sync's tip. */
  confirmations?: number;
  error?: { code: string; message: string; exitCode: ExitCodeValue };
}

/** lnd's wallet account that `ImportTapscript` adds scripts to (btcwallet's imported-account name). */
export const IMPORTED_ACCOUNT = "imported";

/**
 * Reads the wallet view and the tip it belongs to: GetInfo before and after ListUnspent must agree, so
 * a block found in between cannot shift a derived confirmation height by one (bounded retries).
 * @param account ListUnspent's account filter (undefined: every account)
 * @param pkScripts keep only UTXOs paying one of these (undefined: all)
 * @throws {LoopkitError} `chain_moving` when the tip changed on every attempt; lnd errors as they come
 */
export async function consistentWalletView(
  lnd: Pick<SyncLnd, "getInfo" | "listUnspent">,
  attempts = 3,
  account?: string,
  pkScripts?: readonly Uint8Array[],
): Promise<{ tip: number; utxos: Utxo[] }> {
  const opts = {
    ...(account === undefined ? {} : { account }),
    ...(pkScripts === undefined ? {} : { pkScripts }),
  };
  for (let i = 0; i < attempts; i++) {
    const before = (await lnd.getInfo()).blockHeight;
    const utxos = await (Object.keys(opts).length ? lnd.listUnspent(0, 0, opts) : lnd.listUnspent(0, 0));
    const after = (await lnd.getInfo()).blockHeight;
    if (before === after) return { tip: after, utxos };
  }
  throw new LoopkitError(
    "chain_moving",
    `The chain tip changed during each of ${attempts} wallet reads; retry`,
    ExitCode.TempFail,
  );
}

const planIsEmpty = (p: ReconcilePlan) => p.create.length === 0 && p.update.length === 0;

/** A plan entry that concludes "gone from the wallet": only a full wallet read may justify it. */
const marksAbsence = (u: ReconcilePlan["update"][number]) =>
  u.reasons.includes("replaced") || u.reasons.includes("vanished");

/**
 * lnd answered the account-filtered ListUnspent with a refusal of the filter itself (an lnd answer naming
 * the account, not a transport, readiness or permission failure): read the full listing instead.
 */
export function isAccountFilterRefused(err: unknown): boolean {
  return err instanceof LndError && err.code === "lnd_rpc" && /account/i.test(err.details);
}

/** The wallet view one sync works from. */
interface WalletView {
  tip: number;
  utxos: Utxo[];
  /** The UTXOs paying our static addresses. */
  ours: Utxo[];
  /** True when `utxos` is the whole wallet, false when it is the `imported` account only. */
  full: boolean;
}

/**
 * The scripts a wallet read keeps: our static-address pkScripts plus the destinations of pending expiry sweeps
 * (their outputs pay lnd's default account and tell how deep the sweep is). Every other wallet output is
 * dropped while lnd's answer is decoded (bounded memory at 100 000 UTXOs, bench/README.md).
 */
interface Wanted {
  pkScripts: Uint8Array[];
  sweepScripts: Uint8Array[];
}

/**
 * The `imported`-account view, or the full one when lnd refuses the filter
 * ({@linkcode isAccountFilterRefused}); other lnd errors propagate (unreachable: exit 75).
 */
async function filteredView(lnd: SyncLnd, w: Wanted): Promise<WalletView> {
  try {
    const { tip, utxos } = await consistentWalletView(lnd, 3, IMPORTED_ACCOUNT, w.pkScripts);
    return { tip, utxos, ours: filterOurUtxos(utxos, w.pkScripts), full: false };
  } catch (err) {
    if (!isAccountFilterRefused(err)) throw err;
    return await fullView(lnd, w);
  }
}

async function fullView(lnd: SyncLnd, w: Wanted): Promise<WalletView> {
  const { tip, utxos } = await consistentWalletView(lnd, 3, undefined, [...w.pkScripts, ...w.sweepScripts]);
  return { tip, utxos, ours: filterOurUtxos(utxos, w.pkScripts), full: true };
}

/** `meta` key of the imported-account filter check: `ok:<height of the last check>` or `off`. */
export const FILTER_CHECK_KEY = "wallet_filter_check";

/** How often (in blocks, about a day) the filtered view is checked against the whole wallet. */
export const FILTER_RECHECK_BLOCKS = 144;

/**
 * The wallet view for this pass, self-checking the `imported`-account filter: the first sync, and then one
 * sync every {@linkcode FILTER_RECHECK_BLOCKS} blocks, also reads the whole wallet and compares. If the whole
 * wallet ever holds an output of ours that the filtered view lacks (an lnd that files imported scripts
 * elsewhere), the filter is switched off for good (`off` in `meta`) and every later sync reads the whole
 * wallet, as Loop does. So on any lnd a deposit is found within a day at worst, and on lnd that files
 * imported scripts under `imported` (v0.21.3, checked on regtest) at once and cheaply.
 */
async function checkedView(deps: SyncDeps, pkScripts: Wanted): Promise<WalletView> {
  let check: string | null;
  try {
    const rs = await deps.db.client.execute({
      sql: "SELECT value FROM meta WHERE key = ?",
      args: [FILTER_CHECK_KEY],
    });
    check = rs.rows.length ? String(rs.rows[0].value) : null;
  } catch (err) {
    throw dbError(err, "reading the wallet filter check");
  }
  if (check === "off") return await fullView(deps.lnd, pkScripts);
  const filtered = await filteredView(deps.lnd, pkScripts);
  if (filtered.full) return filtered;
  const last = check?.startsWith("ok:") ? Number(check.slice(3)) : NaN;
  if (Number.isInteger(last) && filtered.tip - last < FILTER_RECHECK_BLOCKS && filtered.tip >= last) {
    return filtered;
  }
  const full = await fullView(deps.lnd, pkScripts);
  // Only outputs already confirmed when the filtered view was read count: one that reached the mempool
  // between the two reads is no evidence against the filter.
  const seen = new Set(filtered.ours.map(outpointOf));
  const missed = full.ours.filter((u) =>
    u.confirmations > 0 && full.tip - u.confirmations + 1 <= filtered.tip && !seen.has(outpointOf(u))
  );
  const value = missed.length ? "off" : `ok:${full.tip}`;
  try {
    await deps.db.write((tx) =>
      tx.execute({
        sql:
          "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        args: [FILTER_CHECK_KEY, value],
      })
    );
  } catch (err) {
    throw dbError(err, "recording the wallet filter check");
  }
  return full;
}

/**
 * Runs one sync pass: reconcile, then act on expired deposits. No static address ⇒ nothing to do.
 * A failed sweep does not fail the pass; it is reported in {@linkcode SyncResult.sweeps} (the CLI exits 4,
 * or 75 when the cause was temporary).
 * @throws {LoopkitError} lnd errors of the wallet read (exit 75 when unreachable), `db_busy` (exit 75),
 *   height errors
 */
export async function syncDeposits(deps: SyncDeps): Promise<SyncResult> {
  const now = deps.now ?? (() => new Date());
  const randomId = deps.randomId ?? (() => crypto.getRandomValues(new Uint8Array(32)));
  const addresses = await listStaticAddresses(deps.db);
  if (addresses.length === 0) {
    return { tipHeight: 0, walletDeposits: 0, changes: [], sweeps: [], spends: [] };
  }
  // Read the rows BEFORE the wallet: only a row that existed before the wallet was read can be judged
  // absent from it (another sync may store a deposit that reached the wallet after this read).
  let stored: DepositHead[];
  let pendingSweepScripts: Uint8Array[];
  try {
    stored = await listDepositHeads(deps.db.client);
    pendingSweepScripts = await listPendingSweepScripts(deps.db);
  } catch (err) {
    throw dbError(err, "reading deposits");
  }
  const wanted: Wanted = { pkScripts: addresses.map((a) => a.pkScript), sweepScripts: pendingSweepScripts };
  const knownBeforeRead = new Set(stored.map(outpointOf));
  let view = await checkedView(deps, wanted);
  let draft = planReconcile(view.ours, stored, view.tip);
  if (!view.full && draft.update.some(marksAbsence)) {
    // Missing from the imported account is no proof of absence: confirm with the whole wallet.
    view = await fullView(deps.lnd, wanted);
    draft = planReconcile(view.ours, stored, view.tip);
  }
  const { tip, ours } = view;
  const changes: SyncChange[] = [];
  if (!planIsEmpty(draft)) {
    // New deposits are written in bounded batches (CREATE_BATCH per transaction, the updates with the first),
    // each recomputing the plan from the rows as they are inside it: a concurrent sync never loses or
    // duplicates a row, and a first sync of thousands of deposits never holds them all in one transaction.
    const batches: Set<string>[] = [];
    for (let i = 0; i < draft.create.length; i += CREATE_BATCH) {
      batches.push(new Set(draft.create.slice(i, i + CREATE_BATCH).map(outpointOf)));
    }
    if (!batches.length) batches.push(new Set());
    try {
      for (let b = 0; b < batches.length; b++) {
        const batch = batches[b];
        const last = b === batches.length - 1;
        const r = await deps.db.write(async (tx) => {
          const current = await listDepositHeads(tx);
          const plan = planReconcile(ours, current, tip);
          plan.create = plan.create.filter((c) => batch.has(outpointOf(c)));
          if (b > 0) plan.update = [];
          // A row stored since the draft (another sync) that this view lacks: leave it to the next sync
          // unless this view is the full wallet.
          if (!view.full) plan.update = plan.update.filter((u) => !marksAbsence(u));
          // Nor a row stored after the wallet read, whatever the view: this view may predate its output.
          plan.update = plan.update.filter((u) => !marksAbsence(u) || knownBeforeRead.has(u.outpoint));
          const at = now();
          const out: SyncChange[] = [];
          // No sweep destination yet: a wallet address is taken only when the deposit is swept
          // (ensureSweepDestination), not one per deposit at creation as Loop does. One multi-row INSERT per
          // 100 deposits (insertDeposits), not two statements per deposit.
          const created = await insertDeposits(
            tx,
            plan.create.map((c) => ({
              ...c,
              depositId: randomId(),
              timeoutSweepPkScript: NO_SWEEP_DESTINATION,
            })),
            at,
          );
          for (const c of plan.create) {
            const op = outpointOf(c);
            if (created.has(op)) {
              out.push({
                outpoint: op,
                change: "created",
                state: "Deposited",
                confirmationHeight: c.confirmationHeight,
                amountSat: c.amountSat,
              });
            }
          }
          const byOutpoint = new Map(current.map((d) => [outpointOf(d), d]));
          for (const u of plan.update) {
            await applyDepositUpdate(tx, u, at);
            const d = byOutpoint.get(u.outpoint)!;
            for (const reason of u.reasons) {
              out.push({
                outpoint: u.outpoint,
                change: reason as SyncChange["change"],
                state: u.resultingState,
                confirmationHeight: u.confirmationHeight ?? d.confirmationHeight,
                amountSat: d.amountSat,
              });
            }
          }
          return { changes: out, stored: last ? await listDepositHeads(tx) : undefined };
        });
        changes.push(...r.changes);
        if (r.stored) stored = r.stored;
        if (batches.length > 1) {
          deps.progress?.update(
            Math.min((b + 1) * CREATE_BATCH, draft.create.length),
            draft.create.length,
            "creating deposits",
          );
        }
      }
      deps.progress?.end();
    } catch (err) {
      throw dbError(err, "reconciling deposits");
    }
  }

  const { sweeps, spends } = await actOnExpiry(deps, now, {
    tip,
    ours,
    stored,
    addresses,
    // Stored sweeps pay lnd's default account: find their outputs in the whole wallet (one more read, only
    // when a sweep is pending).
    allUtxos: async () =>
      view.full
        ? view.utxos
        : (await consistentWalletView(deps.lnd, 3, undefined, wanted.sweepScripts)).utxos,
  });
  return { tipHeight: tip, walletDeposits: ours.length, changes, sweeps, spends };
}

interface View {
  tip: number;
  ours: Utxo[];
  stored: DepositHead[];
  addresses: StaticAddressRow[];
  /** Every wallet UTXO (all accounts); may read lnd. */
  allUtxos(): Promise<Utxo[]>;
}

const SWEEPING = new Set(["PublishExpirySweep", "WaitForExpirySweep"]);
const EXPIRABLE = new Set(["Deposited", "LoopingIn"]);

/**
 * A publish error that means "lnd or its backend already has this transaction" (mempool or chain). lnd
 * normally answers success for these; the texts are btcd's and bitcoind's in case one passes through.
 */
export function isAlreadyKnownPublishError(err: unknown): boolean {
  return err instanceof LndError && err.code === "lnd_rpc" &&
    /already (have|exists|known|in (the )?(mempool|block ?chain|utxo set))|txn-already|already confirmed/i
      .test(err.details);
}

function failure(err: unknown): NonNullable<SweepReport["error"]> {
  if (err instanceof LoopkitError) return { code: err.code, message: err.message, exitCode: err.exitCode };
  return { code: "internal_error", message: err instanceof Error ? err.message : String(err), exitCode: 1 };
}

/** One spend check: lnd's answer, or the error it failed with. */
type SpendCheck = { spend: SpendDetails | null } | { error: NonNullable<SweepReport["error"]> };

/**
 * Asks lnd's spend notifier whether the deposit's output was spent (from its confirmation height), bounded by
 * `spendCheckMs`; an lnd error is kept, not thrown, so one failed check does not stop the others.
 */
async function spendCheck(deps: SyncDeps, d: Deposit): Promise<SpendCheck> {
  try {
    const spend = await deps.lnd.registerSpend(
      { txid: d.txid, vout: d.vout },
      d.pkScript,
      Math.max(1, d.confirmationHeight),
      { timeoutMs: deps.spendCheckMs ?? DEFAULT_SPEND_CHECK_MS },
    );
    return { spend };
  } catch (err) {
    return { error: failure(err) };
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Confirmations at `tip` of a transaction mined at `height` (0 when lnd reports no height). */
const confsAt = (tip: number, height: number) => height > 0 ? Math.max(0, tip - height + 1) : 0;

/**
 * A spend of the deposit by a transaction other than its stored sweep: with {@linkcode SPEND_FINAL_CONFS}
 * confirmations the deposit becomes `SpentElsewhere` (the spending txid and height on the row and its history
 * row); before that it is reported `pending` and nothing is written (a reorg may still undo it).
 */
async function recordSpentElsewhere(
  deps: SyncDeps,
  now: () => Date,
  d: Deposit,
  spend: SpendDetails,
  tip: number,
): Promise<SpendReport> {
  const op = outpointOf(d);
  const confirmations = confsAt(tip, spend.spendingHeight);
  const report = {
    outpoint: op,
    spendingTxid: spend.spendingTxid,
    spendingHeight: spend.spendingHeight,
    confirmations,
  };
  if (confirmations < SPEND_FINAL_CONFS) return { ...report, action: "pending", state: d.state };
  let state: string | null;
  try {
    state = await deps.db.write((tx) =>
      transitionDeposit(tx, {
        depositId: d.depositId,
        from: d.state,
        events: ["OnSpentElsewhere"],
        spentBy: { txid: spend.spendingTxid, height: spend.spendingHeight },
      }, now())
    );
  } catch (err) {
    throw dbError(err, `recording the spend of deposit ${op}`);
  }
  if (state === null) {
    // Another process changed the row meanwhile: the next sync looks again.
    return { ...report, action: "pending", state: d.state };
  }
  return { ...report, action: "recorded", state };
}

async function actOnExpiry(
  deps: SyncDeps,
  now: () => Date,
  v: View,
): Promise<{ sweeps: SweepReport[]; spends: SpendReport[] }> {
  const inWallet = new Map(v.ours.map((u) => [outpointOf(u), u]));
  const addressOf = (script: Uint8Array) =>
    v.addresses.find((a) =>
      a.pkScript.length === script.length && a.pkScript.every((b, i) => b === script[i])
    );
  // Candidates from the scan fields: stored sweeps to follow, expired deposits still in the wallet, and
  // confirmed Deposited deposits the wallet does not list (gone from it, or restored by `recover deposit`
  // into an lnd that does not rescan): those get a spend check, and a sweep from the stored row at expiry.
  // LoopingIn and SweepHtlcTimeout deposits outside the wallet are the loop-in's business: not touched here.
  const candidates: { head: DepositHead; address: StaticAddressRow }[] = [];
  for (const d of v.stored) {
    if (!SWEEPING.has(d.state) && !EXPIRABLE.has(d.state)) continue;
    const address = addressOf(d.pkScript);
    if (!address) continue;
    const u = inWallet.get(outpointOf(d));
    const expiredInWallet = u !== undefined && u.confirmations > 0 &&
      isExpired(d.confirmationHeight, address.expiry, v.tip);
    const unlisted = d.state === "Deposited" && u === undefined && !d.walletVisible &&
      d.confirmationHeight > 0;
    if ((SWEEPING.has(d.state) && d.expirySweepTxid) || expiredInWallet || unlisted) {
      candidates.push({ head: d, address });
    }
  }
  if (!candidates.length) return { sweeps: [], spends: [] };

  const full: Deposit[] = [];
  for (const c of candidates) {
    let d: Deposit | null;
    try {
      d = await getDeposit(deps.db.client, c.head.depositId);
    } catch (err) {
      throw dbError(err, `reading deposit ${outpointOf(c.head)}`);
    }
    if (d) full.push(d);
  }
  const addressOfDeposit = new Map(candidates.map((c) => [outpointOf(c.head), c.address]));
  // Confirmations of stored sweeps' outputs as the wallet reports them (output 0 pays lnd's wallet).
  const pending = full.filter((d) => SWEEPING.has(d.state) && d.expirySweepTxid && d.expirySweepTx);
  const sweepConfs = new Map<string, number>();
  if (pending.length) {
    const wanted = new Set(pending.map((d) => `${d.expirySweepTxid}:0`));
    for (const u of await v.allUtxos()) {
      if (wanted.has(outpointOf(u))) sweepConfs.set(u.txid, u.confirmations);
    }
  }
  const unlisted = full.filter((d) => d.state === "Deposited" && !inWallet.has(outpointOf(d)));
  // A stored sweep not yet confirmed, and every unlisted deposit, gets a spend check of the deposit's
  // output: it tells a sweep that can never confirm (its input spent by another transaction) from one that
  // is still waiting. Confirmation and spend checks go to lnd in parallel (each bounded, a few at a time);
  // the writes stay sequential.
  const checks = new Map<Deposit, Promise<number | undefined>>();
  for (const d of pending) {
    checks.set(d, sweepConfirmations(deps, d, v.tip, sweepConfs.get(d.expirySweepTxid!)));
  }
  const spendChecked = [
    ...pending.filter((d) => !(sweepConfs.get(d.expirySweepTxid!)! > 0)),
    ...unlisted,
  ];
  const [spendResults] = await Promise.all([
    mapLimit(spendChecked, SPEND_CHECK_CONCURRENCY, (d) => spendCheck(deps, d)),
    Promise.allSettled(checks.values()),
  ]);
  const spendOf = new Map(spendChecked.map((d, i) => [d, spendResults[i]]));

  const reports: SweepReport[] = [];
  const spends: SpendReport[] = [];
  for (const d of full) {
    const op = outpointOf(d);
    try {
      const check = checks.get(d);
      const spent = spendOf.get(d);
      const spend = spent && "spend" in spent ? spent.spend : null;
      const elsewhere = spend !== null && spend.spendingTxid !== d.expirySweepTxid;
      if (check) {
        if (elsewhere) {
          // The sweep's input is spent by another transaction: the sweep can never confirm, do not republish.
          const r = await recordSpentElsewhere(deps, now, d, spend, v.tip);
          spends.push(r);
          reports.push({ outpoint: op, action: "spent_elsewhere", state: r.state, txid: d.expirySweepTxid! });
          continue;
        }
        let confs = await check;
        if (confs === undefined && spend) confs = confsAt(v.tip, spend.spendingHeight); // our sweep, mined
        reports.push(await followSweep(deps, now, d, confs));
      } else if (spent) {
        // Confirmed Deposited, not listed by the wallet.
        if ("error" in spent) {
          spends.push({ outpoint: op, action: "check_failed", state: d.state, error: spent.error });
        } else if (elsewhere) {
          spends.push(await recordSpentElsewhere(deps, now, d, spend, v.tip));
        } else if (
          spend !== null || isExpired(d.confirmationHeight, addressOfDeposit.get(op)!.expiry, v.tip)
        ) {
          // Expired and no spend seen (not proof, but a sweep of a spent output is merely refused by the
          // network and the next sync's spend check then records the spend), or spent by its own stored
          // sweep: sweep from the stored row.
          reports.push(await startSweep(deps, now, d, addressOfDeposit.get(op)!));
        }
      } else if (SWEEPING.has(d.state) || EXPIRABLE.has(d.state)) {
        reports.push(await startSweep(deps, now, d, addressOfDeposit.get(op)!));
      }
    } catch (err) {
      reports.push({ outpoint: op, action: "failed", state: d.state, error: failure(err) });
    }
  }
  return { sweeps: reports, spends };
}

/** Signs (or reuses) the sweep, stores it with the state change, then publishes the stored bytes. */
async function startSweep(
  deps: SyncDeps,
  now: () => Date,
  d: Deposit,
  address: StaticAddressRow,
): Promise<SweepReport> {
  const op = outpointOf(d);
  let sweep: { txid: string; tx: Uint8Array; feeSat?: bigint };
  if (d.expirySweepTx && d.expirySweepTxid) {
    sweep = { txid: d.expirySweepTxid, tx: d.expirySweepTx }; // back in Deposited with a stored sweep: reuse it
  } else {
    const spend = timeoutSpendInfo(address);
    sweep = await signExpirySweep(deps.lnd, {
      txid: d.txid,
      vout: d.vout,
      valueSat: d.amountSat,
      spend,
      sweepPkScript: await ensureSweepDestination(deps, d),
    }, deps.sweepConfTarget ?? DEFAULT_SWEEP_CONF_TARGET);
  }
  const events = d.state === "PublishExpirySweep"
    ? ["OnExpiryPublished" as const]
    : d.state === "WaitForExpirySweep"
    ? []
    : ["OnExpiry" as const, "OnExpiryPublished" as const];
  let state: string | null;
  try {
    state = await deps.db.write((tx) =>
      transitionDeposit(tx, { depositId: d.depositId, from: d.state, events, expirySweep: sweep }, now())
    );
  } catch (err) {
    throw dbError(err, `storing the expiry sweep of deposit ${op}`);
  }
  if (state === null) {
    // Another sync got there first: publish what it stored, never our own different transaction.
    let current: Deposit | null;
    try {
      current = await getDeposit(deps.db.client, d.depositId);
    } catch (err) {
      throw dbError(err, `reading deposit ${op}`);
    }
    if (!current?.expirySweepTx || !current.expirySweepTxid) {
      return { outpoint: op, action: "failed", state: current?.state ?? d.state, error: raced(op) };
    }
    sweep = { txid: current.expirySweepTxid, tx: current.expirySweepTx };
    state = current.state;
  }
  const published = await publish(deps, sweep.tx);
  return {
    outpoint: op,
    action: published === true ? "published" : "failed",
    state,
    txid: sweep.txid,
    feeSat: sweep.feeSat,
    ...(published === true ? {} : { error: published }),
  };
}

function raced(op: string): NonNullable<SweepReport["error"]> {
  return {
    code: "deposit_changed",
    message: `Deposit ${op} changed state while its expiry sweep was being signed; the next sync retries`,
    exitCode: ExitCode.TempFail,
  };
}

/** Publishes stored bytes; an "already known" answer counts as success. */
async function publish(deps: SyncDeps, tx: Uint8Array): Promise<true | NonNullable<SweepReport["error"]>> {
  try {
    await deps.lnd.publishTransaction(tx, "loopkit: expiry sweep");
    return true;
  } catch (err) {
    if (isAlreadyKnownPublishError(err)) return true;
    return failure(err);
  }
}

/**
 * Confirmations of a stored sweep: from the wallet view (its output 0 pays lnd's wallet), else from lnd's
 * confirmation notifier within a bounded wait; undefined when neither knows it.
 */
async function sweepConfirmations(
  deps: SyncDeps,
  d: Deposit,
  tip: number,
  walletConfs: number | undefined,
): Promise<number | undefined> {
  if (walletConfs !== undefined) return walletConfs;
  // Not in the wallet view (not relayed, or its output is already spent): ask lnd, bounded.
  const conf = await deps.lnd.registerConfirmation(
    d.expirySweepTxid!,
    d.timeoutSweepPkScript,
    EXPIRY_SWEEP_CONFS,
    Math.max(1, d.confirmationHeight),
    { timeoutMs: deps.confirmationCheckMs ?? DEFAULT_CONFIRMATION_CHECK_MS },
  );
  return conf ? Math.max(0, tip - conf.blockHeight + 1) : undefined;
}

/** Marks the deposit Expired at 3 confirmations of its stored sweep, else republishes the same bytes. */
async function followSweep(
  deps: SyncDeps,
  now: () => Date,
  d: Deposit,
  confs: number | undefined,
): Promise<SweepReport> {
  const op = outpointOf(d);
  const txid = d.expirySweepTxid!;
  if (confs !== undefined && confs >= EXPIRY_SWEEP_CONFS) {
    const events = d.state === "PublishExpirySweep"
      ? ["OnExpiryPublished" as const, "OnExpirySwept" as const]
      : ["OnExpirySwept" as const];
    let state: string | null;
    try {
      state = await deps.db.write((tx) =>
        transitionDeposit(tx, { depositId: d.depositId, from: d.state, events }, now())
      );
    } catch (err) {
      throw dbError(err, `marking deposit ${op} expired`);
    }
    return { outpoint: op, action: "confirmed", state: state ?? "Expired", txid, confirmations: confs };
  }
  if (confs !== undefined && confs > 0) {
    return { outpoint: op, action: "waiting", state: d.state, txid, confirmations: confs };
  }
  const published = await publish(deps, d.expirySweepTx!);
  return {
    outpoint: op,
    action: published === true ? "republished" : "failed",
    state: d.state,
    txid,
    confirmations: confs ?? 0,
    ...(published === true ? {} : { error: published }),
  };
}
