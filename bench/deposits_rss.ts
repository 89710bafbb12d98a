/**
 * Peak RSS of the real `loopkit deposits sync` process against a wallet of 100 000 UTXOs (1 000 ours) served
 * by the fake lnd over gRPC. The CLI runs as a separate process (exactly as cron runs it) so the fake lnd's
 * own memory is not counted; its peak RSS comes from GNU time (`%M`), or from polling `/proc/<pid>/status`
 * (VmHWM) where /usr/bin/time is missing. Part of `deno task bench`; target ≤ 150 MB (bench/README.md).
 *
 * Usage: `deno run --allow-all bench/deposits_rss.ts [total=100000] [ours=1000] [--strict]` (`--strict`: exit 1
 * when over the target).
 */
import { startFakeLnd } from "../tests/fakelnd/server.ts";
import { CLI_RUN_ARGS, lndFlags } from "../tests/cli/_harness.ts";
import { benchAddress, benchDataDir, benchWallet } from "./_wallet.ts";

const positional = Deno.args.filter((a) => !a.startsWith("--"));
const TOTAL = Number(positional[0] ?? 100_000);
const OURS = Number(positional[1] ?? 1_000);
const STRICT = Deno.args.includes("--strict");
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
const loopdir = await Deno.makeTempDir({ prefix: "loopkit-rss-" });
try {
  const clientPubkey = fake.keyRing.publicKey(42060, 0);
  await benchDataDir(loopdir, clientPubkey);
  fake.setUtxos(benchWallet(TOTAL, OURS, benchAddress(clientPubkey).pkScript, TIP));
  const cli = [...CLI_RUN_ARGS, ...lndFlags(fake, loopdir)];

  const runs = [
    await measure("deposits summary (no lnd: runtime floor)", [...cli, "deposits", "summary"]),
    await measure(`deposits sync, first (${OURS} new of ${TOTAL} UTXOs)`, [
      ...cli,
      "--json",
      "deposits",
      "sync",
    ]),
    await measure(`deposits sync, second (nothing new, ${TOTAL} UTXOs)`, [
      ...cli,
      "--json",
      "deposits",
      "sync",
    ]),
  ];
  const created = JSON.parse(runs[1].stdout).changes.length;
  const second = JSON.parse(runs[2].stdout).changes.length;
  console.log(`peak RSS of the loopkit process, ${navigator.hardwareConcurrency} CPUs:`);
  console.log("| run | exit | peak RSS (MB) | wall (s) |");
  console.log("| --- | --- | --- | --- |");
  for (const r of runs) {
    console.log(`| ${r.label} | ${r.code} | ${r.peakRssMb.toFixed(1)} | ${r.seconds.toFixed(2)} |`);
  }
  console.log(`created ${created} deposits on the first sync, ${second} changes on the second`);
  const worst = Math.max(runs[1].peakRssMb, runs[2].peakRssMb);
  const ok = runs.every((r) => r.code === 0) && created === OURS && second === 0 && worst <= TARGET_MB;
  console.log(
    ok
      ? `OK: peak ${worst.toFixed(1)} MB ≤ ${TARGET_MB} MB`
      : `OVER TARGET or failed: peak ${worst.toFixed(1)} MB`,
  );
  if (!ok && STRICT) Deno.exitCode = 1;
} finally {
  await fake.stop();
  await Deno.remove(loopdir, { recursive: true });
}
