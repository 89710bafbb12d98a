/**
 * Peak RSS of the real `loopkit deposits sync` process against a wallet of 100 000 UTXOs (1 000 ours) served
 * by the fake lnd over gRPC. The CLI runs as a separate process (exactly as cron runs it) so the fake lnd's
 * own memory is not counted; its peak RSS comes from GNU time (`%M`), or from polling `/proc/<pid>/status`
 * (VmHWM) where /usr/bin/time is missing. Part of `deno task bench`; target ≤ 150 MB (bench/README.md).
 *
 * Usage: `deno run --allow-all bench/deposits_rss.ts [total=100000] [ours=1000] [--runs=3] [--strict]` (`--strict`:
 * exit 1 when over the target). Each run: a fresh data directory, the first sync (creates the deposits and
 * checks the account filter against the whole wallet), a second sync, and a sync whose daily full-wallet check
 * is due; min / median / max over the runs.
 */
import { startFakeLnd } from "../tests/fakelnd/server.ts";
import { CLI_RUN_ARGS, lndFlags } from "../tests/cli/_harness.ts";
import { benchAddress, benchDataDir, benchWallet, stats } from "./_wallet.ts";
import { openDb } from "../core/db/db.ts";
import { FILTER_CHECK_KEY, FILTER_RECHECK_BLOCKS } from "../core/deposits/sync.ts";

const positional = Deno.args.filter((a) => !a.startsWith("--"));
const TOTAL = Number(positional[0] ?? 100_000);
const OURS = Number(positional[1] ?? 1_000);
const STRICT = Deno.args.includes("--strict");
const RUNS = Number(Deno.args.find((a) => a.startsWith("--runs="))?.slice(7) ?? 3);
const TIP = 900_000;
const TARGET_MB = 150;

interface Run {
  label: string;
  code: number;
  peakRssMb: number;
  seconds: number;
  stdout: string;
}

async function hasGnuTime(): Promise<boolean> {
  try {
    return (await Deno.stat("/usr/bin/time")).isFile;
  } catch {
    return false;
  }
}

/** Runs `deno <args>` and returns its exit code, peak RSS (MB) and wall time. */
async function measure(label: string, args: string[]): Promise<Run> {
  const started = performance.now();
  if (await hasGnuTime()) {
    const o = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "LOOPKIT_RSS %M", Deno.execPath(), ...args],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(o.stderr);
    const kb = Number(/LOOPKIT_RSS (\d+)/.exec(err)?.[1] ?? NaN);
    if (o.code !== 0) console.error(`${label}: exit ${o.code}: ${err.trim()}`);
    return {
      label,
      code: o.code,
      peakRssMb: kb / 1024,
      seconds: (performance.now() - started) / 1000,
      stdout: new TextDecoder().decode(o.stdout),
    };
  }
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let peakKb = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch { /* exited */ }
  }, 5);
  const o = await child.output();
  clearInterval(poll);
  return {
    label,
    code: o.code,
    peakRssMb: peakKb / 1024,
    seconds: (performance.now() - started) / 1000,
    stdout: new TextDecoder().decode(o.stdout),
  };
}

const fake = await startFakeLnd({ network: "regtest", blockHeight: TIP });
const clientPubkey = fake.keyRing.publicKey(42060, 0);
fake.setUtxos(benchWallet(TOTAL, OURS, benchAddress(clientPubkey).pkScript, TIP));
const LABELS = [
  "deposits summary (no lnd: runtime floor)",
  `deposits sync, first (${OURS} new of ${TOTAL} UTXOs, + full-wallet filter check)`,
  `deposits sync, second (nothing new, ${TOTAL} UTXOs, imported account)`,
  `deposits sync, daily full-wallet read (${TOTAL} UTXOs)`,
];
const samples = new Map<string, Run[]>(LABELS.map((l) => [l, []]));
let ok = true;
try {
  for (let round = 0; round < RUNS; round++) {
    const loopdir = await Deno.makeTempDir({ prefix: "loopkit-rss-" });
    try {
      const dataDir = await benchDataDir(loopdir, clientPubkey);
      const cli = [...CLI_RUN_ARGS, ...lndFlags(fake, loopdir)];
      const sync = [...cli, "--json", "deposits", "sync"];
      const runs = [
        await measure(LABELS[0], [...cli, "deposits", "summary"]),
        await measure(LABELS[1], sync),
        await measure(LABELS[2], sync),
      ];
      // The filter self-check is due again (last checked 144+ blocks ago): this sync reads the whole wallet.
      const db = await openDb({ url: `file:${dataDir}/loopkit.db`, network: "regtest" });
      await db.client.execute({
        sql: "UPDATE meta SET value = ? WHERE key = ?",
        args: [`ok:${TIP - FILTER_RECHECK_BLOCKS}`, FILTER_CHECK_KEY],
      });
      db.close();
      runs.push(await measure(LABELS[3], sync));
      const changes = (r: Run) => r.code === 0 ? JSON.parse(r.stdout).changes.length : NaN;
      ok &&= runs.every((r) => r.code === 0) && changes(runs[1]) === OURS && changes(runs[2]) === 0 &&
        changes(runs[3]) === 0;
      runs.forEach((r) => samples.get(r.label)!.push(r));
    } finally {
      await Deno.remove(loopdir, { recursive: true });
    }
  }
  console.log(`peak RSS of the loopkit process, ${RUNS} runs, ${navigator.hardwareConcurrency} CPUs:`);
  console.log("| run | peak RSS MB min / median / max | wall s median |");
  console.log("| --- | --- | --- |");
  let worst = 0;
  for (const [label, rs] of samples) {
    const m = stats(rs.map((r) => r.peakRssMb));
    const w = stats(rs.map((r) => r.seconds));
    if (label !== LABELS[0]) worst = Math.max(worst, m.max);
    console.log(
      `| ${label} | ${m.min.toFixed(1)} / ${m.median.toFixed(1)} / ${m.max.toFixed(1)} | ${
        w.median.toFixed(2)
      } |`,
    );
  }
  ok &&= worst <= TARGET_MB;
  console.log(
    ok
      ? `OK: peak ${worst.toFixed(1)} MB ≤ ${TARGET_MB} MB`
      : `OVER TARGET or failed: peak ${worst.toFixed(1)} MB`,
  );
  if (!ok && STRICT) Deno.exitCode = 1;
} finally {
  await fake.stop();
}
