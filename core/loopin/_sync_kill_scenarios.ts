/**
 * The unhappy-path scenarios of sync_kill_test.ts's bounded `kill -9` test (issue 9 acceptance), shared by the
 * test and its child process `_sync_kill_step_child.ts`: each scenario stores a swap (the armed fixture
 * `armedSwap`, some set back to `SignHtlcTx` or moved to `UnlockDeposits`), then runs `syncLoopIns` once per phase,
 * each phase with its own tip, clock, chain facts and (optionally) server notifications.
 *
 * The lnd double is `FakeSyncLnd` with its state (tip, invoices, confirmations, published transactions, fee
 * estimate) kept in `lnd.json` beside the database and saved after every call, so that what lnd did before a
 * kill survives it, as a real lnd's would. A {@linkcode KillPlan} makes the run stop for good at one step: at
 * the k-th lnd call before lnd acts on it (the call never reached lnd), after lnd acted on it (the answer was
 * lost), inside the k-th database write transaction before it commits, or right after the k-th write
 * committed. A stopped run prints `BLOCKED <step>` and waits to be killed. Not part of the public surface.
 *
 * @module
 */
import { RawTx } from "@scure/btc-signer";
import { type Db, openDb } from "../db/db.ts";
import { listDeposits } from "../deposits/store.ts";
import type { InvoiceState } from "../../lnd/types.ts";
import { type LoopInSyncResult, type SyncLoopInLnd, syncLoopIns } from "./sync.ts";
import { type LoopInSwap, LoopInSwapStore } from "./store.ts";
import type { LoopInState } from "./types.ts";
import { txidOfRaw } from "./htlc_tx.ts";
import { isFinalLoopInState, isWatchedLoopIn } from "./fsm.ts";
import type { ServerNotification } from "../swapserver/client.ts";
import { armedSwap, FakeSyncLnd, FakeSyncServer, hexOf } from "./_sync_testing.ts";

/** Start of every scenario's clock. */
export const KILL_T0 = new Date("2026-01-02T00:00:00Z");

/** The lnd calls `loopin sync` makes ({@linkcode SyncLoopInLnd}). */
export const SYNC_LND_METHODS = [
  "getInfo",
  "lookupInvoice",
  "cancelInvoice",
  "registerConfirmation",
  "registerSpend",
  "listUnspent",
  "signOutputRaw",
  "publishTransaction",
  "estimateFeeSatPerKw",
  "muSig2CreateSession",
  "muSig2RegisterNonces",
  "muSig2Sign",
  "muSig2Cleanup",
] as const satisfies readonly (keyof SyncLoopInLnd)[];

/** Fails to compile when `SyncLoopInLnd` gains a method the list above lacks (it would go uncounted, unkilled). */
type UnlistedLndMethod = Exclude<keyof SyncLoopInLnd, typeof SYNC_LND_METHODS[number]>;
const _everyLndMethodListed: [UnlistedLndMethod] extends [never] ? true : UnlistedLndMethod = true;

/** lnd calls that change lnd's state: a kill may come before or after lnd acted on them. */
export const MUTATING_LND_METHODS: ReadonlySet<string> = new Set(["cancelInvoice", "publishTransaction"]);

/** lnd's state as saved in `lnd.json`. */
export interface LndSnapshot {
  tip: number;
  invoices: Record<string, InvoiceState | null>;
  confirmations: Record<string, number>;
  /** Raw transactions lnd accepted, hex, in order (a republish appends the same bytes again). */
  published: string[];
  feeRate: string;
  /** The server pays the invoice at the moment the cancel reaches lnd (lnd then refuses the cancel). */
  settleOnCancel: boolean;
  /** lnd's wallet outputs (ListUnspent: the release rule reads the deposits there), amounts as decimal sat. */
  utxos: { txid: string; vout: number; amountSat: string; pkScript: string; confirmations: number }[];
  /** Outpoints spent by an unconfirmed transaction (left out of ListUnspent). */
  mempoolSpent: string[];
}

/** One `syncLoopIns` run of a scenario with its chain facts. */
export interface KillPhase {
  name: string;
  /** The clock of this run, ms after {@linkcode KILL_T0}. */
  clockMs: number;
  /** Sets lnd's facts before the run (idempotent: a rerun of the phase applies it again). */
  apply(lnd: FakeSyncLnd, o: { rerun: boolean }): void;
  /**
   * The run listens (`--listen`) to a swap server that sends these notifications on every subscription (as the
   * server re-sends risk decisions); without it the run does not listen and has no swap server.
   */
  notifications?: (swapHash: Uint8Array) => ServerNotification[];
}

/** One unhappy path: what is stored before the first run, then the runs. */
export interface KillScenario {
  name: string;
  /** The swap's state after each phase of an uninterrupted run. */
  expectStates: LoopInState[];
  setup(f: Awaited<ReturnType<typeof armedSwap>>): Promise<void>;
  phases: KillPhase[];
  /** The server pays the invoice at the moment the cancel reaches lnd (lnd then refuses the cancel). */
  settleOnCancel?: boolean;
  /** The deposits' confirmation height (default 100: the legacy 6-confirmation deadline rule holds at once). */
  depositConfHeight?: number;
}

/** Every published but unconfirmed transaction is mined at `height`. */
function mineMempool(lnd: FakeSyncLnd, height: number): void {
  for (const tx of lnd.published) {
    const txid = txidOfRaw(tx);
    if (!lnd.confirmations.has(txid)) lnd.confirmations.set(txid, height);
  }
}

/** The fixture's HTLC txids (the same in every copy: derived from fixed keys and outpoints). */
let txidsOf: Record<string, string> | null = null;
async function htlcTxids(): Promise<Record<string, string>> {
  if (txidsOf) return txidsOf;
  const f = await armedSwap();
  await using _t = f.t;
  txidsOf = { ...f.txids };
  return txidsOf;
}

/** The scenarios (CLTV 1200; deposits of 1 000 000 and 2 000 000 sat confirmed at 100). */
export async function killScenarios(): Promise<KillScenario[]> {
  const txids = await htlcTxids();
  const cltv = 1200;
  return [
    {
      name: "deadline-passed",
      expectStates: ["MonitorInvoiceAndHtlcTx", "SweepHtlcTimeout"],
      // Risk accepted at T0, never paid; the run 120 s later: cancel, release. Later the server publishes the
      // high variant: the armed watch takes the swap and its released deposits to SweepHtlcTimeout.
      setup: (f) => f.store.recordRiskDecision(f.hash, "accepted").then(() => {}),
      phases: [
        { name: "deadline passed", clockMs: 120_000, apply: (l) => void (l.tip = 300) },
        {
          name: "high variant confirmed later",
          clockMs: 3_600_000,
          apply: (l) => {
            l.tip = 910;
            l.confirmations.set(txids.high, 900);
          },
        },
      ],
    },
    {
      name: "risk-rejected",
      expectStates: ["Failed", "SweepHtlcTimeout"],
      // Rejected after signing: cancel, release, Failed and still watched; later the extreme variant confirms.
      setup: (f) => f.store.recordRiskDecision(f.hash, "rejected").then(() => {}),
      phases: [
        { name: "rejection", clockMs: 1_000, apply: (l) => void (l.tip = 300) },
        {
          name: "extreme variant confirmed later",
          clockMs: 3_600_000,
          apply: (l) => {
            l.tip = 910;
            l.confirmations.set(txids.extreme, 900);
          },
        },
      ],
    },
    {
      name: "htlc-timeout-sweep",
      expectStates: ["SweepHtlcTimeout", "MonitorHtlcTimeoutSweep", "HtlcTimeoutSwept"],
      // The server publishes the high variant instead of paying; the deadline passes: SweepHtlcTimeout; at the
      // CLTV the sweep is built, signed, stored and published; mined, 3 confirmations: HtlcTimeoutSwept. A
      // rerun sees another fee estimate: a stored sweep must never be rebuilt from it.
      setup: (f) => f.store.recordRiskDecision(f.hash, "accepted").then(() => {}),
      phases: [
        {
          name: "HTLC confirmed, deadline passed",
          clockMs: 120_000,
          apply: (l) => {
            l.tip = 600;
            l.confirmations.set(txids.high, 500);
          },
        },
        {
          name: "CLTV: sweep",
          clockMs: 7_200_000,
          apply: (l, o) => {
            l.tip = cltv;
            l.feeRate = o.rerun ? 2_750n : 2_000n;
          },
        },
        {
          name: "sweep mined, 3 confirmations",
          clockMs: 7_800_000,
          apply: (l) => {
            mineMempool(l, cltv + 1);
            l.tip = cltv + 3;
          },
        },
      ],
    },
    {
      name: "cltv-no-htlc",
      expectStates: ["Failed"],
      // No risk decision, nothing on chain, the CLTV reached: cancel, release, Failed, still watched.
      setup: () => Promise.resolve(),
      phases: [{ name: "CLTV reached", clockMs: 1_000, apply: (l) => void (l.tip = cltv + 1) }],
    },
    {
      name: "settled-at-cancel",
      expectStates: ["Succeeded"],
      settleOnCancel: true,
      // Rejected, but the server pays as the cancel reaches lnd: lnd refuses the cancel, the swap Succeeded.
      setup: (f) => f.store.recordRiskDecision(f.hash, "rejected").then(() => {}),
      phases: [{ name: "cancel meets the payment", clockMs: 1_000, apply: (l) => void (l.tip = 300) }],
    },
    {
      name: "rejected-while-listening",
      expectStates: ["Failed"],
      depositConfHeight: 298,
      // No deadline yet (deposits 3 blocks deep, no decision); the run listens and the server rejects: the
      // decision is stored, then cancel, release, Failed (watched). A decision lost with a killed run comes again
      // on the next subscription. The poll timer never fires: the calls are the same in every run.
      setup: () => Promise.resolve(),
      phases: [{
        name: "rejection notified",
        clockMs: 1_000,
        apply: (l) => void (l.tip = 300),
        notifications: (swapHash) => [{ kind: "risk_rejected", swapHash }],
      }],
    },
    {
      name: "initiation-gone-unarmed",
      expectStates: ["Failed"],
      // The initiating process died in SignHtlcTx before the marker (no push ever attempted): abandon push (best
      // effort; the server is unreachable here), UnlockDeposits, cancel acknowledged, Failed; not watched.
      setup: (f) => rewindToSignHtlcTx(f, { armed: false }),
      phases: [{ name: "unwind", clockMs: 1_000, apply: (l) => void (l.tip = 300) }],
    },
    {
      name: "initiation-gone-armed",
      expectStates: ["MonitorHtlcTimeoutSweep"],
      // The initiating process died in SignHtlcTx after the marker: resumed in MonitorInvoiceAndHtlcTx; the
      // standard variant is deep and tip − 1 reached the CLTV: cancel, SweepHtlcTimeout, sweep stored and published.
      setup: (f) => rewindToSignHtlcTx(f, { armed: true }),
      phases: [{
        name: "resume at the CLTV with the standard variant confirmed",
        clockMs: 1_000,
        apply: (l, o) => {
          l.tip = cltv + 1;
          l.confirmations.set(txids.standard, 1_100);
          l.feeRate = o.rerun ? 3_500n : 2_000n;
        },
      }],
    },
    {
      name: "unlock-armed-htlc",
      expectStates: ["SweepHtlcTimeout"],
      // An armed swap in UnlockDeposits whose standard variant confirmed before the unlock finished (fsm.md
      // addition 1): cancel acknowledged, SweepHtlcTimeout; the deposits never pass through Deposited.
      setup: (f) => toUnlockDeposits(f),
      phases: [{
        name: "unlock with an HTLC on chain",
        clockMs: 1_000,
        apply: (l) => {
          l.tip = 300;
          l.confirmations.set(txids.standard, 290);
        },
      }],
    },
    {
      name: "unlock-settled",
      expectStates: ["Succeeded"],
      settleOnCancel: true,
      // UnlockDeposits, and the server pays as the cancel reaches lnd (fsm.md addition 3): Succeeded, LoopedIn.
      setup: (f) => toUnlockDeposits(f),
      phases: [{ name: "unlock meets the payment", clockMs: 1_000, apply: (l) => void (l.tip = 300) }],
    },
  ];
}

/**
 * The fixture as an initiation that died in `SignHtlcTx` leaves it: the state (and, unarmed, the marker) set back
 * by SQL, since the fixture only builds the armed monitor state. The history rows of the fixture stay.
 */
async function rewindToSignHtlcTx(f: Awaited<ReturnType<typeof armedSwap>>, o: { armed: boolean }) {
  await f.t.db.client.execute({
    sql: `UPDATE loopin_swaps SET state = 'SignHtlcTx'${
      o.armed ? "" : ", armed_at = NULL"
    } WHERE swap_hash = ?`,
    args: [f.hash],
  });
}

/** The fixture moved `MonitorInvoiceAndHtlcTx —OnError→ UnlockDeposits` (deposits still LoopingIn). */
async function toUnlockDeposits(f: Awaited<ReturnType<typeof armedSwap>>) {
  await f.store.transition(f.hash, "MonitorInvoiceAndHtlcTx", "OnError", { reason: "test: unlocking" });
}

/** Where a run stops for good. `k` counts from 1 over the whole scenario run (all phases). */
export type KillPlan =
  | { at: "none" }
  | { at: "lnd-before" | "lnd-after" | "db-before-commit" | "db-after-commit"; k: number };

/** What a full run did: the lnd calls in order and the number of committed write transactions. */
export interface KillRunCounts {
  lndCalls: string[];
  dbWrites: number;
  results: LoopInSyncResult[];
}

const lndFile = (dir: string) => `${dir}/lnd.json`;

/** Reads lnd's saved state into a fresh `FakeSyncLnd`. */
export async function loadLnd(dir: string): Promise<{ lnd: FakeSyncLnd; settleOnCancel: boolean }> {
  const s = JSON.parse(await Deno.readTextFile(lndFile(dir))) as LndSnapshot;
  const lnd = new FakeSyncLnd();
  lnd.tip = s.tip;
  lnd.invoices = new Map(Object.entries(s.invoices));
  lnd.confirmations = new Map(Object.entries(s.confirmations));
  lnd.published = s.published.map((h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16)));
  lnd.feeRate = BigInt(s.feeRate);
  lnd.utxos = s.utxos.map((u) => ({
    txid: u.txid,
    vout: u.vout,
    amountSat: BigInt(u.amountSat),
    pkScript: Uint8Array.from(u.pkScript.match(/../g) ?? [], (x) => parseInt(x, 16)),
    confirmations: u.confirmations,
    address: "",
  }));
  lnd.mempoolSpent = new Set(s.mempoolSpent);
  return { lnd, settleOnCancel: s.settleOnCancel };
}

/** Saves lnd's state (write then rename: a kill never leaves half a file). */
export function saveLnd(dir: string, lnd: FakeSyncLnd, settleOnCancel: boolean): void {
  const s: LndSnapshot = {
    tip: lnd.tip,
    invoices: Object.fromEntries(lnd.invoices),
    confirmations: Object.fromEntries(lnd.confirmations),
    published: lnd.published.map(hexOf),
    feeRate: lnd.feeRate.toString(),
    settleOnCancel,
    utxos: lnd.utxos.map((u) => ({
      txid: u.txid,
      vout: u.vout,
      amountSat: u.amountSat.toString(),
      pkScript: hexOf(u.pkScript),
      confirmations: u.confirmations,
    })),
    mempoolSpent: [...lnd.mempoolSpent],
  };
  Deno.writeTextFileSync(`${lndFile(dir)}.tmp`, JSON.stringify(s));
  Deno.renameSync(`${lndFile(dir)}.tmp`, lndFile(dir));
}

/** Creates the scenario's database and lnd state in `dir` (the fixture, then `setup`). */
export async function prepareScenario(dir: string, sc: KillScenario): Promise<void> {
  const f = await armedSwap({ dir, now: () => KILL_T0, depositConfHeight: sc.depositConfHeight });
  try {
    await sc.setup(f);
    saveLnd(dir, f.lnd, sc.settleOnCancel ?? false);
  } finally {
    f.t.db.close();
  }
}

function blockForever(step: string): Promise<never> {
  console.log(`BLOCKED ${step}`);
  // A pending promise alone does not keep Deno alive: a timer does, until the kill.
  return new Promise<never>(() => setInterval(() => {}, 3_600_000));
}

/**
 * Runs the scenario's phases `fromPhase..` over the database and lnd state in `dir`, stopping for good where
 * `plan` says. `onPhase` is told each phase index as it starts.
 */
export async function runScenario(
  dir: string,
  sc: KillScenario,
  o: {
    fromPhase?: number;
    plan?: KillPlan;
    rerun?: boolean;
    /** Added to every phase's clock (a rerun comes later than the run it follows), ms. */
    clockShiftMs?: number;
    onPhase?: (i: number) => void;
  } = {},
): Promise<KillRunCounts> {
  const plan = o.plan ?? { at: "none" };
  const counts: KillRunCounts = { lndCalls: [], dbWrites: 0, results: [] };
  const raw = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  let writes = 0;
  const db: Db = {
    ...raw,
    write: async <T>(fn: Parameters<Db["write"]>[0]) => {
      const n = ++writes;
      const r = await raw.write(async (tx) => {
        const v = await fn(tx);
        if (plan.at === "db-before-commit" && plan.k === n) await blockForever(`db-before-commit #${n}`);
        return v;
      });
      counts.dbWrites = n;
      if (plan.at === "db-after-commit" && plan.k === n) await blockForever(`db-after-commit #${n}`);
      return r as T;
    },
  };
  try {
    for (let i = o.fromPhase ?? 0; i < sc.phases.length; i++) {
      const phase = sc.phases[i];
      o.onPhase?.(i);
      const { lnd: inner, settleOnCancel } = await loadLnd(dir);
      phase.apply(inner, { rerun: o.rerun ?? false });
      saveLnd(dir, inner, settleOnCancel);
      const lnd = {} as Record<string, (...a: unknown[]) => Promise<unknown>>;
      for (const m of SYNC_LND_METHODS) {
        const target = inner[m].bind(inner) as (...a: unknown[]) => Promise<unknown>;
        lnd[m] = async (...args: unknown[]) => {
          counts.lndCalls.push(m);
          const n = counts.lndCalls.length;
          if (plan.at === "lnd-before" && plan.k === n) await blockForever(`lnd-before #${n} ${m}`);
          if (m === "cancelInvoice" && settleOnCancel) {
            const h = hexOf(args[0] as Uint8Array);
            if (inner.invoices.get(h) === "OPEN") inner.invoices.set(h, "SETTLED");
          }
          let out: { ok: true; v: unknown } | { ok: false; e: unknown };
          try {
            out = { ok: true, v: await target(...args) };
          } catch (e) {
            out = { ok: false, e };
          }
          saveLnd(dir, inner, settleOnCancel);
          if (plan.at === "lnd-after" && plan.k === n) await blockForever(`lnd-after #${n} ${m}`);
          if (!out.ok) throw out.e;
          return out.v;
        };
      }
      const now = () => new Date(KILL_T0.getTime() + phase.clockMs + (o.clockShiftMs ?? 0));
      const store = new LoopInSwapStore(db, { now });
      let server: FakeSyncServer | null = null;
      if (phase.notifications) {
        server = new FakeSyncServer();
        server.queue = phase.notifications((await store.listSwaps())[0].swapHash);
      }
      counts.results.push(
        await syncLoopIns({
          db,
          store,
          network: "regtest",
          lnd: lnd as unknown as SyncLoopInLnd,
          server: () =>
            server ? Promise.resolve(server) : Promise.reject(new Error("no swap server in this test")),
          now,
          ownerAlive: () => false,
        }, server ? { listenMs: 30_000, pollMs: 3_600_000 } : { listenMs: 0 }),
      );
    }
  } finally {
    raw.close();
  }
  return counts;
}

/** The deposit states a swap state allows (review §1.9: a swap row and its deposits change together). */
function allowedDepositStates(s: LoopInSwap): readonly string[] | null {
  switch (s.state) {
    case "InitHtlcTx":
    case "SignHtlcTx":
    case "UnlockDeposits":
    case "PaymentReceived":
      return ["LoopingIn"];
    case "MonitorInvoiceAndHtlcTx":
      return s.depositsReleasedAt ? ["Deposited"] : ["LoopingIn"];
    case "Failed":
      return ["Deposited"];
    case "Succeeded":
      return ["LoopedIn"];
    case "SweepHtlcTimeout":
    case "MonitorHtlcTimeoutSweep":
      return ["SweepHtlcTimeout"];
    case "HtlcTimeoutSwept":
      return ["HtlcTimeoutSwept"];
    default:
      return null; // SucceededTransitioningFailed: checked by the final-state rule only
  }
}

/** What is stored and what lnd knows after a (killed or finished) run. */
export interface KillObservation {
  swap: LoopInSwap;
  depositStates: string[];
  lnd: FakeSyncLnd;
  watched: boolean;
}

/** Reads the swap, its deposits and lnd's saved state from `dir`. */
export async function observe(dir: string): Promise<KillObservation> {
  const db = await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" });
  try {
    const store = new LoopInSwapStore(db);
    const [swap] = await store.listSwaps();
    const watched = (await store.listSwaps({ watchedOnly: true })).length === 1;
    const deposits = await listDeposits(db.client);
    return {
      swap,
      depositStates: deposits.map((d) => d.state),
      lnd: (await loadLnd(dir)).lnd,
      watched,
    };
  } finally {
    db.close();
  }
}

/**
 * The invariants that must hold at every point a process can die (issue 9 acceptance, review §1.7, §1.9,
 * spec §2.6 item 4): swap and deposit states agree; no `LoopingIn` deposit behind a final swap; deposits are
 * released, and the timeout sweep path entered, only after lnd holds the invoice CANCELED; `Succeeded` only with
 * the invoice SETTLED; whatever was published is the stored timeout sweep, byte for byte.
 * @returns the violations (empty when all hold)
 */
export function invariantViolations(o: KillObservation): string[] {
  const v: string[] = [];
  const s = o.swap;
  const allowed = allowedDepositStates(s);
  if (allowed && o.depositStates.some((d) => !allowed.includes(d))) {
    v.push(`swap ${s.state} (released ${!!s.depositsReleasedAt}) with deposits ${o.depositStates.join(",")}`);
  }
  if (isFinalLoopInState(s.state) && o.depositStates.includes("LoopingIn")) {
    v.push(`final swap ${s.state} with a LoopingIn deposit`);
  }
  const invoice = o.lnd.invoices.get(s.swapHashHex) ?? null;
  const canceledInLnd = invoice === null || invoice === "CANCELED";
  if (o.depositStates.includes("Deposited") && !canceledInLnd) {
    v.push(`deposits released while lnd holds the invoice ${invoice}`);
  }
  if (s.invoiceCanceledAt && !canceledInLnd) v.push(`invoice cancel recorded while lnd holds it ${invoice}`);
  if ((s.state === "SweepHtlcTimeout" || s.state === "MonitorHtlcTimeoutSweep") && !canceledInLnd) {
    v.push(`${s.state} while lnd holds the invoice ${invoice}`);
  }
  if (s.state === "Succeeded" && invoice !== "SETTLED") {
    v.push(`Succeeded while lnd holds the invoice ${invoice}`);
  }
  if ((s.state === "MonitorHtlcTimeoutSweep" || s.state === "HtlcTimeoutSwept") && !s.timeoutSweep) {
    v.push(`${s.state} without a stored timeout sweep`);
  }
  const stored = s.timeoutSweep ? hexOf(s.timeoutSweep.tx) : null;
  for (const p of o.lnd.published) {
    if (hexOf(p) !== stored) v.push(`published ${txidOfRaw(p)} is not the stored timeout sweep`);
  }
  const want = isWatchedLoopIn(s.state, s.armedAt !== null, s.watchEndedAt !== null);
  if (o.watched !== want) v.push(`watched ${o.watched}, the armed watch rule says ${want}`);
  return [...new Set(v)];
}

/**
 * Where the money is at the end (issue 9: "every deposit ends spendable by alice or swept to her wallet"): every
 * deposit `Deposited` and no longer held, or `LoopedIn` by a settled invoice, or `HtlcTimeoutSwept` by a sweep with
 * ≥ 3 confirmations that pays the swap's sweep pkScript.
 * @returns the violations (empty when all hold)
 */
export function moneyViolations(o: KillObservation): string[] {
  const s = o.swap;
  const v: string[] = [];
  for (const d of o.depositStates) {
    if (d === "Deposited" && (!s.depositsReleasedAt || o.lnd.invoices.get(s.swapHashHex) !== "CANCELED")) {
      v.push("a Deposited deposit the swap has not released");
    } else if (d === "LoopedIn" && s.state !== "Succeeded") {
      v.push(`LoopedIn deposit of a ${s.state} swap`);
    } else if (d === "HtlcTimeoutSwept") {
      const t = s.timeoutSweep;
      const h = t ? o.lnd.confirmations.get(t.txid) : undefined;
      if (!t || h === undefined || o.lnd.tip - h + 1 < 3) v.push("HtlcTimeoutSwept without a buried sweep");
      else {
        const out = RawTx.decode(t.tx).outputs;
        if (out.length !== 1 || hexOf(out[0].script) !== hexOf(s.htlcTimeoutSweepPkScript!)) {
          v.push("the timeout sweep does not pay the swap's sweep pkScript");
        }
      }
    } else if (!["Deposited", "LoopedIn", "HtlcTimeoutSwept", "SweepHtlcTimeout"].includes(d)) {
      v.push(`deposit left in ${d}`);
    }
  }
  return v;
}

/** The outcome compared with the uninterrupted run (no times, no sweep bytes: a rerun may see another fee). */
export function outcome(o: KillObservation) {
  const s = o.swap;
  return {
    state: s.state,
    deposits: o.depositStates,
    invoiceInLnd: o.lnd.invoices.get(s.swapHashHex) ?? null,
    invoiceCanceled: s.invoiceCanceledAt !== null,
    depositsReleased: s.depositsReleasedAt !== null,
    confirmedHtlc: s.confirmedHtlc,
    deadlineSource: s.paymentDeadlineSource,
    timeoutSweep: s.timeoutSweep !== null,
    timeoutSweepConfirmedHeight: s.timeoutSweep?.confirmedHeight ?? null,
    watched: o.watched,
  };
}
