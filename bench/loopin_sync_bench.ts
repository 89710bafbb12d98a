/**
 * `loopin sync` benchmark (`deno task bench`). Numbers and the choices behind them: bench/README.md.
 *
 * 100 stored swaps in `MonitorInvoiceAndHtlcTx` (armed, invoice OPEN in lnd, no risk decision, no deadline,
 * no HTLC variant deep enough): "nothing new", what a timer runs every few minutes. Target (loop-in issue,
 * acceptance list): one pass ≤ 1.5× its lnd round trips.
 *
 * - A: one `syncLoopIns` pass (`listenMs: 0`; the swap-server opener throws, and the pass is checked not to
 *   call it) over a real libSQL file and real gRPC to the fake lnd (TLS, macaroon, lnd's protos).
 * - B: exactly the lnd calls of one pass, recorded at set-up through a counting proxy (method, arguments, the
 *   swap each is about, and which calls of a swap were in flight together), replayed directly over the same
 *   `GrpcLndClient` with the pass's shape: swaps `SYNC_CONCURRENCY` (8) at a time, nothing else.
 *
 * Two chain situations, each its own group (A vs B):
 * - "HTLC seen, 1 conf": every HTLC variant has 1 confirmation (< 3), so lnd answers each
 *   RegisterConfirmationsNtfn at once and nothing changes: loopkit's own cost against real round trips.
 * - "nothing confirmed": lnd holds each RegisterConfirmationsNtfn open, the client ends it at `chainCheckMs`
 *   (50 ms here, 1.5 s by default): a pass then takes about 100 / 8 × `chainCheckMs` (before the swaps were
 *   evaluated 8 at a time: 100 × `chainCheckMs`).
 *
 * After set-up the bench asserts that a pass changes nothing (same database snapshot before and after).
 * Besides Deno's table, min / median / max of the measured sections are printed at the end.
 */
import { type Db, openDb } from "../core/db/db.ts";
import { SYNC_CONCURRENCY, type SyncLoopInLnd, syncLoopIns } from "../core/loopin/sync.ts";
import { armedSwaps, hexOf } from "../core/loopin/_sync_testing.ts";
import { HTLC_VARIANTS } from "../core/loopin/types.ts";
import { connectLnd } from "../lnd/connect.ts";
import type { LndClient } from "../lnd/types.ts";
import { type FakeLnd, startFakeLnd } from "../tests/fakelnd/server.ts";
import { stats } from "./_wallet.ts";

const SWAPS = 100;
const TIP = 300;
/** Deposits confirmed at the tip: the legacy 6-confirmation deadline rule does not hold yet. */
const DEPOSIT_CONF_HEIGHT = TIP;
const CLTV = 1_200;
const CHAIN_CHECK_MS = 50;
/** Swaps evaluated at once: sync.ts's default, or `LOOPIN_BENCH_CONCURRENCY` (e.g. 1: the serial pass). */
const CONCURRENCY = Number(Deno.env.get("LOOPIN_BENCH_CONCURRENCY") ?? SYNC_CONCURRENCY);
const NOW = new Date("2026-01-02T00:00:00Z");
const now = () => NOW;

// ---- the database: 100 armed swaps, 2 deposits each (the sync tests' fixture: MonitorInvoiceAndHtlcTx, invoices OPEN)
const { t, swaps } = await armedSwaps(SWAPS, { cltv: CLTV, now, depositConfHeight: DEPOSIT_CONF_HEIGHT });
t.db.close();
const db: Db = await openDb({ url: t.url, network: "regtest" });

// ---- two fake lnds over real gRPC: invoices OPEN; HTLC variants unconfirmed, or at 1 confirmation
async function fakeLnd(htlcConfirmations: 0 | 1): Promise<{ fake: FakeLnd; lnd: LndClient }> {
  const fake = await startFakeLnd({ network: "regtest", blockHeight: TIP });
  const created = Math.floor(NOW.getTime() / 1000);
  for (const [i, s] of swaps.entries()) {
    fake.invoices.set(hexOf(s.hash), {
      state: "OPEN",
      preimage: new Uint8Array(32).fill(i + 1),
      paymentHash: s.hash,
      valueMsat: 2_500_000_000n,
      amtPaidMsat: 0n,
      memo: "",
      expirySec: 86_400,
      private: false,
      routeHints: [],
      paymentRequest: "lnbcrt1",
      addIndex: i + 1,
      creationDate: created,
      settleDate: 0,
    });
    if (htlcConfirmations) {
      for (const v of HTLC_VARIANTS) fake.setConfirmation(s.txids[v], { blockHeight: TIP }, s.htlcPkScript);
    }
  }
  const { lnd } = await connectLnd({ ...fake, network: "regtest" });
  return { fake, lnd };
}

/**
 * One recorded lnd call: `swap` is the index of the swap it is about (by its swap hash or an HTLC txid in the
 * arguments; -1 for GetInfo); calls of one swap with the same `group` were in flight together.
 */
interface Call {
  method: keyof SyncLoopInLnd;
  args: unknown[];
  swap: number;
  group: number;
}

/** The swap a call is about: its swap hash (LookupInvoice) or one of its HTLC txids (the confirmation queries). */
const swapOfKey = new Map<string, number>();
for (const [i, s] of swaps.entries()) {
  swapOfKey.set(hexOf(s.hash), i);
  for (const v of HTLC_VARIANTS) swapOfKey.set(s.txids[v], i);
}
function swapOf(args: unknown[]): number {
  for (const a of args) {
    const k = a instanceof Uint8Array ? hexOf(a) : typeof a === "string" ? a : null;
    if (k !== null && swapOfKey.has(k)) return swapOfKey.get(k)!;
  }
  return -1;
}

/** A proxy over `lnd` that records every call of sync's lnd interface. */
function recording(lnd: LndClient): { lnd: SyncLoopInLnd; calls: Call[] } {
  const calls: Call[] = [];
  const inFlight = new Map<number, number>();
  const group = new Map<number, number>();
  const proxy = new Proxy(lnd, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return async (...args: unknown[]) => {
        const swap = swapOf(args);
        if (!inFlight.get(swap)) group.set(swap, (group.get(swap) ?? -1) + 1);
        inFlight.set(swap, (inFlight.get(swap) ?? 0) + 1);
        calls.push({ method: prop as keyof SyncLoopInLnd, args, swap, group: group.get(swap)! });
        try {
          return await v.apply(target, args);
        } finally {
          inFlight.set(swap, inFlight.get(swap)! - 1);
        }
      };
    },
  });
  return { lnd: proxy, calls };
}

/**
 * HTTP/2 session failures of the replay (grpc-js under Deno: "Received RST_STREAM with code 2 triggered by
 * internal client error: Session closed with error code 2"), each retried once and counted; see README.
 */
const replayRetries: string[] = [];

/**
 * Replays recorded calls as the pass makes them: first the calls about no swap (GetInfo), then the swaps,
 * `CONCURRENCY` at a time (sync.ts evaluates swaps that many at once), each swap's groups in
 * order with the calls of a group together.
 */
async function replay(lnd: LndClient, calls: Call[]): Promise<void> {
  const call = (c: Call) =>
    (lnd[c.method] as (...a: unknown[]) => Promise<unknown>).apply(lnd, c.args).catch((err) => {
      if (!/RST_STREAM|Session closed/.test(String(err))) throw err;
      replayRetries.push(`${c.method}: ${(err as Error).message}`);
      return (lnd[c.method] as (...a: unknown[]) => Promise<unknown>).apply(lnd, c.args);
    });
  const bySwap = new Map<number, Call[][]>();
  for (const c of calls) {
    const groups = bySwap.get(c.swap) ?? bySwap.set(c.swap, []).get(c.swap)!;
    (groups[c.group] ??= []).push(c);
  }
  const runSwap = async (groups: Call[][]) => {
    for (const g of groups) await Promise.all(g.map(call));
  };
  await runSwap(bySwap.get(-1) ?? []);
  const queue = [...bySwap.entries()].filter(([k]) => k !== -1).sort(([a], [b]) => a - b).map(([, g]) => g);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < queue.length) await runSwap(queue[next++]);
  }));
}

const noServer = () => Promise.reject(new Error("bench: the swap server must not be contacted"));
/** Swap evaluations of the timed passes (A) that failed (retryable lnd errors), with their first messages. */
const passErrors: string[] = [];
let passEvaluations = 0;
const pass = async (lnd: SyncLoopInLnd) => {
  const r = await syncLoopIns(
    { db, network: "regtest", lnd, server: noServer, now },
    { listenMs: 0, chainCheckMs: CHAIN_CHECK_MS, concurrency: CONCURRENCY },
  );
  passEvaluations += r.swaps.length;
  for (const s of r.swaps) if (s.error) passErrors.push(s.error.message);
  return r;
};

/** Every table's rows, as text. */
async function snapshot(): Promise<string> {
  const tables = await db.client.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  const out: string[] = [];
  for (const r of tables.rows) {
    const name = String(r.name);
    const rows = await db.client.execute(`SELECT * FROM "${name}" ORDER BY rowid`);
    out.push(name, JSON.stringify(rows.rows, (_k, v) => typeof v === "bigint" ? v.toString() : v));
  }
  return out.join("\n");
}

/** Records one pass, checks it changed nothing, and returns its lnd calls. */
async function recordPass(lnd: LndClient, label: string): Promise<Call[]> {
  const before = await snapshot();
  const rec = recording(lnd);
  const r = await pass(rec.lnd);
  const after = await snapshot();
  if (after !== before) throw new Error(`bench (${label}): a pass changed the database`);
  if (r.serverContacted) throw new Error(`bench (${label}): the swap server was contacted`);
  const bad = r.swaps.filter((s) => s.error || s.actions.length || s.state !== "MonitorInvoiceAndHtlcTx");
  if (r.swaps.length !== SWAPS || bad.length) {
    throw new Error(`bench (${label}): not "nothing new": ${JSON.stringify(bad[0] ?? r.swaps.length)}`);
  }
  // A second pass gives the same snapshot and the same calls.
  const rec2 = recording(lnd);
  await pass(rec2.lnd);
  if (await snapshot() !== before) throw new Error(`bench (${label}): a second pass changed the database`);
  // Swaps are evaluated concurrently: the calls' interleaving may differ, each swap's calls may not.
  const perSwap = (calls: Call[]) => calls.map((c) => `${c.swap}/${c.group}/${c.method}`).sort().join();
  if (perSwap(rec2.calls) !== perSwap(rec.calls)) {
    throw new Error(`bench (${label}): two passes made different lnd calls`);
  }
  const counts: Record<string, number> = {};
  for (const c of rec.calls) counts[c.method] = (counts[c.method] ?? 0) + 1;
  console.log(
    `${label}: one pass makes ${rec.calls.length} lnd calls in ${
      new Set(rec.calls.map((c) => `${c.swap}/${c.group}`)).size
    } groups (sequential within a swap, ${CONCURRENCY} swaps at once): ${JSON.stringify(counts)}`,
  );
  return rec.calls;
}

const seen = await fakeLnd(1);
const unconfirmed = await fakeLnd(0);
const seenCalls = await recordPass(seen.lnd, "HTLC seen, 1 conf");
const unconfirmedCalls = await recordPass(unconfirmed.lnd, "nothing confirmed");

const samples = new Map<string, number[]>();
function bench(
  name: string,
  opts: { group: string; baseline?: boolean; n?: number; warmup?: number },
  body: () => Promise<unknown>,
) {
  Deno.bench({
    name,
    ...opts,
    async fn(b) {
      b.start();
      const t0 = performance.now();
      await body();
      const ms = performance.now() - t0;
      b.end();
      samples.set(name, [...(samples.get(name) ?? []), ms]);
    },
  });
}

const G1 = `${SWAPS} swaps, HTLC seen at 1 conf (gRPC)`;
bench(
  `B: the pass's ${seenCalls.length} lnd calls replayed`,
  { group: G1, baseline: true },
  () => replay(seen.lnd, seenCalls),
);
bench(`A: loopin sync pass, ${SWAPS} swaps, nothing new`, { group: G1 }, () => pass(seen.lnd));

const G2 = `${SWAPS} swaps, nothing confirmed, chainCheckMs ${CHAIN_CHECK_MS} (gRPC)`;
bench(
  `B: the pass's ${unconfirmedCalls.length} lnd calls replayed (unconfirmed)`,
  { group: G2, baseline: true, n: 5, warmup: 1 },
  () => replay(unconfirmed.lnd, unconfirmedCalls),
);
bench(
  `A: loopin sync pass, ${SWAPS} swaps, nothing confirmed`,
  { group: G2, n: 5, warmup: 1 },
  () => pass(unconfirmed.lnd),
);

globalThis.addEventListener("unload", () => {
  const rows = [...samples.entries()].map(([name, s]) => {
    const { n, min, median, max } = stats(s);
    return `| ${name} | ${n} | ${min.toFixed(2)} | ${median.toFixed(2)} | ${max.toFixed(2)} |`;
  });
  const load = (() => {
    try {
      return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
    } catch {
      return "?";
    }
  })();
  console.log(
    [
      "",
      `measured sections (ms), ${navigator.hardwareConcurrency} CPUs, load average ${load}:`,
      "| bench | n | min | median | max |",
      "| --- | --- | --- | --- | --- |",
      ...rows,
      `swap evaluations of the passes that failed (retryable): ${passErrors.length} of ${passEvaluations}`,
      ...passErrors.slice(0, 3),
      `replay calls retried after an HTTP/2 session failure: ${replayRetries.length}`,
      ...replayRetries.slice(0, 3),
    ].join("\n"),
  );
  seen.lnd.close();
  unconfirmed.lnd.close();
  db.close();
  Deno.removeSync(t.dir, { recursive: true });
});
