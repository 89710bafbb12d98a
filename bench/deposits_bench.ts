/**
 * `deposits sync` benchmarks (`deno task bench`). Numbers and the choices behind them: bench/README.md.
 *
 * - sync vs. the bare ListUnspent it is built on, over real gRPC to the fake lnd (TLS, macaroon, lnd's protos):
 *   10 000 wallet UTXOs of which 1 000 pay our static address, nothing new (what cron runs every few minutes).
 *   Target: ≤ 1.3× the bare call. Sync asks for lnd's `imported` account only (1 000 entries); both the full
 *   listing (what it replaced) and the filtered call are measured.
 * - first sync (1 000 new deposits: NextAddr each, inserts and history rows) vs. a second sync with nothing new.
 * - the same against an in-process stand-in, where ListUnspent costs ~0: loopkit's own cost in isolation.
 *
 * Besides Deno's table, each bench prints min / median / max of its measured sections at the end.
 * The 100 000-UTXO peak RSS is measured by `bench/deposits_rss.ts` (a separate process).
 */
import { connectLnd } from "../lnd/connect.ts";
import { type Db, openDb } from "../core/db/db.ts";
import { syncDeposits } from "../core/deposits/sync.ts";
import { syncLnd } from "../cli/lnd_adapters.ts";
import { startFakeLnd } from "../tests/fakelnd/server.ts";
import { WalletStandIn } from "../core/deposits/_testing.ts";
import { benchAddress, benchDataDir, benchWallet, stats } from "./_wallet.ts";

const TOTAL = 10_000;
const OURS = 1_000;
const TIP = 900_000;

const fake = await startFakeLnd({ network: "regtest", blockHeight: TIP });
const clientPubkey = fake.keyRing.publicKey(42060, 0);
const { pkScript } = benchAddress(clientPubkey);
const utxos = benchWallet(TOTAL, OURS, pkScript, TIP);
fake.setUtxos(utxos);
const { lnd } = await connectLnd({ ...fake, network: "regtest" });
const grpcLnd = syncLnd(lnd, "regtest");

const standIn = new WalletStandIn();
standIn.height = TIP;
standIn.utxos = utxos.map(({ account: _, ...u }) => ({ ...u, address: "" }));
standIn.importedPkScripts = [pkScript];

const root = await Deno.makeTempDir({ prefix: "loopkit-bench-" });
const template = await Deno.readFile(`${await benchDataDir(`${root}/template`, clientPubkey)}/loopkit.db`);
let dirs = 0;
async function freshDb(): Promise<{ db: Db; dir: string }> {
  const dir = `${root}/db-${dirs++}`;
  await Deno.mkdir(dir);
  await Deno.writeFile(`${dir}/loopkit.db`, template);
  return { db: await openDb({ url: `file:${dir}/loopkit.db`, network: "regtest" }), dir };
}

// Steady-state databases: synced once, so every later sync finds nothing new.
const steadyGrpc = await freshDb();
await syncDeposits({ db: steadyGrpc.db, lnd: grpcLnd });
const steadyInProcess = await freshDb();
await syncDeposits({ db: steadyInProcess.db, lnd: standIn });

const samples = new Map<string, number[]>();
function record(name: string, ms: number) {
  samples.set(name, [...(samples.get(name) ?? []), ms]);
}

/** A bench whose measured section is timed for the min/median/max summary too. */
function bench(
  name: string,
  opts: { group: string; baseline?: boolean; n?: number; warmup?: number },
  body: () => Promise<unknown>,
  setup?: () => Promise<() => Promise<void>>,
) {
  Deno.bench({
    name,
    ...opts,
    async fn(b) {
      const teardown = setup ? await setup() : undefined;
      b.start();
      const t0 = performance.now();
      await body();
      record(name, performance.now() - t0);
      b.end();
      await teardown?.();
    },
  });
}

let firstDb: { db: Db; dir: string } | undefined;
const withFreshDb = async () => {
  firstDb = await freshDb();
  return async () => {
    firstDb!.db.close();
    await Deno.remove(firstDb!.dir, { recursive: true });
  };
};

bench(
  `ListUnspent(0, 0) over gRPC: ${TOTAL} UTXOs`,
  { group: "sync vs ListUnspent (gRPC)", baseline: true },
  () => lnd.listUnspent(0, 0),
);
bench(
  `ListUnspent(0, 0, "imported") over gRPC: ${OURS} of ${TOTAL} UTXOs`,
  { group: "sync vs ListUnspent (gRPC)" },
  () => lnd.listUnspent(0, 0, { account: "imported" }),
);
bench(
  `deposits sync over gRPC: ${TOTAL} UTXOs, ${OURS} ours, nothing new`,
  { group: "sync vs ListUnspent (gRPC)" },
  () => syncDeposits({ db: steadyGrpc.db, lnd: grpcLnd }),
);

bench(
  `second sync over gRPC: nothing new`,
  { group: "first vs second sync (gRPC)", baseline: true },
  () => syncDeposits({ db: steadyGrpc.db, lnd: grpcLnd }),
);
bench(
  `first sync over gRPC: ${OURS} new deposits`,
  { group: "first vs second sync (gRPC)", n: 5, warmup: 1 },
  () => syncDeposits({ db: firstDb!.db, lnd: grpcLnd }),
  withFreshDb,
);

bench(
  `ListUnspent in-process stand-in: ${TOTAL} UTXOs (copy only)`,
  { group: "in-process stand-in", baseline: true },
  () => standIn.listUnspent(0, 0),
);
bench(
  `deposits sync in-process: ${TOTAL} UTXOs, ${OURS} ours, nothing new`,
  { group: "in-process stand-in" },
  () => syncDeposits({ db: steadyInProcess.db, lnd: standIn }),
);
bench(
  `first sync in-process: ${OURS} new deposits`,
  { group: "in-process stand-in", n: 10, warmup: 1 },
  () => syncDeposits({ db: firstDb!.db, lnd: standIn }),
  withFreshDb,
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
    ].join("\n"),
  );
  lnd.close();
  steadyGrpc.db.close();
  steadyInProcess.db.close();
  Deno.removeSync(root, { recursive: true });
});
