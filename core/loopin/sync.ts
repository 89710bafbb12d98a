/**
 * `loopin sync`: one stateless evaluation of every pending or watched loop-in (spec/static-loop-in.md §2.5,
 * §2.6 items 3–4, §3.9–§3.11, §4.5, §4.6; spec/static-loop-in-review.md §1.1–§1.11; spec/README.md decisions 1
 * and 6). A timer runs it; every step it takes is one database transaction, so a kill at any point leaves a
 * state the next run continues from.
 *
 * Per swap, in this order:
 *
 * - `InitHtlcTx` / `SignHtlcTx` whose initiation process is gone (owner.ts): not armed ⇒ abandon push (only the
 *   swap hash, best effort), `→ UnlockDeposits`, then as below; armed ⇒ `SignHtlcTx → MonitorInvoiceAndHtlcTx`
 *   (review §1.1). A live owner ⇒ skipped.
 * - `UnlockDeposits`: (armed: an HTLC variant on chain first ⇒ `SweepHtlcTimeout`); invoice cancel
 *   acknowledged (lnd's CancelInvoice, then LookupInvoice reads CANCELED or NOT_FOUND) ⇒ deposits `Deposited`,
 *   `Failed`; lnd says SETTLED ⇒ `PaymentReceived → Succeeded`, deposits `LoopedIn` (settlement wins).
 * - Every release of an armed swap's deposits (deadline, rejection, CLTV, unlock) rests on a definite chain fact
 *   (`releaseHold`): lnd's wallet lists every deposit unspent (ListUnspent, mempool included), or a deposit is
 *   spent in a block by a transaction that is no HTLC variant. An HTLC variant seen at 1–2 confirmations (or as
 *   a deposit's spender) holds the deposits, with no error, until it has 3; anything else (a deposit not listed
 *   and no answer within `chainCheckMs`: an HTLC in the mempool, or a slow lnd) changes nothing and exits 75.
 * - `MonitorInvoiceAndHtlcTx`: (a) invoice SETTLED ⇒ `Succeeded` with the deposits `LoopedIn`, one transaction;
 *   (b) a persisted rejection ⇒ the chain first, then cancel (acknowledged), deposits released, `Failed` —
 *   still watched (review §1.3); (c) the deadline is armed from a persisted start (risk acceptance time, or the
 *   legacy 6-confirmation rule with its start persisted: review §1.10); (d) deadline passed ⇒ the chain first
 *   (review §1.2), then cancel (acknowledged) ⇒ deposits `Deposited`, state unchanged; (e) an HTLC variant with
 *   3 confirmations (by its txid: review §1.11) and the cancel acknowledged ⇒ `SweepHtlcTimeout` (deposits too);
 *   (f) `tip − 1 ≥ htlc_expiry` ⇒ cancel (acknowledged), then confirmed ⇒ `SweepHtlcTimeout`, else `Failed`.
 * - `Failed` and armed (watched): an HTLC variant confirmed ⇒ `SweepHtlcTimeout`; a deposit spent (confirmed)
 *   by a transaction that is not an HTLC variant ⇒ the watch ends, with a history row naming the txid.
 * - `SweepHtlcTimeout`: from the CLTV height on, the timeout sweep of the variant that confirmed is built
 *   (timeout_sweep.ts), signed by lnd (`SignOutputRaw`, SIGN_METHOD_WITNESS_V0, SIGHASH_ALL, the HTLC key
 *   locator), verified, stored with `→ MonitorHtlcTimeoutSweep`, and only then published.
 * - `MonitorHtlcTimeoutSweep`: the stored bytes are republished unchanged until the sweep (or an earlier fee
 *   version of it, found as the HTLC output's spender) has 3 confirmations ⇒ `HtlcTimeoutSwept` (deposits too);
 *   still unconfirmed `TIMEOUT_SWEEP_BUMP_BLOCKS` after it was built with a higher estimate within the cap, or
 *   another HTLC variant confirmed instead (a reorg) ⇒ `→ SweepHtlcTimeout`, rebuilt (fsm.md addition 4).
 *   Before a sweep is signed, and while it is followed, the stored confirmed variant is re-checked (`recheckHtlc`).
 *
 * Swaps are evaluated {@linkcode SYNC_CONCURRENCY} at a time (their lnd queries overlap; their store calls, each
 * its own transaction, run one after another).
 *
 * Notifications (risk decisions, sweep requests) come from `SubscribeNotifications`, held open for up to
 * `listenMs` only while some swap wants them, and closed as soon as none does; with nothing pending or watched
 * no swap-server connection is made at all. Errors while monitoring change nothing and are reported as
 * retryable (exit 75, review §1.8).
 *
 * @module
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { RawTx, Transaction as BtcTransaction } from "@scure/btc-signer";
import { hex } from "@scure/base";
import { equalBytes } from "@noble/curves/utils.js";
import type { Db } from "../db/db.ts";
import { dbError } from "../db/db.ts";
import { listDeposits } from "../deposits/store.ts";
import { ExitCode, type ExitCodeValue, LoopkitError } from "../errors.ts";
import { listStaticAddresses, type StaticAddressRow } from "../db/static_addresses.ts";
import { addressOfRow } from "../staticaddr/new_address.ts";
import type { NetworkName } from "../staticaddr/network.ts";
import { txidToBytes } from "../staticaddr/outpoint.ts";
import type { LndClient } from "../../lnd/types.ts";
import { LndError } from "../../lnd/lnd_error.ts";
import type { ServerNotification, SwapServerClient } from "../swapserver/client.ts";
import { IMPORTED_ACCOUNT, isAccountFilterRefused, isAlreadyKnownPublishError } from "../deposits/sync.ts";
import { type ConfirmedHtlc, type LoopInSwap, LoopInSwapStore, swapChanged } from "./store.ts";
import {
  DEFAULT_PAYMENT_TIMEOUT_SEC,
  HTLC_CONFIRMATIONS,
  HTLC_VARIANTS,
  type HtlcVariant,
  LEGACY_MIN_CONFS,
  type LoopInState,
  SWEEP_NOT_FINISHED_MESSAGE,
  TIMEOUT_SWEEP_CONF_TARGET,
  timeoutSweepLabel,
} from "./types.ts";
import { htlcP2wshPkScript, htlcV2Script, SIGHASH_ALL } from "./htlc.ts";
import { buildHtlcTx, htlcFeeCapSat, txidOfRaw } from "./htlc_tx.ts";
import { buildHtlcTimeoutSweep, finalizeHtlcTimeoutSweep } from "./timeout_sweep.ts";
import { expectedSweeplessChange, sweeplessPsbtTxid, validateSweeplessSweep } from "./sweepless.ts";
import { ownerAlive as defaultOwnerAlive, type OwnerTag } from "./owner.ts";

/** What sync needs from lnd. */
export type SyncLoopInLnd = Pick<
  LndClient,
  | "getInfo"
  | "lookupInvoice"
  | "cancelInvoice"
  | "registerConfirmation"
  | "registerSpend"
  | "listUnspent"
  | "signOutputRaw"
  | "publishTransaction"
  | "estimateFeeSatPerKw"
  | "muSig2CreateSession"
  | "muSig2RegisterNonces"
  | "muSig2Sign"
  | "muSig2Cleanup"
>;

/** What sync needs from the swap server. */
export type SyncLoopInServer = Pick<
  SwapServerClient,
  "subscribeNotifications" | "pushStaticAddressHtlcSigs" | "pushStaticAddressSweeplessSigs"
>;

/** Dependencies of {@linkcode syncLoopIns}. */
export interface SyncLoopInDeps {
  db: Db;
  network: NetworkName;
  lnd: SyncLoopInLnd;
  /** Opens the swap server; called only when something needs it (never with nothing pending or watched). */
  server: () => Promise<SyncLoopInServer>;
  /** The store (default: a {@linkcode LoopInSwapStore} over `db` with `now`). */
  store?: LoopInSwapStore;
  /** Clock. */
  now?: () => Date;
  /** Liveness of an initiation's owner (default owner.ts `ownerAlive`). */
  ownerAlive?: (owner: OwnerTag | null, ageMs: number) => boolean;
  /** Diagnostics (stderr). */
  log?: (line: string) => void;
  /** Interrupt: stops listening; the run ends after the current step. */
  signal?: AbortSignal;
  /**
   * One deposit refresh (the `deposits sync` pass), run before the evaluation when a monitored swap without a
   * deadline has a deposit the database still holds unconfirmed: the legacy deadline rule reads confirmation
   * heights from the store (spec §7 scenario 21; upstream refreshes the wallet view first). A failure is
   * logged and the stored heights are used (the rule then simply does not start the deadline yet).
   */
  refreshDeposits?: () => Promise<void>;
}

/** Options of {@linkcode syncLoopIns}. */
export interface SyncLoopInOptions {
  /** How long to hold the notification stream open while something wants it, ms (`--listen`, default 30 s). */
  listenMs?: number;
  /** While listening, how often the waiting swaps are evaluated again (invoice settled?), ms (default 2 s). */
  pollMs?: number;
  /** Bound of each lnd confirmation or spend query, ms (default 1.5 s). */
  chainCheckMs?: number;
  /**
   * How many swaps are evaluated at once (default {@linkcode SYNC_CONCURRENCY}): their lnd queries overlap, their
   * database writes stay one transaction each, one after another.
   */
  concurrency?: number;
}

/**
 * Default number of swaps evaluated at once. Each waits up to `chainCheckMs` for lnd's confirmation answers, so
 * one after another 100 unconfirmed armed swaps take ≥ 100 × `chainCheckMs` (bench/README.md); 8 bounds the lnd
 * streams in flight (3 per swap) well below lnd's limits while dividing that time by 8.
 */
export const SYNC_CONCURRENCY = 8;

/** Default `--listen`, ms. */
export const DEFAULT_LISTEN_MS = 30_000;

/** What one run did to one swap. */
export interface LoopInSyncReport {
  swapHash: string;
  stateBefore: LoopInState;
  state: LoopInState;
  /** What changed, in order (human text). */
  actions: string[];
  /** One line: what the swap waits for now. */
  waitingFor: string;
  /** Set when this swap's evaluation failed; nothing of the failed step was written. */
  error?: { code: string; message: string; exitCode: ExitCodeValue };
}

/** Result of {@linkcode syncLoopIns}. */
export interface LoopInSyncResult {
  tipHeight: number;
  swaps: LoopInSyncReport[];
  /** True when the swap server was contacted. */
  serverContacted: boolean;
  /** Notifications handled (risk decisions, sweep requests). */
  notifications: { kind: string; swapHash: string; result: string }[];
  /** The stream error, when listening failed (retryable). */
  listenError?: { code: string; message: string; exitCode: ExitCodeValue };
}

/**
 * The exit code of a run: 0 when every swap was evaluated; 75 when only retryable failures happened (lnd,
 * server or database unreachable, a concurrent change); 1 when some failure was not retryable.
 */
export function syncExitCode(r: LoopInSyncResult): ExitCodeValue {
  const errs = [...r.swaps.map((s) => s.error), r.listenError].filter((e) => e !== undefined);
  if (!errs.length) return ExitCode.Ok;
  return errs.every((e) => e!.exitCode === ExitCode.TempFail) ? ExitCode.TempFail : ExitCode.Failure;
}

/** A failure while monitoring: retryable (review §1.8), unless it is a loopkit refusal of its own. */
function retryable(err: unknown, what: string): LoopkitError {
  if (err instanceof LoopkitError && !(err instanceof LndError)) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new LoopkitError(
    "loopin_sync_retry",
    `${what}: ${detail}; the next run retries`,
    ExitCode.TempFail,
    {
      cause: err,
    },
  );
}

const STATES_WITH_NOTIFICATIONS: ReadonlySet<LoopInState> = new Set(["MonitorInvoiceAndHtlcTx"]);

/** How long after success a swap still listens for the server's sweepless sweep request, ms (one day). */
export const SWEEPLESS_LISTEN_WINDOW_MS = 86_400_000;

interface Ctx {
  deps: SyncLoopInDeps;
  store: LoopInSwapStore;
  now: () => Date;
  tip: number;
  /** lnd's `synced_to_chain` at the start of the run: its wallet view is only a chain fact when true. */
  synced: boolean;
  chainCheckMs: number;
  addresses: Map<number, StaticAddressRow>;
  /** The swap server, once opened (one opening shared by the swaps evaluated at once). */
  server: Promise<SyncLoopInServer> | null;
  /** HTLC confirmation answers of this run (the tip is read once per run): re-evaluations while listening reuse them. */
  htlcChecks: Map<string, HtlcChain>;
  /** lnd's timeout-sweep fee estimate of this run, once asked. */
  sweepFeeRate?: bigint;
  serverContacted: boolean;
  log: (line: string) => void;
}

function openServer(c: Ctx): Promise<SyncLoopInServer> {
  if (!c.server) {
    c.serverContacted = true;
    c.server = c.deps.server().catch((err) => {
      c.server = null; // a later step may try again
      throw err;
    });
  }
  return c.server;
}

/**
 * The store with its calls run one at a time, in call order. Swaps are evaluated concurrently, and two write
 * transactions of one process on one SQLite file would wait for each other's lock while blocking the thread the
 * other needs to commit (measured: SQLITE_BUSY after the busy timeout); each call is still its own transaction.
 */
function serialStore(store: LoopInSwapStore): LoopInSwapStore {
  let tail: Promise<unknown> = Promise.resolve();
  return new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        const run = tail.then(() => v.apply(target, args));
        tail = run.catch(() => {});
        return run;
      };
    },
  });
}

/** Runs `fn` over `items`, at most `limit` at once, starting none once `signal` is aborted. */
async function boundedEach<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !signal?.aborted) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * One `loopin sync` run over every pending or watched swap: each is evaluated once (module doc), then, while
 * some swap wants notifications, the server's stream is held open for up to `listenMs`, with the waiting swaps
 * evaluated again every `pollMs` and after every notification.
 *
 * @returns per-swap reports; see {@linkcode syncExitCode}
 * @throws {LoopkitError} only for failures before any swap is evaluated (database unreadable: `db_busy` exit 75;
 *   lnd unreachable for GetInfo: exit 75)
 */
export async function syncLoopIns(
  deps: SyncLoopInDeps,
  opts: SyncLoopInOptions = {},
): Promise<LoopInSyncResult> {
  const now = deps.now ?? (() => new Date());
  const store = serialStore(deps.store ?? new LoopInSwapStore(deps.db, { now }));
  let active = await store.listSwaps({ activeOnly: true });
  const sweepWaiting = await succeededAwaitingSweep(store, now());
  const result: LoopInSyncResult = { tipHeight: 0, swaps: [], serverContacted: false, notifications: [] };
  if (!active.length && !sweepWaiting.length) return result;
  const needsHeights = active.some((s) =>
    s.state === "MonitorInvoiceAndHtlcTx" && !s.paymentDeadlineStartedAt &&
    s.deposits.some((d) => d.confirmationHeight === 0)
  );
  if (needsHeights && deps.refreshDeposits) {
    try {
      await deps.refreshDeposits();
      active = await store.listSwaps({ activeOnly: true });
    } catch (err) {
      deps.log?.(`loopkit: note: deposit refresh failed (${(err as Error).message}); using stored heights`);
    }
  }
  let tip: number;
  let synced: boolean;
  try {
    const info = await deps.lnd.getInfo();
    tip = info.blockHeight;
    synced = info.syncedToChain;
  } catch (err) {
    throw retryable(err, "lnd GetInfo");
  }
  let addresses: StaticAddressRow[];
  try {
    addresses = await listStaticAddresses(deps.db);
  } catch (err) {
    throw dbError(err, "reading static addresses");
  }
  const c: Ctx = {
    deps,
    store,
    now,
    tip,
    synced,
    chainCheckMs: opts.chainCheckMs ?? 1_500,
    addresses: new Map(addresses.map((a) => [a.id, a])),
    server: null,
    htlcChecks: new Map(),
    serverContacted: false,
    log: deps.log ?? (() => {}),
  };
  result.tipHeight = tip;
  // Interrupted: no new swap is started; the ones under way stop after their current step.
  const evaluated: (LoopInSyncReport | undefined)[] = new Array(active.length);
  await boundedEach(active, opts.concurrency ?? SYNC_CONCURRENCY, deps.signal, async (s, i) => {
    evaluated[i] = await evaluate(c, s);
  });
  const reports = new Map<string, LoopInSyncReport>();
  for (const r of evaluated) if (r) reports.set(r.swapHash, r);

  const listenMs = opts.listenMs ?? DEFAULT_LISTEN_MS;
  if (listenMs > 0 && !deps.signal?.aborted && await wantsNotifications(c)) {
    try {
      await listen(c, listenMs, opts.pollMs ?? 2_000, reports, result);
    } catch (err) {
      const e = retryable(err, "swap server notification stream");
      result.listenError = { code: e.code, message: e.message, exitCode: e.exitCode };
    }
  }
  result.swaps = [...reports.values()];
  result.serverContacted = c.serverContacted;
  return result;
}

/** Succeeded swaps that have not signed a sweepless sweep yet, within the listen window. */
async function succeededAwaitingSweep(store: LoopInSwapStore, now: Date): Promise<LoopInSwap[]> {
  const all = await store.listSwaps();
  return all.filter((s) =>
    s.state === "Succeeded" && !s.sweeplessSigned &&
    now.getTime() - s.updatedAt.getTime() < SWEEPLESS_LISTEN_WINDOW_MS
  );
}

/** True while some swap wants notifications: a monitored swap awaiting risk or payment, or a sweep request. */
async function wantsNotifications(c: Ctx): Promise<boolean> {
  const active = await c.store.listSwaps({ pendingOnly: true });
  const waiting = (s: LoopInSwap) =>
    STATES_WITH_NOTIFICATIONS.has(s.state) && s.invoiceCanceledAt === null && s.invoiceState !== "CANCELED" &&
    s.invoiceState !== "NOT_FOUND";
  if (active.some(waiting)) return true;
  return (await succeededAwaitingSweep(c.store, c.now())).length > 0;
}

async function listen(
  c: Ctx,
  listenMs: number,
  pollMs: number,
  reports: Map<string, LoopInSyncReport>,
  result: LoopInSyncResult,
): Promise<void> {
  const server = await openServer(c);
  const ac = new AbortController();
  const stop = () => ac.abort();
  c.deps.signal?.addEventListener("abort", stop);
  const timer = setTimeout(stop, listenMs);
  let busy = Promise.resolve();
  const serial = (fn: () => Promise<void>) => (busy = busy.then(fn, fn));
  const reevaluate = async () => {
    for (const s of await c.store.listSwaps({ activeOnly: true })) {
      if (c.deps.signal?.aborted) return; // interrupted: no further swap
      if (!STATES_WITH_NOTIFICATIONS.has(s.state) && s.state !== "UnlockDeposits") continue;
      const r = await evaluate(c, s);
      const prev = reports.get(s.swapHashHex);
      reports.set(
        s.swapHashHex,
        prev ? { ...r, stateBefore: prev.stateBefore, actions: [...prev.actions, ...r.actions] } : r,
      );
    }
    if (!(await wantsNotifications(c))) stop();
  };
  const poll = setInterval(() => {
    void serial(reevaluate);
  }, pollMs);
  try {
    await server.subscribeNotifications({
      signal: ac.signal,
      onNotification: (n) =>
        serial(async () => {
          const r = await handleNotification(c, n);
          if (r) result.notifications.push(r);
          await reevaluate();
        }),
    });
    await busy;
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
    c.deps.signal?.removeEventListener("abort", stop);
    ac.abort();
  }
}

async function handleNotification(
  c: Ctx,
  n: ServerNotification,
): Promise<{ kind: string; swapHash: string; result: string } | null> {
  if (n.kind === "other") return null;
  if (!(n.swapHash instanceof Uint8Array) || n.swapHash.length !== 32) {
    c.log(`loopkit: note: ignored a ${n.kind} notification with a swap hash of ${n.swapHash?.length} bytes`);
    return null;
  }
  const hashHex = bytesToHex(n.swapHash);
  if (n.kind === "risk_accepted" || n.kind === "risk_rejected") {
    const decision = n.kind === "risk_accepted" ? "accepted" : "rejected";
    try {
      const r = await c.store.recordRiskDecision(n.swapHash, decision);
      return {
        kind: n.kind,
        swapHash: hashHex,
        result: r.changed ? `recorded ${decision}` : `kept ${r.decision}`,
      };
    } catch (err) {
      c.log(`loopkit: note: risk decision for ${hashHex} not recorded: ${(err as Error).message}`);
      return { kind: n.kind, swapHash: hashHex, result: `not recorded: ${(err as Error).message}` };
    }
  }
  if (n.kind !== "sweep") return null;
  try {
    return { kind: "sweep", swapHash: hashHex, result: await answerSweep(c, n) };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    c.log(`loopkit: note: sweep request for ${hashHex} refused: ${msg}`);
    return { kind: "sweep", swapHash: hashHex, result: `refused: ${msg}` };
  }
}

/**
 * Answers one sweepless sweep request (spec §4.6): not `Succeeded` ⇒ `swap not finished yet`; otherwise the
 * request is validated (sweepless.ts, with our deposits' values and pkScripts) and each listed deposit is signed
 * in a fresh lnd MuSig2 session (create → register the server nonce → sign → cleanup, always cleanup).
 */
async function answerSweep(c: Ctx, n: Extract<ServerNotification, { kind: "sweep" }>): Promise<string> {
  const swap = await c.store.getSwap(n.swapHash);
  if (!swap) throw new LoopkitError("loopin_not_found", "unknown swap; nothing sent");
  const server = await openServer(c);
  if (swap.state !== "Succeeded") {
    const txid = sweeplessPsbtTxid(n.sweepTxPsbt);
    await server.pushStaticAddressSweeplessSigs({
      swapHash: n.swapHash,
      txid: txidToBytes(txid),
      signingInfo: new Map(),
      errorMessage: SWEEP_NOT_FINISHED_MESSAGE,
    });
    return `answered "${SWEEP_NOT_FINISHED_MESSAGE}" (state ${swap.state})`;
  }
  const address = c.addresses.get(swap.staticAddressId);
  if (!address) {
    throw new LoopkitError("loopin_address_missing", `static address ${swap.staticAddressId} not stored`);
  }
  const all = await listDeposits(c.deps.db.client);
  const ourDeposits = new Map(
    all.map((d) => [`${d.txid}:${d.vout}`, { valueSat: d.amountSat, pkScript: d.pkScript }]),
  );
  const depositSwapHash = new Map(all.map((d) => [`${d.txid}:${d.vout}`, d.swapHash]));
  const swaps = new Map<string, { totalSat: bigint; selectedSat: bigint }>();
  for (const h of new Set(all.map((d) => d.swapHash).filter((h): h is string => h !== null))) {
    const s = h === swap.swapHashHex ? swap : await c.store.getSwap(h);
    if (s) swaps.set(h, { totalSat: s.totalDepositSat, selectedSat: s.selectedAmountSat });
  }
  const inputs = sweepInputs(n.sweepTxPsbt);
  const changeExpectedSat = expectedSweeplessChange({ inputOutpoints: inputs, depositSwapHash, swaps });
  const v = validateSweeplessSweep({
    psbt: n.sweepTxPsbt,
    swapHash: n.swapHash,
    swapOutpoints: swap.deposits.map((d) => d.outpoint),
    changeExpectedSat,
    staticPkScript: address.pkScript,
    depositToNonces: n.depositToNonces,
    prevoutInfo: n.prevoutInfo,
    ourDeposits,
  });
  const tapLeafHash = addressOfRow(address, c.deps.network).tapLeafHash;
  const signingInfo = new Map<string, { nonce: Uint8Array; sig: Uint8Array }>();
  for (const t of v.toSign) {
    const session = await c.deps.lnd.muSig2CreateSession({
      keyLocator: { family: address.clientKeyFamily, index: address.clientKeyIndex },
      allSignerPubkeys: [address.clientPubkey, address.serverPubkey],
      taprootScriptRoot: tapLeafHash,
    });
    try {
      const haveAll = await c.deps.lnd.muSig2RegisterNonces(session.sessionId, [t.serverNonce]);
      if (!haveAll) {
        throw new LoopkitError("musig2_nonces_missing", `lnd still misses nonces for deposit ${t.outpoint}`);
      }
      const sig = await c.deps.lnd.muSig2Sign(session.sessionId, t.sighash, false);
      signingInfo.set(t.outpoint, { nonce: session.localPublicNonces, sig });
    } finally {
      await c.deps.lnd.muSig2Cleanup(session.sessionId).catch((err) =>
        c.log(`loopkit: note: MuSig2Cleanup failed: ${(err as Error).message}`)
      );
    }
  }
  await server.pushStaticAddressSweeplessSigs({
    swapHash: n.swapHash,
    txid: txidToBytes(v.txid),
    signingInfo,
  });
  await c.store.update(n.swapHash, { sweeplessSigned: { at: c.now(), txid: v.txid } }, {
    reason: `sweepless sweep ${v.txid} signed (${signingInfo.size} deposits)`,
  });
  return `signed sweepless sweep ${v.txid}`;
}

function sweepInputs(psbt: Uint8Array): string[] {
  let tx: BtcTransaction;
  try {
    tx = BtcTransaction.fromPSBT(psbt, {
      allowUnknownOutputs: true,
      allowUnknownInputs: true,
      disableScriptCheck: true,
      allowUnknown: true,
    });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    if (input.txid && input.index !== undefined) out.push(`${hex.encode(input.txid)}:${input.index}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Per-swap evaluation
// ---------------------------------------------------------------------------------------------------------

interface Eval {
  swap: LoopInSwap;
  actions: string[];
  /** Set when this run holds the swap on a chain fact the stored state does not show (reported as `waitingFor`). */
  waiting?: string;
}

async function evaluate(c: Ctx, swap0: LoopInSwap): Promise<LoopInSyncReport> {
  const e: Eval = { swap: swap0, actions: [] };
  const before = swap0.state;
  try {
    let moved = false;
    let lost = false;
    for (;;) {
      try {
        await step(c, e);
        break;
      } catch (err) {
        if (!moved && err instanceof LoopkitError && err.code === "loopin_state_changed") {
          // Another loopkit process moved the swap between our read and our write: nothing of ours was
          // written; continue once from what it stored (e.g. publish the sweep it stored, never our own).
          moved = true;
          await reload(c, e);
          e.actions.push(`another process moved the swap to ${e.swap.state}; continued from there`);
        } else if (!lost && sessionLost(err)) {
          // The failed step wrote nothing (each step is one transaction, after its lnd calls), and every lnd
          // call of a step may be repeated (cancel, lookups, queries, signing, republishing stored bytes):
          // continue once from the stored state, as the next run would.
          lost = true;
          e.waiting = undefined;
          await reload(c, e);
          e.actions.push(
            "an lnd call was lost with its HTTP/2 session; continued once from the stored state",
          );
        } else throw err;
      }
    }
    return {
      swapHash: swap0.swapHashHex,
      stateBefore: before,
      state: e.swap.state,
      actions: e.actions,
      waitingFor: e.waiting ?? waitingFor(e.swap, c.tip, c.now()),
    };
  } catch (err) {
    const x = retryable(err, `loop-in ${swap0.swapHashHex}`);
    const fresh = await c.store.getSwap(swap0.swapHash).catch(() => null) ?? e.swap;
    return {
      swapHash: swap0.swapHashHex,
      stateBefore: before,
      state: fresh.state,
      actions: e.actions,
      waitingFor: e.waiting ?? waitingFor(fresh, c.tip, c.now()),
      error: { code: x.code, message: x.message, exitCode: x.exitCode },
    };
  }
}

/**
 * True for an lnd call lost with its HTTP/2 session (grpc-js: "Received RST_STREAM with code 2 triggered by
 * internal client error: Session closed with error code 2"), seen against the fake lnd when many calls are in
 * flight at once (bench/README.md); other lnd failures (unreachable, refusals) are not retried within a run.
 */
function sessionLost(err: unknown): boolean {
  for (let x = err, i = 0; x && i < 4; x = (x as { cause?: unknown }).cause, i++) {
    if (x instanceof LndError && /RST_STREAM|Session closed/i.test(`${x.details} ${x.message}`)) return true;
  }
  return false;
}

async function reload(c: Ctx, e: Eval): Promise<LoopInSwap> {
  const s = await c.store.getSwap(e.swap.swapHash);
  if (!s) {
    throw new LoopkitError("loopin_not_found", `loop-in ${e.swap.swapHashHex} vanished from the database`);
  }
  e.swap = s;
  return s;
}

async function move(
  c: Ctx,
  e: Eval,
  events: Parameters<LoopInSwapStore["transition"]>[2],
  opts: Parameters<LoopInSwapStore["transition"]>[3],
  action: string,
): Promise<void> {
  await c.store.transition(e.swap.swapHash, e.swap.state, events, opts);
  e.actions.push(action);
  await reload(c, e);
}

/** Advances one swap as far as this run's facts allow (each step its own transaction). */
async function step(c: Ctx, e: Eval): Promise<void> {
  for (let guard = 0; guard < 8; guard++) {
    if (guard > 0 && c.deps.signal?.aborted) return; // interrupted: stop after the current step
    const s = e.swap;
    const before = `${s.state}|${s.updatedAt.getTime()}`;
    switch (s.state) {
      case "InitHtlcTx":
      case "SignHtlcTx":
        if (!(await recoverInitiation(c, e))) return;
        break;
      case "UnlockDeposits":
        await unlock(c, e);
        break;
      case "MonitorInvoiceAndHtlcTx":
        await monitor(c, e);
        break;
      case "PaymentReceived":
        await succeed(c, e, "stored PaymentReceived");
        break;
      case "Failed":
        if (!s.armedAt || s.watchEndedAt) return;
        await watchFailed(c, e);
        break;
      case "SweepHtlcTimeout":
        await sweepTimeout(c, e); // stores and publishes: nothing more to do in this run
        return;
      case "MonitorHtlcTimeoutSweep":
        await followTimeoutSweep(c, e);
        break;
      default:
        return;
    }
    if (`${e.swap.state}|${e.swap.updatedAt.getTime()}` === before) return;
    if (e.swap.state === s.state && s.state !== "InitHtlcTx" && s.state !== "SignHtlcTx") return;
  }
}

/** `InitHtlcTx` / `SignHtlcTx` left by a dead initiation; false when the owner is alive (skip). */
async function recoverInitiation(c: Ctx, e: Eval): Promise<boolean> {
  const s = e.swap;
  const alive = (c.deps.ownerAlive ?? defaultOwnerAlive)(
    s.owner,
    c.now().getTime() - s.initiationTime.getTime(),
  );
  if (alive) return false;
  if (s.armedAt) {
    if (s.state === "SignHtlcTx") {
      await move(
        c,
        e,
        "OnHtlcTxSigned",
        { reason: "armed: resumed in the monitor state (review §1.1)" },
        "resumed armed swap: monitoring",
      );
      return true;
    }
    // Armed in InitHtlcTx cannot be written by initiate.ts; treat like SignHtlcTx through the table's path.
    await move(
      c,
      e,
      ["OnHtlcInitiated", "OnHtlcTxSigned"],
      { reason: "armed: resumed in the monitor state" },
      "resumed armed swap: monitoring",
    );
    return true;
  }
  if (s.swapInvoice !== null || s.state === "SignHtlcTx") {
    // The server may know the swap: tell it we abandon it (only the swap hash; best effort).
    try {
      const server = await openServer(c);
      await server.pushStaticAddressHtlcSigs({ swapHash: s.swapHash });
      e.actions.push("abandon push sent");
    } catch (err) {
      e.actions.push(`abandon push failed (${(err as Error).message})`);
    }
  }
  await move(
    c,
    e,
    "OnRecover",
    { reason: "the initiating process is gone; unwinding (spec §2.5)" },
    "initiation gone: unlocking deposits",
  );
  return true;
}

/** Cancels the invoice and reads it back (review §1.7). */
async function cancelAcknowledged(c: Ctx, s: LoopInSwap): Promise<"canceled" | "settled"> {
  if (s.invoiceCanceledAt) return "canceled";
  // Any other cancel error is not an answer about the invoice: lnd's state decides (read back below), so an
  // unmapped text (a canceled, or settled, invoice worded differently by another lnd version) is not retried for ever.
  let cancelError: unknown = null;
  try {
    await c.deps.lnd.cancelInvoice(s.swapHash);
  } catch (err) {
    if (err instanceof LndError && err.code === "lnd_invoice_settled") return "settled";
    if (!(err instanceof LndError && err.code === "lnd_invoice_not_found")) cancelError = err;
  }
  let inv;
  try {
    inv = await c.deps.lnd.lookupInvoice(s.swapHash);
  } catch (err) {
    if (cancelError) {
      throw retryable(cancelError, "lnd CancelInvoice (not acknowledged: deposits stay locked)");
    }
    throw retryable(err, "lnd LookupInvoice after the cancel");
  }
  if (inv === null || inv.state === "CANCELED") return "canceled";
  if (inv.state === "SETTLED") return "settled";
  if (cancelError) throw retryable(cancelError, "lnd CancelInvoice (not acknowledged: deposits stay locked)");
  throw new LoopkitError(
    "loopin_cancel_unacknowledged",
    `lnd still reports the invoice ${inv.state} after CancelInvoice; deposits stay locked, the next run retries`,
    ExitCode.TempFail,
  );
}

/**
 * The invoice is SETTLED: `PaymentReceived → Succeeded` with every deposit `LoopedIn`, one transaction. A deposit
 * that cannot become `LoopedIn` (e.g. swept through its expiry path meanwhile) leaves the deposits as they are
 * and ends in Loop's `SucceededTransitioningFailed` (final: the payment was received), naming the cause.
 */
async function succeed(c: Ctx, e: Eval, from: string): Promise<void> {
  const from0 = e.swap.state;
  const events = from0 === "PaymentReceived"
    ? ["OnSucceeded" as const]
    : ["OnPaymentReceived" as const, "OnSucceeded" as const];
  try {
    await move(c, e, events, {
      depositEvent: "OnLoopedIn",
      reason: `invoice settled (${from})`,
      set: { invoiceState: "SETTLED", invoiceCheckedAt: c.now() },
    }, "invoice settled: succeeded, deposits LoopedIn");
  } catch (err) {
    if (!(err instanceof LoopkitError && err.code === "loopin_deposit_state")) throw err;
    const failEvents = from0 === "PaymentReceived"
      ? ["OnError" as const]
      : ["OnPaymentReceived" as const, "OnError" as const];
    // The payment was received: every deposit that can become LoopedIn does (in the same transaction), so that
    // no expiry sweep of `deposits sync` takes back a LoopingIn deposit the server paid for; the ones that
    // cannot (named in the reason) stay as they are.
    await move(c, e, failEvents, {
      depositEvent: "OnLoopedIn",
      partialDeposits: true,
      reason: `invoice settled (${from}) but not every deposit can be finalised: ${err.message}`,
      set: { invoiceState: "SETTLED", invoiceCheckedAt: c.now() },
    }, "invoice settled; deposits not finalised: SucceededTransitioningFailed");
  }
}

async function unlock(c: Ctx, e: Eval): Promise<void> {
  const s = e.swap;
  if (s.armedAt) {
    const conf = await confirmedHtlc(c, s);
    if (conf && await cancelOrSettle(c, e) === "canceled") {
      await toSweep(c, e, conf);
      return;
    }
    if (e.swap.state !== "UnlockDeposits") return;
  }
  const r = await cancelAcknowledged(c, e.swap);
  if (r === "settled") {
    await succeed(c, e, "lnd refused the cancel");
    return;
  }
  if (await held(c, e)) {
    await recordCanceled(c, e); // the acknowledged cancel is a fact of its own; the deposits stay locked
    return;
  }
  await move(c, e, "OnError", {
    releaseDeposits: true,
    reason: e.swap.lastError ?? "unlocking deposits",
    set: { invoiceCanceledAt: e.swap.invoiceCanceledAt ?? c.now(), invoiceState: "CANCELED" },
  }, "invoice cancel acknowledged: deposits released, Failed");
}

/** Cancel acknowledged ⇒ "canceled" (recorded); SETTLED ⇒ the swap succeeds here, "settled". */
async function cancelOrSettle(c: Ctx, e: Eval): Promise<"canceled" | "settled"> {
  const r = await cancelAcknowledged(c, e.swap);
  if (r === "settled") {
    await succeed(c, e, "lnd refused the cancel");
    return r;
  }
  await recordCanceled(c, e);
  return r;
}

/** Stores the acknowledged invoice cancel (once), with a history row. */
async function recordCanceled(c: Ctx, e: Eval): Promise<void> {
  if (e.swap.invoiceCanceledAt) return;
  await c.store.update(e.swap.swapHash, { invoiceCanceledAt: c.now(), invoiceState: "CANCELED" }, {
    reason: "invoice cancel acknowledged by lnd",
  });
  e.actions.push("invoice canceled");
  await reload(c, e);
}

async function monitor(c: Ctx, e: Eval): Promise<void> {
  const s = e.swap;
  const now = c.now();
  // (a) Settlement wins.
  let inv;
  try {
    inv = await c.deps.lnd.lookupInvoice(s.swapHash);
  } catch (err) {
    throw retryable(err, "lnd LookupInvoice");
  }
  if (inv?.state === "SETTLED") {
    await succeed(c, e, "LookupInvoice");
    return;
  }
  // Not written on its own: a run that stops on an error must leave the row as it was (review §1.8).
  const invState = inv === null ? "NOT_FOUND" : inv.state;
  const canceledOrGone = invState === "CANCELED" || invState === "NOT_FOUND";
  // The chain: every HTLC variant, before anything is released (review §1.2).
  const conf = s.armedAt ? await confirmedHtlc(c, e.swap) : null;
  const cltvReached = s.htlcExpiry !== null && c.tip - 1 >= s.htlcExpiry;
  // (b) Rejection after signing: like a deadline, but Failed (still watched).
  if (e.swap.riskDecision === "rejected") {
    if (await cancelOrSettle(c, e) === "settled") return;
    if (conf) return await toSweep(c, e, conf);
    if (await held(c, e)) return;
    await move(c, e, ["OnError", "OnError"], {
      releaseDeposits: true,
      reason:
        "server rejected the confirmation risk; invoice canceled, deposits released, HTLC still watched",
    }, "risk rejected: deposits released, Failed (watched)");
    return;
  }
  // (c) Arm the deadline from a persisted start.
  if (!e.swap.paymentDeadlineStartedAt && !canceledOrGone && !e.swap.invoiceCanceledAt) {
    let start: Date | null = null;
    let source: "risk_accepted" | "legacy_confirmations" | null = null;
    if (e.swap.riskDecision === "accepted" && e.swap.riskDecisionAt) {
      start = e.swap.riskDecisionAt;
      source = "risk_accepted";
    } else if (legacyRuleHolds(e.swap, c.tip)) {
      start = now;
      source = "legacy_confirmations";
    }
    if (start && source) {
      await c.store.update(s.swapHash, { paymentDeadlineStartedAt: start, paymentDeadlineSource: source }, {
        expect: "MonitorInvoiceAndHtlcTx",
        reason: `payment deadline started (${source})`,
      });
      e.actions.push(`payment deadline started (${source})`);
      await reload(c, e);
    }
  }
  // (d) Deadline passed: cancel, release; state stays (the server may still publish an HTLC).
  const deadline = deadlineOf(e.swap);
  if (deadline && now.getTime() >= deadline.getTime() && !e.swap.depositsReleasedAt) {
    if (await cancelOrSettle(c, e) === "settled") return;
    if (conf) return await toSweep(c, e, conf);
    if (await held(c, e)) return;
    await move(c, e, "OnRecover", {
      releaseDeposits: true,
      reason: "payment deadline passed; invoice canceled, deposits released, HTLC still watched",
    }, "payment deadline passed: deposits released");
  }
  // (e) An HTLC variant confirmed with the cancel acknowledged (or canceled in lnd).
  if (conf && (e.swap.invoiceCanceledAt || canceledOrGone || cltvReached)) {
    if (await cancelOrSettle(c, e) === "settled") return;
    return await toSweep(c, e, conf);
  }
  // (f) CLTV reached.
  if (cltvReached) {
    if (await cancelOrSettle(c, e) === "settled") return;
    if (await held(c, e)) return;
    await move(c, e, "OnSwapTimedOut", {
      releaseDeposits: true,
      reason: `HTLC CLTV ${s.htlcExpiry} reached with no HTLC confirmed; HTLC still watched`,
    }, "CLTV reached: deposits released, Failed (watched)");
  }
}

/** spec §3.9 legacy rule: every deposit confirmed and `tip ≥ max(conf heights) + 6 − 1`. */
export function legacyRuleHolds(s: Pick<LoopInSwap, "deposits">, tip: number): boolean {
  if (!s.deposits.length || s.deposits.some((d) => d.confirmationHeight <= 0)) return false;
  const maxConf = Math.max(...s.deposits.map((d) => d.confirmationHeight));
  return tip >= maxConf + LEGACY_MIN_CONFS - 1;
}

/** The payment deadline: start + `payment_timeout_seconds` (0 → 60 s), or null when not armed. */
export function deadlineOf(
  s: Pick<LoopInSwap, "paymentDeadlineStartedAt" | "paymentTimeoutSeconds">,
): Date | null {
  if (!s.paymentDeadlineStartedAt) return null;
  const sec = s.paymentTimeoutSeconds || DEFAULT_PAYMENT_TIMEOUT_SEC;
  return new Date(s.paymentDeadlineStartedAt.getTime() + sec * 1000);
}

/** The HTLC script and P2WSH pkScript of a swap whose server parameters are stored. */
function htlcScripts(s: LoopInSwap): { script: Uint8Array; pkScript: Uint8Array } | null {
  if (!s.htlcServerPubkey || s.htlcExpiry === null) return null;
  const script = htlcV2Script({
    senderPubkey: s.htlcKey.rawKeyBytes,
    receiverPubkey: s.htlcServerPubkey,
    swapHash: s.swapHash,
    cltvExpiry: s.htlcExpiry,
  });
  return { script, pkScript: htlcP2wshPkScript(script) };
}

/** What one run saw of a swap's three HTLC variants on chain (by txid, review §1.11). */
interface HtlcChain {
  /** The first variant (standard, high, extreme) with ≥ 3 confirmations, or null. */
  deep: ConfirmedHtlc | null;
  /** Every variant lnd reported confirmed within the window, at any depth. */
  seen: ConfirmedHtlc[];
}

/** Confirmations of a transaction confirmed at `height` when the tip is `tip`. */
const depthAt = (tip: number, height: number) => tip - height + 1;

/**
 * Asks lnd for all three HTLC variants by txid, in parallel, each bounded by `chainCheckMs` (cached for the
 * run). A variant that lnd does not report within the window is not in `seen`: that absence is **not** a chain
 * fact (a loaded lnd may answer its historical rescan later), so nothing may be released on it alone
 * ({@linkcode releaseHold}).
 * @throws {LoopkitError} exit 75 when lnd refuses or is unreachable
 */
async function htlcChain(c: Ctx, s: LoopInSwap): Promise<HtlcChain> {
  const cached = c.htlcChecks.get(s.swapHashHex);
  if (cached !== undefined) return cached;
  const scripts = htlcScripts(s);
  if (!scripts || !s.htlcTxids) return { deep: null, seen: [] };
  const answers = await Promise.all(HTLC_VARIANTS.map(async (variant) => {
    try {
      const conf = await c.deps.lnd.registerConfirmation(
        s.htlcTxids![variant],
        scripts.pkScript,
        1,
        Math.max(1, s.initiationHeight),
        { timeoutMs: c.chainCheckMs },
      );
      return conf ? { variant, txid: s.htlcTxids![variant], height: conf.blockHeight } : null;
    } catch (err) {
      throw retryable(err, `lnd RegisterConfirmationsNtfn (HTLC ${variant})`);
    }
  }));
  const seen = answers.filter((a) => a !== null);
  const deep = seen.find((a) => depthAt(c.tip, a.height) >= HTLC_CONFIRMATIONS) ?? null;
  const chain = { deep, seen };
  c.htlcChecks.set(s.swapHashHex, chain);
  return chain;
}

/**
 * The HTLC variant with ≥ 3 confirmations, by txid (review §1.11): the stored one once a swap is in
 * `SweepHtlcTimeout` or later (re-checked where the sweep is built and followed: {@linkcode recheckHtlc}),
 * else this run's answer ({@linkcode htlcChain}).
 */
async function confirmedHtlc(c: Ctx, s: LoopInSwap): Promise<ConfirmedHtlc | null> {
  if (s.confirmedHtlc) return s.confirmedHtlc;
  return (await htlcChain(c, s)).deep;
}

/**
 * The definite chain fact an armed swap's deposits are released on (review §1.1–1.3, §1.8): lnd's wallet lists
 * every deposit outpoint as unspent (`ListUnspent`, unconfirmed included: an output spent by a transaction in the
 * mempool that the wallet knows is not listed), a request/response answer, unlike the bounded confirmation
 * streams of {@linkcode htlcChain}. Called after the caller found no HTLC variant with 3 confirmations.
 *
 * - not armed, or the deposits already released ⇒ null (no signatures: no HTLC can exist);
 * - an HTLC variant seen confirmed (1–2 blocks) ⇒ a hold: the deposits are in that HTLC, nothing is released,
 *   and the swap goes to `SweepHtlcTimeout` once it has 3 (returns the reason, the run reports it);
 * - every deposit listed unspent ⇒ null (release), once lnd reports `synced_to_chain` (else ambiguous);
 * - a deposit not listed: its spend is asked (bounded); spent by an HTLC variant ⇒ a hold; one of them spent in a
 *   block by another transaction ⇒ null, whatever lnd says of the others (no HTLC variant can confirm any more:
 *   each spends every deposit; the swap stays watched until that spend is buried, {@linkcode WATCH_END_CONFIRMATIONS});
 * - otherwise (a spend in the mempool, or lnd answered no query in time) ambiguous ⇒ throws.
 *
 * @returns null when the release may go ahead; else why the deposits stay locked (no error)
 * @throws {LoopkitError} `loopin_release_ambiguous` (exit 75) naming the outpoints: nothing is written, the
 *   deposits stay locked and the next run checks again; lnd errors as exit 75
 */
async function releaseHold(c: Ctx, s: LoopInSwap): Promise<string | null> {
  if (!s.armedAt || s.depositsReleasedAt) return null;
  const chain = await htlcChain(c, s);
  const shallow = chain.deep ?? chain.seen[0];
  if (shallow) {
    return `HTLC ${shallow.variant} ${shallow.txid} confirmed at ${shallow.height} ` +
      `(${depthAt(c.tip, shallow.height)} of ${HTLC_CONFIRMATIONS} confirmations): deposits stay locked, ` +
      `swept through the timeout path once it has ${HTLC_CONFIRMATIONS}`;
  }
  const pkScripts = [...new Map(s.deposits.map((d) => [hex.encode(d.pkScript), d.pkScript])).values()];
  let utxos;
  try {
    try {
      utxos = await c.deps.lnd.listUnspent(0, 0, { account: IMPORTED_ACCOUNT, pkScripts });
    } catch (err) {
      if (!isAccountFilterRefused(err)) throw err;
      utxos = await c.deps.lnd.listUnspent(0, 0, { pkScripts });
    }
  } catch (err) {
    throw retryable(err, "lnd ListUnspent (deposits stay locked)");
  }
  const unspent = new Set(utxos.map((u) => `${u.txid}:${u.vout}`));
  const missing = s.deposits.filter((d) => !unspent.has(d.outpoint));
  if (!missing.length) {
    if (c.synced) return null;
    // A wallet still catching up may list an output a recent block spent.
    throw new LoopkitError(
      "loopin_release_ambiguous",
      `lnd reports it is not synced to the chain (GetInfo synced_to_chain false): its wallet may not have seen a ` +
        `recent block spending the deposits; nothing released, deposits stay locked; the next run checks again`,
      ExitCode.TempFail,
    );
  }
  const htlcTxids = new Map(s.htlcTxids ? HTLC_VARIANTS.map((v) => [s.htlcTxids![v], v]) : []);
  const spends = await Promise.all(missing.map(async (d) => {
    try {
      return await c.deps.lnd.registerSpend(
        { txid: d.txid, vout: d.vout },
        d.pkScript,
        Math.max(1, d.confirmationHeight || s.initiationHeight),
        { timeoutMs: c.chainCheckMs },
      );
    } catch (err) {
      throw retryable(err, `lnd RegisterSpendNtfn (${d.outpoint})`);
    }
  }));
  const byHtlc = spends.find((x) => x && htlcTxids.has(x.spendingTxid));
  if (byHtlc) {
    return `deposit spent by HTLC ${htlcTxids.get(byHtlc.spendingTxid)} ${byHtlc.spendingTxid}` +
      `${
        byHtlc.spendingHeight > 0 ? ` at ${byHtlc.spendingHeight}` : " (unconfirmed)"
      }: deposits stay locked, ` +
      `swept through the timeout path once it has ${HTLC_CONFIRMATIONS} confirmations`;
  }
  // One deposit spent in a block by a transaction that is no HTLC variant is enough: every variant spends every
  // deposit, so none can confirm any more (the swap stays watched until that spend is buried). The other missing
  // deposits need no answer (one may be spent in the mempool, or its unconfirmed funding transaction replaced).
  if (spends.some((x) => x && x.spendingHeight > 0)) return null;
  const unknown = missing;
  throw new LoopkitError(
    "loopin_release_ambiguous",
    `deposit${unknown.length > 1 ? "s" : ""} ${
      unknown.map((d) => d.outpoint).join(", ")
    } not listed unspent by ` +
      `lnd's wallet, and lnd reported neither an HTLC variant confirmed nor a spend within ${c.chainCheckMs} ms ` +
      `(an HTLC may be in the mempool, or lnd is slow to answer): nothing released, deposits stay locked; ` +
      `the next run checks again`,
    ExitCode.TempFail,
  );
}

/** {@linkcode releaseHold} for the evaluation: true (reported in the run's `waitingFor`) when the deposits stay. */
async function held(c: Ctx, e: Eval): Promise<boolean> {
  const why = await releaseHold(c, e.swap);
  if (why === null) return false;
  e.waiting = why;
  return true;
}

async function toSweep(
  c: Ctx,
  e: Eval,
  conf: { variant: HtlcVariant; txid: string; height: number },
): Promise<void> {
  await move(c, e, "OnSweepHtlcTimeout", {
    depositEvent: "OnSweepingHtlcTimeout",
    set: { confirmedHtlc: conf },
    reason: `HTLC ${conf.variant} ${conf.txid} confirmed at height ${conf.height}; sweeping it at the CLTV`,
  }, `HTLC ${conf.variant} confirmed: SweepHtlcTimeout`);
}

/** Confirmations of a foreign spend of a deposit before the armed watch of its swap ends. */
export const WATCH_END_CONFIRMATIONS = 6;

/** An armed `Failed` swap: an HTLC variant confirmed ⇒ sweep; a deposit spent elsewhere ⇒ the watch ends. */
async function watchFailed(c: Ctx, e: Eval): Promise<void> {
  const conf = await confirmedHtlc(c, e.swap);
  if (conf) {
    if (await cancelOrSettle(c, e) === "settled") return;
    await toSweep(c, e, conf);
    return;
  }
  const htlcTxids = new Set(e.swap.htlcTxids ? Object.values(e.swap.htlcTxids) : []);
  const spends = await Promise.all(e.swap.deposits.map(async (d) => {
    try {
      return {
        d,
        spend: await c.deps.lnd.registerSpend(
          { txid: d.txid, vout: d.vout },
          d.pkScript,
          Math.max(1, d.confirmationHeight || e.swap.initiationHeight),
          { timeoutMs: c.chainCheckMs },
        ),
      };
    } catch (err) {
      throw retryable(err, `lnd RegisterSpendNtfn (${d.outpoint})`);
    }
  }));
  // A foreign spend ends the watch for good only once it is buried: a reorg could still bring back the deposit,
  // and with it the server's HTLC signatures (review §1.1: only a chain fact ends the watch).
  const other = spends.find((x) =>
    x.spend && x.spend.spendingHeight > 0 && !htlcTxids.has(x.spend.spendingTxid) &&
    c.tip - x.spend.spendingHeight + 1 >= WATCH_END_CONFIRMATIONS
  );
  if (other) {
    const txid = other.spend!.spendingTxid;
    await c.store.update(e.swap.swapHash, {
      watchEnded: { at: c.now(), reason: `deposit ${other.d.outpoint} spent by ${txid}`, txid },
    }, { reason: `watch ended: deposit ${other.d.outpoint} spent by ${txid} (not an HTLC variant)` });
    e.actions.push(`watch ended: deposit ${other.d.outpoint} spent by ${txid}`);
    await reload(c, e);
  }
}

/** The confirmed variant's unsigned transaction: stored bytes, or rebuilt from the stored parameters. */
function confirmedHtlcTx(c: Ctx, s: LoopInSwap, variant: HtlcVariant, htlcPkScript: Uint8Array): Uint8Array {
  const stored = s.htlcTxs[variant];
  if (stored) return stored;
  const address = c.addresses.get(s.staticAddressId);
  if (!address || !s.feeRates) {
    throw new LoopkitError(
      "loopin_htlc_tx_missing",
      `HTLC ${variant} transaction of ${s.swapHashHex} cannot be rebuilt`,
    );
  }
  return buildHtlcTx({
    deposits: s.deposits.map((d) => ({ txid: d.txid, vout: d.vout, valueSat: d.amountSat })),
    swapAmountSat: s.swapAmountSat,
    changeSat: s.changeSat,
    feeRateSatPerKw: s.feeRates[variant],
    htlcPkScript,
    staticPkScript: address.pkScript,
    maxFeeSat: htlcFeeCapSat(variant, s.swapAmountSat),
  }).tx;
}

/** Most of the HTLC value a timeout sweep may pay as fee, in percent (the standard HTLC fee guard's 20 %). */
export const TIMEOUT_SWEEP_FEE_CAP_PERCENT = 20;

/**
 * The highest fee the HTLC timeout sweep may pay: {@linkcode TIMEOUT_SWEEP_FEE_CAP_PERCENT} % of the HTLC output,
 * rounded down. Above it `loopin sync` signs nothing and retries on the next run (exit 75), and a fee bump is not
 * made: after the acknowledged invoice cancel only the client can spend the HTLC, so waiting costs nothing
 * (review §5).
 * @param htlcValueSat value of the confirmed HTLC variant's output 0, sat
 * @returns the cap, sat
 */
export function timeoutSweepFeeCapSat(htlcValueSat: bigint): bigint {
  return htlcValueSat * BigInt(TIMEOUT_SWEEP_FEE_CAP_PERCENT) / 100n;
}

/**
 * Blocks a stored timeout sweep may stay unconfirmed, counted from the height it was built at (its nLockTime, the
 * tip of that run; it is published in the same run), before `loopin sync` rebuilds it at lnd's current estimate
 * (fsm.md addition 4). Six blocks: an hour, twice the sweep's confirmation target
 * ({@linkcode TIMEOUT_SWEEP_CONF_TARGET}); a rebuilt sweep waits six blocks again.
 */
export const TIMEOUT_SWEEP_BUMP_BLOCKS = 6;

/**
 * The extra fee a replacement must pay over the sweep it replaces: 1 sat/vB of its own size (BIP-125 rule 4 at
 * Bitcoin Core's default incremental relay fee), sat.
 */
function bumpIncrementSat(next: { weight: number }): bigint {
  return BigInt(Math.ceil(next.weight / 4));
}

/** True when `next` pays at least the relay increment more than `oldFeeSat` (a replacement nodes accept). */
function bumpWorthIt(oldFeeSat: bigint, next: { feeSat: bigint; weight: number }): boolean {
  return next.feeSat >= oldFeeSat + bumpIncrementSat(next);
}

/** True when the raw transaction `tx` spends output `vout` of `txid` (display hex). */
function spendsOutput(tx: Uint8Array, txid: string, vout: number): boolean {
  try {
    return RawTx.decode(tx).inputs.some((i) => hex.encode(i.txid) === txid && i.index === vout);
  } catch {
    return false;
  }
}

/** The fee of a one-input sweep of `inputValueSat`: the input value less its outputs, sat. */
function sweepFeeOf(tx: Uint8Array, inputValueSat: bigint): bigint {
  return inputValueSat - RawTx.decode(tx).outputs.reduce((a, o) => a + o.amount, 0n);
}

/** lnd's fee estimate for the timeout sweep, asked once per run (the fee bump and the rebuild use the same). */
async function sweepFeeRate(c: Ctx): Promise<bigint> {
  if (c.sweepFeeRate === undefined) {
    try {
      c.sweepFeeRate = await c.deps.lnd.estimateFeeSatPerKw(TIMEOUT_SWEEP_CONF_TARGET);
    } catch (err) {
      throw retryable(err, "lnd EstimateFee");
    }
  }
  return c.sweepFeeRate;
}

/**
 * The confirmed variant's HTLC output (checked against its stored txid and the HTLC script) and an unsigned
 * timeout sweep of it at this run's estimate and tip, with the fee cap.
 * @throws {LoopkitError} `loopin_htlc_tx_mismatch`, `loopin_htlc_tx_missing`; lnd errors as exit 75
 */
async function sweepCandidate(
  c: Ctx,
  s: LoopInSwap,
  conf: ConfirmedHtlc,
  scripts: { script: Uint8Array; pkScript: Uint8Array },
): Promise<
  { htlcValueSat: bigint; sweep: ReturnType<typeof buildHtlcTimeoutSweep>; rate: bigint; capSat: bigint }
> {
  const htlcTx = confirmedHtlcTx(c, s, conf.variant, scripts.pkScript);
  const decoded = RawTx.decode(htlcTx);
  if (txidOfRaw(htlcTx) !== conf.txid) {
    throw new LoopkitError(
      "loopin_htlc_tx_mismatch",
      `stored HTLC ${conf.variant} transaction is not ${conf.txid}`,
    );
  }
  const out0 = decoded.outputs[0];
  if (!out0 || !equalBytes(out0.script, scripts.pkScript)) {
    throw new LoopkitError(
      "loopin_htlc_tx_mismatch",
      `HTLC ${conf.variant} output 0 does not pay the HTLC script`,
    );
  }
  const rate = await sweepFeeRate(c);
  const sweep = buildHtlcTimeoutSweep({
    htlcTxid: conf.txid,
    htlcVout: 0,
    htlcValueSat: out0.amount,
    htlcScript: scripts.script,
    htlcPkScript: scripts.pkScript,
    cltvExpiry: s.htlcExpiry!,
    lockTime: c.tip,
    sweepPkScript: s.htlcTimeoutSweepPkScript!,
    feeRateSatPerKw: rate,
  });
  return { htlcValueSat: out0.amount, sweep, rate, capSat: timeoutSweepFeeCapSat(out0.amount) };
}

/** Builds, signs, verifies and stores the timeout sweep at the CLTV, then publishes the stored bytes. */
async function sweepTimeout(c: Ctx, e: Eval): Promise<void> {
  const known = e.swap.confirmedHtlc ?? await confirmedHtlc(c, e.swap);
  const scripts = htlcScripts(e.swap);
  if (!known || !scripts || e.swap.htlcExpiry === null || !e.swap.htlcTimeoutSweepPkScript) {
    throw new LoopkitError(
      "loopin_sweep_unknown_htlc",
      `loop-in ${e.swap.swapHashHex}: no confirmed HTLC variant known`,
    );
  }
  if (c.tip < e.swap.htlcExpiry) return; // nothing is published before the CLTV
  // The stored variant is a chain fact of an earlier run: re-checked before anything is signed for it.
  const conf = await recheckHtlc(c, e);
  if (!conf) return;
  const s = e.swap;
  const { htlcValueSat, sweep, rate, capSat } = await sweepCandidate(c, s, conf, scripts);
  // The stored sweep is republished unchanged until it confirms (or a fee bump replaces it), so a fee spike (or a
  // broken estimate) must not be frozen into it. Waiting is free here: the sweep is only built after lnd
  // acknowledged the invoice cancel, so the preimage can never be revealed and nobody else can spend the HTLC
  // output (review §5: cap the sweep fee).
  if (sweep.feeSat > capSat) {
    throw new LoopkitError(
      "loopin_sweep_fee_too_high",
      `loop-in ${s.swapHashHex}: timeout sweep fee ${sweep.feeSat} sat at ${rate} sat/kw is above the cap ` +
        `${capSat} sat (${TIMEOUT_SWEEP_FEE_CAP_PERCENT} % of the HTLC's ${htlcValueSat} sat); nothing signed, ` +
        `the next run tries again`,
      ExitCode.TempFail,
    );
  }
  // A stored sweep of this same HTLC output (a fee bump that a crash interrupted, addition 4) is kept unless the
  // new one pays more by the relay increment: a replacement paying less would never be accepted.
  const old = s.timeoutSweep;
  if (old && spendsOutput(old.tx, conf.txid, 0)) {
    const oldFee = old.feeSat ?? sweepFeeOf(old.tx, htlcValueSat);
    if (!bumpWorthIt(oldFee, sweep)) {
      await move(c, e, "OnHtlcTimeoutSweepPublished", {
        set: { timeoutSweep: { tx: old.tx, txid: old.txid, feeSat: oldFee } },
        reason: `timeout sweep ${old.txid} kept (fee ${oldFee} sat): a rebuild at ${rate} sat/kw would pay ` +
          `${sweep.feeSat} sat, not ${bumpIncrementSat(sweep)} sat more`,
      }, `timeout sweep ${old.txid} kept`);
      await publishSweep(c, e);
      return;
    }
  }
  let sigs: Uint8Array[];
  try {
    sigs = await c.deps.lnd.signOutputRaw(sweep.tx, [{
      keyDesc: { keyLocator: s.htlcKey.keyLocator, rawKeyBytes: s.htlcKey.rawKeyBytes },
      witnessScript: scripts.script,
      output: { valueSat: htlcValueSat, pkScript: scripts.pkScript },
      sighash: SIGHASH_ALL,
      inputIndex: 0,
      signMethod: "SIGN_METHOD_WITNESS_V0",
    }], [{ valueSat: htlcValueSat, pkScript: scripts.pkScript }]);
  } catch (err) {
    throw retryable(err, "lnd SignOutputRaw (HTLC timeout sweep)");
  }
  if (sigs.length !== 1) {
    throw new LoopkitError("lnd_bad_answer", `lnd returned ${sigs.length} signatures for one input`);
  }
  const signed = finalizeHtlcTimeoutSweep(
    sweep.tx,
    sigs[0],
    s.htlcKey.rawKeyBytes,
    scripts.script,
    htlcValueSat,
  );
  await move(c, e, "OnHtlcTimeoutSweepPublished", {
    set: { timeoutSweep: { tx: signed, txid: sweep.txid, feeSat: sweep.feeSat } },
    reason: `timeout sweep ${sweep.txid} stored (fee ${sweep.feeSat} sat)`,
  }, `timeout sweep ${sweep.txid} signed and stored`);
  await publishSweep(c, e);
}

/**
 * Re-checks the stored confirmed HTLC variant against this run's chain answers ({@linkcode htlcChain}): a reorg
 * deeper than {@linkcode HTLC_CONFIRMATIONS} blocks may have removed it, or confirmed another variant instead.
 *
 * - the stored txid has ≥ 3 confirmations ⇒ it (a changed height is stored, with a history row);
 * - another variant has ≥ 3 ⇒ the swap switches to it: one store update with a history row naming both;
 * - a variant is seen at 1–2 confirmations ⇒ null, the run waits (no error; `waitingFor` says so);
 * - none seen ⇒ throws: nothing is signed or rebuilt.
 *
 * @returns the variant to sweep, or null to wait
 * @throws {LoopkitError} `loopin_htlc_not_confirmed` (exit 75); `loopin_state_changed` (exit 75) when another
 *   process moved the swap meanwhile; lnd errors as exit 75
 */
async function recheckHtlc(c: Ctx, e: Eval): Promise<ConfirmedHtlc | null> {
  const stored = e.swap.confirmedHtlc;
  const chain = await htlcChain(c, e.swap);
  if (!stored) return chain.deep;
  const now = chain.deep;
  if (now) {
    if (now.txid === stored.txid && now.height === stored.height) return now;
    const reason = now.txid === stored.txid
      ? `HTLC ${now.variant} ${now.txid} now confirmed at ${now.height} (stored: ${stored.height}; reorg)`
      : `HTLC ${stored.variant} ${stored.txid} (stored as confirmed at ${stored.height}) no longer has ` +
        `${HTLC_CONFIRMATIONS} confirmations; HTLC ${now.variant} ${now.txid} confirmed at ${now.height} ` +
        `instead (reorg): its output is swept`;
    const state = e.swap.state;
    if (!(await c.store.update(e.swap.swapHash, { confirmedHtlc: now }, { expect: state, reason }))) {
      throw swapChanged(e.swap.swapHash, state, (await reload(c, e)).state);
    }
    e.actions.push(reason);
    await reload(c, e);
    return now;
  }
  const shallow = chain.seen[0];
  if (shallow) {
    e.waiting = `HTLC ${shallow.variant} ${shallow.txid} at ${depthAt(c.tip, shallow.height)} of ` +
      `${HTLC_CONFIRMATIONS} confirmations (stored: ${stored.variant} ${stored.txid} at ${stored.height}; a ` +
      `reorg): the timeout sweep is built once it has ${HTLC_CONFIRMATIONS}`;
    return null;
  }
  throw new LoopkitError(
    "loopin_htlc_not_confirmed",
    `loop-in ${e.swap.swapHashHex}: HTLC ${stored.variant} ${stored.txid} (stored as confirmed at ` +
      `${stored.height}) is not seen confirmed now, nor any other variant (a reorg deeper than ` +
      `${HTLC_CONFIRMATIONS} blocks, or lnd did not answer within ${c.chainCheckMs} ms): nothing signed; the ` +
      `next run checks again`,
    ExitCode.TempFail,
  );
}

async function publishSweep(c: Ctx, e: Eval): Promise<void> {
  const t = e.swap.timeoutSweep!;
  try {
    await c.deps.lnd.publishTransaction(t.tx, timeoutSweepLabel(e.swap.swapHashHex));
  } catch (err) {
    const details = err instanceof LndError ? err.details : String(err);
    const known = isAlreadyKnownPublishError(err) ||
      (/output already spent/i.test(details) && !/insufficient fee/i.test(details));
    if (!known) throw retryable(err, `publishing timeout sweep ${t.txid}`);
  }
  if (!t.publishedAt) {
    await c.store.update(e.swap.swapHash, { timeoutSweepPublishedAt: c.now() });
    await reload(c, e);
  }
  e.actions.push(`timeout sweep ${t.txid} published`);
}

/**
 * `MonitorHtlcTimeoutSweep`: the stored sweep with 3 confirmations ⇒ `HtlcTimeoutSwept`. Asked together: the
 * stored sweep's confirmation, the spend of the HTLC output (an earlier version of the sweep, replaced by a fee
 * bump, is recognised when it is the one that confirms: after the acknowledged cancel only loopkit's timeout path
 * can spend that output, and the spender is checked to pay the sweep address), and the three HTLC variants (a
 * reorg: {@linkcode recheckHtlc}). Unconfirmed ⇒ rebuilt for another variant that confirmed instead, or at a
 * higher fee {@linkcode TIMEOUT_SWEEP_BUMP_BLOCKS} blocks after it was built (fsm.md addition 4), else republished
 * unchanged.
 */
async function followTimeoutSweep(c: Ctx, e: Eval): Promise<void> {
  const s = e.swap;
  const t = s.timeoutSweep;
  const sweepPkScript = s.htlcTimeoutSweepPkScript;
  if (!t || !sweepPkScript) {
    throw new LoopkitError("loopin_sweep_missing", `loop-in ${s.swapHashHex} has no stored timeout sweep`);
  }
  const stored = s.confirmedHtlc;
  const scripts = htlcScripts(s);
  const hint = Math.max(1, stored?.height ?? s.initiationHeight);
  const [conf, spend, chain] = await Promise.all([
    c.deps.lnd.registerConfirmation(t.txid, sweepPkScript, 1, hint, { timeoutMs: c.chainCheckMs }).catch(
      (err) => {
        throw retryable(err, "lnd RegisterConfirmationsNtfn (timeout sweep)");
      },
    ),
    stored && scripts
      ? c.deps.lnd.registerSpend({ txid: stored.txid, vout: 0 }, scripts.pkScript, hint, {
        timeoutMs: c.chainCheckMs,
      }).catch((err) => {
        throw retryable(err, "lnd RegisterSpendNtfn (HTLC output)");
      })
      : Promise.resolve(null),
    htlcChain(c, s),
  ]);
  const depth = conf ? depthAt(c.tip, conf.blockHeight) : 0;
  if (conf && depth >= HTLC_CONFIRMATIONS) {
    await move(c, e, "OnHtlcTimeoutSwept", {
      depositEvent: "OnHtlcTimeoutSwept",
      set: { timeoutSweepConfirmedHeight: conf.blockHeight },
      reason: `timeout sweep ${t.txid} has ${depth} confirmations`,
    }, `timeout sweep confirmed: HtlcTimeoutSwept`);
    return;
  }
  if (conf) {
    e.actions.push(`timeout sweep ${t.txid} has ${depth} confirmation(s)`);
    return;
  }
  if (stored && spend && spend.spendingTxid !== t.txid && spend.spendingHeight > 0) {
    await earlierSweepConfirmed(c, e, stored, spend.spendingTxid, spend.spendingHeight);
    return;
  }
  // Not confirmed: is the HTLC output it spends still on chain (a reorg deeper than 3 blocks)?
  if (stored && chain.deep && chain.deep.txid !== stored.txid) {
    // Another variant confirmed instead: the stored sweep spends an output that is gone; rebuild (addition 4).
    const reason =
      `HTLC ${stored.variant} ${stored.txid} no longer has ${HTLC_CONFIRMATIONS} confirmations; ` +
      `HTLC ${chain.deep.variant} ${chain.deep.txid} confirmed at ${chain.deep.height} instead (reorg): ` +
      `timeout sweep ${t.txid} can never confirm, rebuilt for it`;
    await move(c, e, "OnSweepHtlcTimeout", { set: { confirmedHtlc: chain.deep }, reason }, reason);
    return;
  }
  if (stored && chain.deep?.txid !== stored.txid) {
    const seen = chain.seen.find((x) => x.txid === stored.txid);
    const note = `HTLC ${stored.variant} ${stored.txid} (stored as confirmed at ${stored.height}) is ` +
      (seen
        ? `at ${depthAt(c.tip, seen.height)} of ${HTLC_CONFIRMATIONS} confirmations now (a reorg)`
        : `not seen confirmed now (a reorg deeper than ${HTLC_CONFIRMATIONS} blocks, or lnd did not answer ` +
          `within ${c.chainCheckMs} ms)`) +
      `: timeout sweep ${t.txid} republished; lnd refuses it while that output is missing`;
    e.actions.push(note);
    e.waiting = note;
  } else if (stored && scripts && await feeBumped(c, e, stored, scripts)) {
    return; // now in SweepHtlcTimeout: the step loop builds, stores and publishes the replacement
  }
  await publishSweep(c, e); // republished unchanged
}

/**
 * Fee bump (fsm.md addition 4): the stored sweep is still unconfirmed {@linkcode TIMEOUT_SWEEP_BUMP_BLOCKS}
 * blocks after the height it was built at, and a sweep at lnd's current estimate pays at least the relay
 * increment more while staying within {@linkcode TIMEOUT_SWEEP_FEE_CAP_PERCENT} % ⇒ `→ SweepHtlcTimeout` (true);
 * the rebuild is signed and stored before it is published, like the first sweep. Otherwise false, with the
 * reason in `waitingFor`.
 */
async function feeBumped(
  c: Ctx,
  e: Eval,
  htlc: ConfirmedHtlc,
  scripts: { script: Uint8Array; pkScript: Uint8Array },
): Promise<boolean> {
  const t = e.swap.timeoutSweep!;
  let builtAt: number;
  try {
    builtAt = RawTx.decode(t.tx).lockTime;
  } catch {
    return false; // not a transaction we can read: republished as stored
  }
  const waited = c.tip - builtAt;
  if (waited < TIMEOUT_SWEEP_BUMP_BLOCKS) return false;
  const { htlcValueSat, sweep, rate, capSat } = await sweepCandidate(c, e.swap, htlc, scripts);
  const oldFee = t.feeSat ?? sweepFeeOf(t.tx, htlcValueSat);
  if (sweep.feeSat > capSat || !bumpWorthIt(oldFee, sweep)) {
    e.waiting =
      `${HTLC_CONFIRMATIONS} confirmations of timeout sweep ${t.txid} (fee ${oldFee} sat, unconfirmed ` +
      `${waited} blocks after it was built at ${builtAt}; lnd's estimate ${rate} sat/kw gives ${sweep.feeSat} ` +
      `sat: ${sweep.feeSat > capSat ? `above the cap ${capSat} sat` : "no higher fee worth a replacement"})`;
    return false;
  }
  const reason =
    `timeout sweep ${t.txid} (fee ${oldFee} sat) unconfirmed ${waited} blocks after it was built at ` +
    `${builtAt}: rebuilt at ${rate} sat/kw (fee ${sweep.feeSat} sat, cap ${capSat} sat)`;
  await move(c, e, "OnSweepHtlcTimeout", { reason }, `fee bump: ${reason}`);
  return true;
}

/**
 * The HTLC output is spent, in a block, by `txid`, not by the stored sweep: an earlier version of the timeout
 * sweep (replaced by a fee bump) confirmed. Its raw transaction is read from lnd and checked to pay the sweep
 * address; with 3 confirmations it becomes the stored sweep in the `HtlcTimeoutSwept` transaction.
 * @throws {LoopkitError} `loopin_htlc_spent_elsewhere` (exit 1) when the spender does not pay the sweep address;
 *   exit 75 when lnd does not give its raw transaction in time
 */
async function earlierSweepConfirmed(
  c: Ctx,
  e: Eval,
  htlc: ConfirmedHtlc,
  txid: string,
  height: number,
): Promise<void> {
  const s = e.swap;
  const depth = depthAt(c.tip, height);
  let raw: Uint8Array | undefined;
  try {
    raw = (await c.deps.lnd.registerConfirmation(txid, s.htlcTimeoutSweepPkScript!, 1, height, {
      timeoutMs: c.chainCheckMs,
    }))?.rawTx;
  } catch (err) {
    throw retryable(err, `lnd RegisterConfirmationsNtfn (${txid}, the HTLC output's spender)`);
  }
  let ours = false;
  try {
    ours = !!raw?.length && txidOfRaw(raw) === txid && spendsOutput(raw, htlc.txid, 0) &&
      RawTx.decode(raw).outputs.some((o) => equalBytes(o.script, s.htlcTimeoutSweepPkScript!));
  } catch {
    ours = false;
  }
  if (!raw?.length) {
    throw retryable(
      new Error(`lnd did not give the raw transaction ${txid} within ${c.chainCheckMs} ms`),
      `HTLC ${htlc.variant} output spent by ${txid} at ${height}`,
    );
  }
  if (!ours) {
    throw new LoopkitError(
      "loopin_htlc_spent_elsewhere",
      `loop-in ${s.swapHashHex}: the HTLC ${htlc.variant} output is spent by ${txid} at ${height}, which is not a ` +
        `timeout sweep to the swap's sweep address; nothing changed`,
    );
  }
  if (depth < HTLC_CONFIRMATIONS) {
    e.actions.push(`earlier timeout sweep ${txid} has ${depth} confirmation(s)`);
    e.waiting = `${HTLC_CONFIRMATIONS} confirmations of timeout sweep ${txid} (an earlier version of ` +
      `${s.timeoutSweep!.txid}, which it replaces)`;
    return;
  }
  const htlcValueSat =
    RawTx.decode(confirmedHtlcTx(c, s, htlc.variant, htlcScripts(s)!.pkScript)).outputs[0].amount;
  await move(c, e, "OnHtlcTimeoutSwept", {
    depositEvent: "OnHtlcTimeoutSwept",
    set: {
      timeoutSweep: { tx: raw, txid, feeSat: sweepFeeOf(raw, htlcValueSat) },
      timeoutSweepPublishedAt: s.timeoutSweep!.publishedAt,
      timeoutSweepConfirmedHeight: height,
    },
    reason: `timeout sweep ${txid} (an earlier version of ${
      s.timeoutSweep!.txid
    }) has ${depth} confirmations`,
  }, `earlier timeout sweep ${txid} confirmed: HtlcTimeoutSwept`);
}

/** One line: what the swap waits for (list/show and the sync report). */
export function waitingFor(s: LoopInSwap, tip: number | null, now: Date): string {
  switch (s.state) {
    case "InitHtlcTx":
    case "SignHtlcTx":
      return "the initiating process (or, if it is gone, the next sync to unwind it)";
    case "UnlockDeposits":
      return "lnd to acknowledge the invoice cancel, then the deposits are released";
    case "MonitorInvoiceAndHtlcTx": {
      if (s.depositsReleasedAt) {
        return `nothing but the chain: deposits released after the payment deadline; watching the HTLC until CLTV ${s.htlcExpiry}`;
      }
      if (s.invoiceCanceledAt) {
        return `the chain: invoice canceled, deposits locked until lnd's wallet lists them unspent or an HTLC variant ` +
          `has ${HTLC_CONFIRMATIONS} confirmations (then swept at CLTV ${s.htlcExpiry})`;
      }
      const d = deadlineOf(s);
      if (d) {
        const left = Math.max(0, Math.ceil((d.getTime() - now.getTime()) / 1000));
        return `the server's payment (deadline ${d.toISOString()}, ${left} s left)`;
      }
      return `the server's risk decision or payment (the deadline starts on acceptance or at ${LEGACY_MIN_CONFS} confirmations; CLTV ${s.htlcExpiry}${
        tip ? `, ${Math.max(0, (s.htlcExpiry ?? 0) - tip)} blocks away` : ""
      })`;
    }
    case "PaymentReceived":
      return "the next sync to finalise the deposits";
    case "SweepHtlcTimeout":
      return tip !== null && s.htlcExpiry !== null && tip < s.htlcExpiry
        ? `the CLTV height ${s.htlcExpiry} (${
          s.htlcExpiry - tip
        } blocks) to sweep HTLC ${s.confirmedHtlc?.txid}`
        : `the timeout sweep of HTLC ${s.confirmedHtlc?.txid} to be built and published`;
    case "MonitorHtlcTimeoutSweep":
      return `${HTLC_CONFIRMATIONS} confirmations of timeout sweep ${s.timeoutSweep?.txid}`;
    case "Failed":
      if (s.armedAt && !s.watchEndedAt) {
        return "nothing to do; the HTLC variants stay watched until the deposits are spent";
      }
      return "nothing (final)";
    case "Succeeded":
      return s.sweeplessSigned
        ? "nothing (final)"
        : "nothing (final); the server may ask to sweep the deposits";
    default:
      return "nothing (final)";
  }
}
